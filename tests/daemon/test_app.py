"""The daemon in-process on a fake clock: graceful stop under load, and a crashing
component taking the daemon down with exit 1 and the reason logged."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import msgspec
import pandas as pd

from jts.app import App
from jts.app_start import warmup_history
from jts.clock import NS, FakeClock
from jts.config import load_config
from jts.daemon import EXIT_FAILURE, EXIT_OK, serve
from jts.log import setup_logging
from jts.types import Bar, OrderStatus
from tests.daemon.conftest import write_config

START = 1_764_028_800 * NS      # 2025-11-25 00:00 UTC (09:00 KST)


def make_app(tmp_path: Path, symbols: int = 200) -> tuple[App, FakeClock]:
    write_config(tmp_path, "[risk]\nmax_orders_per_minute = 100000\nmax_open_positions = 200\n")
    # one embedded ClickHouse engine per process: in-process apps do not record ticks (the
    # subprocess tests do)
    text = (tmp_path / "jts.toml").read_text().replace("symbols = 60", f"symbols = {symbols}"
                                                       "\nrecord_ticks = false")
    (tmp_path / "jts.toml").write_text(text)
    cfg = load_config(tmp_path / "jts.toml")
    setup_logging(log_file=cfg.log_file, console=False)
    clock = FakeClock(START)
    return App(cfg, clock=clock), clock


async def drive(clock: FakeClock, app: App, step_s: float = 0.5) -> None:
    """Advance market time as fast as the loop allows: maximum load, no wall-clock waits."""
    while not app.stopping.is_set():
        clock.advance(step_s)
        await asyncio.sleep(0)


def events(cfg_log: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in cfg_log.read_text().splitlines() if x.strip()]


async def test_graceful_stop_under_load_loses_nothing(tmp_path: Path) -> None:
    app, clock = make_app(tmp_path)

    async def stop_when_busy() -> None:
        while app.desk.stats.fills < 200:
            await asyncio.sleep(0)
        app.request_stop("test")

    app.add_component("driver", lambda: drive(clock, app))
    app.add_component("stopper", stop_when_busy)
    code = await asyncio.wait_for(serve(app, app.cfg), timeout=300)
    assert code == EXIT_OK and app.stopped_cleanly
    # every intent was decided, nothing is left half-sent, every fill is in the ledger
    assert len(app.bus.intents) == 0
    assert not [o for o in app.desk.orders.values() if o.status is OrderStatus.SUBMITTED]
    assert app.desk.stats.intents == app.desk.stats.submitted + app.desk.stats.risk_rejected
    from jts.storage.ledger import open_ledger

    led = await open_ledger(app.cfg.storage_url("ledger"))
    try:
        report = await led.verify()
        assert report.ok, report.problems
        # every fill the desk applied is in the ledger (a fill committed by the ledger in
        # the last instant before cancellation may be there without being counted in memory)
        assert report.fills >= app.desk.stats.fills >= 200
        applied = {e["trade_id"] for e in events(app.cfg.log_file)
                   if e["event"] == "fill_applied"}
        stored = {f.trade_id for f in await led.fills()}
        assert applied <= stored
    finally:
        await led.close()
    names = [e["event"] for e in events(app.cfg.log_file)]
    assert names.index("stop_requested") < names.index("stopped") < names.index("ledger_closed")


async def test_crashing_component_exits_non_zero_with_reason(tmp_path: Path) -> None:
    app, clock = make_app(tmp_path, symbols=20)

    async def broken() -> None:
        while app.bus.ticks.published == 0:
            await asyncio.sleep(0)
        raise RuntimeError("feed parser exploded")

    app.add_component("driver", lambda: drive(clock, app))
    app.add_component("flaky_feed", broken)
    code = await asyncio.wait_for(serve(app, app.cfg), timeout=120)
    assert code == EXIT_FAILURE
    evs = events(app.cfg.log_file)
    crash = [e for e in evs if e["event"] == "component_crashed"]
    assert crash and crash[0]["component"] == "flaky_feed"
    assert "feed parser exploded" in str(crash[0]["error"])
    failed = [e for e in evs if e["event"] == "daemon_failed"]
    assert failed and "flaky_feed" in str(failed[0]["reason"])
    assert not app.cfg.socket_path.exists()


class StoredBars:
    """A time-series store holding a few stored 1-minute bars (injected; no chdb)."""

    def __init__(self, bars: list[Bar]) -> None:
        self.bars = bars
        self.written: list[Bar] = []

    async def read_bars_df(self, symbols: list[str], start_ns: int, end_ns: int,
                           timeframe: str = "1m") -> pd.DataFrame:
        rows = [b for b in self.bars if b.symbol in symbols and start_ns <= b.ts_ns < end_ns]
        return pd.DataFrame([{"symbol": b.symbol, "ts_ns": b.ts_ns, "open": b.open,
                              "high": b.high, "low": b.low, "close": b.close,
                              "volume": b.volume, "value": b.value} for b in rows])

    async def write_bars(self, bars: list[Bar]) -> int:
        self.written.extend(bars)
        return len(bars)

    async def close(self) -> None: ...


async def test_real_feed_warms_up_from_stored_bars(tmp_path: Path) -> None:
    app, clock = make_app(tmp_path, symbols=20)
    cfg = msgspec.structs.replace(app.cfg, market=msgspec.structs.replace(
        app.cfg.market, feed="kis", history_bars=5))
    sym = app.market.symbols[0]
    stored = [Bar(sym, "1m", START - (10 - i) * 60 * NS, 100.0 + i, 101.0 + i, 99.0 + i,
                  100.5 + i, 10.0, 1005.0) for i in range(10)]
    app2 = App(cfg, clock=clock, market=app.market, timeseries=StoredBars(stored))
    history = await warmup_history(app2)
    assert [b.close for b in history[sym]] == [105.5, 106.5, 107.5, 108.5, 109.5]
    other = app.market.symbols[1]
    assert len(history[other]) == 5          # topped up from the feed's own history


def test_tick_batches_mark_the_held_positions_from_the_columns(tmp_path: Path) -> None:
    """Last prices and marks come from the batch's columns (one array shared by the
    portfolio): after random batches, every held position is marked at its symbol's last
    print exactly as a portfolio marked print by print would be."""
    import random
    from decimal import Decimal

    from jts.portfolio import Portfolio
    from jts.types import Fill, Side, Tick

    app, clock = make_app(tmp_path, symbols=20)
    syms = list(app.market.symbols)
    ref = Portfolio(cash=app.portfolio.cash)
    rng = random.Random(4)
    feed = app.cfg.market.feed
    for k, sym in enumerate([*syms[:6], "OUTSIDE"]):
        fill = Fill("paper", "paper-1", f"t{k}", f"c{k}", sym, Side.BUY, Decimal(10 + k),
                    Decimal(1000), Decimal(0), Decimal(0), START, "s")
        app.portfolio.apply(fill)
        ref.apply(fill)
    app.portfolio.unrealized()                   # terms built before the marks move
    for b in range(30):
        clock.set(START + b * NS)
        batch = [Tick("krx", rng.choice([*syms[:12], "OUTSIDE"]), START + b * NS + i, 0,
                      float(rng.randint(900, 1100)), 1.0, b * 1000 + i + 1) for i in range(40)]
        out = app.collector.ingest(feed, batch)
        for t in out:
            ref.mark(t.symbol, t.price)
        assert app.portfolio.unrealized() == ref.unrealized()
        assert app.portfolio.exposure() == ref.exposure()
    assert {s: app.last_prices.get(s) for s in ref.marks} == dict(ref.marks)


async def test_a_fill_raises_the_daily_loss_alert_only_near_the_limit(tmp_path: Path) -> None:
    """After a fill the daily-loss alert is judged from the float estimate where it is
    certain and from the exact P&L otherwise: it fires at the threshold, not before."""
    from decimal import Decimal

    from jts.types import Fill, Side

    app, _ = make_app(tmp_path, symbols=20)
    sym = next(iter(app.market.symbols))
    limit = Decimal(str(app.cfg.risk.max_daily_loss))
    threshold = app.notifier.daily_loss_threshold(limit)
    qty = Decimal(1000)
    fill = Fill("paper", "paper-1", "t1", "c1", sym, Side.BUY, qty, Decimal(10_000), Decimal(0),
                Decimal(0), START, "s")
    app.portfolio.apply(fill)
    app.portfolio.mark(sym, 10_000.0)
    await app._publish_fill(fill)
    assert not app.notifier.daily_loss_alerted(app.portfolio.day)
    just_short = 10_000 - float(threshold / qty) + 1.0     # a loss 1,000 below the threshold
    app.portfolio.mark(sym, just_short)
    await app._publish_fill(fill)
    assert not app.notifier.daily_loss_alerted(app.portfolio.day)
    app.portfolio.mark(sym, 10_000 - float(threshold / qty))   # exactly at the threshold
    await app._publish_fill(fill)
    assert app.notifier.daily_loss_alerted(app.portfolio.day)
