"""The composition root: build every component from the config, run them as tasks under
one TaskGroup, report status, and stop gracefully.

Start order: strategies are compiled, the feed and broker are built, stored (or simulated)
history warms the strategies up, then the tasks start. A component that raises takes the
whole daemon down with :class:`ComponentCrashed` (exit 1, so systemd restarts it) — the
daemon never keeps running with a dead part.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import msgspec
import structlog

from jts.app_start import open_journal, open_ledger, reconcile_at_start, warmup_history
from jts.bars import BarBuilder
from jts.bus import BLOCK, DROP, Bus
from jts.calendar import CryptoCalendar, KrxCalendar
from jts.channel import Channel
from jts.clock import Clock, LiveClock, ScaledClock, iso_utc
from jts.collector import Collector, Feed
from jts.config import Config
from jts.desk import Desk, OrderRecord
from jts.engine import StrategyEngine
from jts.errors import ConfigError, DaemonError, JTSError
from jts.money import to_decimal
from jts.operator import OperatorActions
from jts.portfolio import Portfolio
from jts.prices import LastPrices
from jts.risk import RiskGate, TradingState
from jts.storage.order_wal import OrderWal
from jts.storage.ts_writer import TickWriter
from jts.surge import SurgeDetector
from jts.tick_batch import TickBatch
from jts.tick_path import TickPath
from jts.types import Bar, Fill, OrderEvent

log = structlog.get_logger(__name__)
Component = Callable[[], Coroutine[Any, Any, None]]


class ComponentCrashed(DaemonError):
    def __init__(self, component: str, error: BaseException) -> None:
        self.component = component
        self.error = error
        super().__init__(f"component {component} crashed: {type(error).__name__}: {error}")


def load_strategies(cfg: Config) -> list[Any]:
    """Compile every enabled strategy file; the first bad file raises with its location."""
    from jts.strategy import load_strategy

    d = cfg.strategies_dir
    if not d.is_dir():
        raise ConfigError("strategies directory not found", file=str(d), key="strategies.dir")
    files = sorted(d.glob("*.toml"))
    wanted = set(cfg.strategies.enabled)
    out = []
    for f in files:
        cs = load_strategy(f)
        if wanted and cs.name not in wanted and f.stem not in wanted:
            continue
        if not getattr(cs, "enabled", True):
            continue
        out.append(cs)
    missing = wanted - {c.name for c in out} - {Path(str(c.path)).stem for c in out}
    if missing:
        raise ConfigError(f"enabled strategies not found in {d}: {', '.join(sorted(missing))}",
                          file=cfg.source or None, key="strategies.enabled")
    return out


# components stopped first on a graceful stop: the producers of market data and intents
_FEED_SIDE = frozenset({"collector", "tick_path", "paper_feed", "surge_detector"})


class App(OperatorActions):
    def __init__(self, cfg: Config, *, clock: Clock | None = None, market: Any = None,
                 broker: Any = None, strategies: Sequence[Any] | None = None,
                 ledger: Any = None, timeseries: Any = None,
                 extra_components: Sequence[tuple[str, Component]] = ()) -> None:
        self.cfg = cfg
        self.bus = Bus()
        self.started_wall = time.time()
        self.stopping = asyncio.Event()
        self.stopped_cleanly = False
        self.on_ready: Callable[[], Awaitable[None]] | None = None
        self.clock: Clock = clock or (ScaledClock(time.time_ns(), cfg.market.speed)
                                      if cfg.market.feed == "sim" else LiveClock())
        if cfg.daemon.mode == "live" and (broker is None or market is None):
            from brokers.kis.daemon import build_live

            live_broker, live_market = build_live(cfg, self.clock)
            broker = broker or live_broker
            market = market or live_market
        if market is None:
            from jts.sim import SimMarket

            market = SimMarket(symbols=cfg.market.symbols, seed=cfg.market.seed,
                               tick_interval_s=cfg.market.tick_interval,
                               follow_session=cfg.market.follow_session,
                               calendar=KrxCalendar(cfg.calendar))
        self.market = market
        if broker is None:
            from brokers.paper import PaperBroker

            broker = PaperBroker(name="paper", account=cfg.paper.account,
                                 cost_model=cfg.costs,
                                 initial_cash=cfg.paper.initial_cash, clock=self.clock,
                                 allow_short=cfg.paper.allow_short,
                                 symbols=market.symbols, market=market.market_of,
                                 prev_close=market.prev_close)
        self.broker = broker
        surge_cfg = cfg.surge
        if cfg.market.feed == "sim" and not cfg.market.follow_session:
            # the free-running simulated market has 390-minute virtual days
            surge_cfg = msgspec.structs.replace(surge_cfg, session="virtual")
        self.surge = SurgeDetector(list(market.symbols), surge_cfg)
        # last prices and marks live in an array over the universe's index (the surge
        # detector's): a tick batch updates them with one kernel call
        self.last_prices = LastPrices(self.surge.index)
        self.portfolio = Portfolio(cash=to_decimal(cfg.paper.initial_cash),
                                   marks=self.last_prices, exclusive_marks=True)
        self.ledger = ledger          # opened in run() from [storage] ledger unless injected
        self.order_wal: OrderWal | None = None     # opened in run() ([orders] journal)
        self.risk = RiskGate(cfg.risk, prev_close=getattr(market, "prev_close", None))
        strategies = list(strategies) if strategies is not None else load_strategies(cfg)
        self.engine = StrategyEngine(strategies, list(market.symbols), self.portfolio)
        self.desk = Desk(broker, self.risk, self.portfolio, self.clock, self.last_prices.get,
                         journal=None, on_order_done=self._order_done,
                         publish_fill=self._publish_fill, publish_event=self._publish_event)
        from jts.alerts import Notifier

        self.notifier = Notifier(cfg.alerts, config_file=cfg.source)   # wall clock, not market
        self.desk.alerts = self.notifier
        speed = float(getattr(self.clock, "speed", 1.0))   # thresholds are in market seconds
        cal = KrxCalendar(cfg.calendar) if cfg.market.follow_session else CryptoCalendar()
        self.bar_builder = BarBuilder("1m")
        # each batch: marks, the bar close and its intents, then the bus (jts.tick_path)
        self.tick_path = TickPath(self.bus, self.engine, self.portfolio, self.last_prices,
                                  self.bar_builder,
                                  self.bus.candidates.subscribe("strategies", 1000, DROP))
        self.collector = Collector(
            [Feed(cfg.market.feed, lambda: self.market.stream(self.clock),
                  venue=getattr(market, "venue", "krx"), calendar=cal)],
            self.tick_path, self.clock, stale_after_s=cfg.market.stale_after * speed,
            on_alert=self.notifier.notify)
        self.timeseries: Any = timeseries     # opened in run() unless injected
        self.last_reconcile: dict[str, Any] | None = None
        self._routed = self._routed_seen = 0     # broker reports started + finished
        self.tick_writer: TickWriter | None = None
        self._bars_store: Channel[Sequence[Bar]] | None = None
        # tick batches come with columns over the surge's index (the surge detector and the
        # bar builder read them instead of walking the ticks)
        self.collector.symbol_index = self.surge.index
        self._extra = list(extra_components)
        self._tasks: list[asyncio.Task[None]] = []
        # channels: each consumer has its own; market data drops oldest, orders never drop
        self._ticks_broker = self.bus.ticks.subscribe("paper_broker", 1000, DROP)
        self._ticks_surge = self.bus.ticks.subscribe("surge", 1000, DROP) if cfg.surge.enabled \
            else None
        self._fills_engine = self.bus.fills.subscribe("strategies", 100_000, BLOCK)

    # --- lifecycle -------------------------------------------------------------------
    async def run(self) -> None:
        """Run until stopped (returns) or a component crashes (raises ComponentCrashed)."""
        from jts.precompile import precompile

        await asyncio.to_thread(precompile, [r.compiled for r in self.engine.runs],
                                self.surge.cfg if self.cfg.surge.enabled else None)
        await self.broker.connect()
        await open_ledger(self)
        await open_journal(self)
        await reconcile_at_start(self)
        if self.cfg.market.record_ticks:
            if self.timeseries is None:
                from jts.storage.timeseries import open_timeseries

                self.timeseries = await open_timeseries(self.cfg.storage_url("timeseries"))
            mc = self.cfg.market
            self.tick_writer = TickWriter(self.timeseries, LiveClock(),
                                          batch_size=mc.record_batch,
                                          flush_interval=mc.record_flush_s,
                                          max_queue=max(200_000, 4 * mc.record_batch))
            self.collector.tick_writer = self.tick_writer
            self._extra.append(("tick_writer", self.tick_writer.run))
            self._bars_store = self.bus.bars.subscribe("bar_store", 1000, DROP)
            self._extra.append(("bar_writer", self._bar_writer))
        history = await warmup_history(self)
        self.engine.warm_up(history)
        self.surge.warm_up(history)
        for sym, bars in history.items():
            if bars:
                self.last_prices[sym] = bars[-1].close
                self.portfolio.mark(sym, bars[-1].close)
        del history
        # what is alive now (compiled strategies and kernels, reference data, the warmed-up
        # state) lives as long as the daemon: out of the cyclic collector's sight, so a full
        # collection no longer stalls a bar close for tens of milliseconds rescanning it
        gc.collect()
        gc.freeze()
        log.info("daemon_started", pid=os.getpid(), mode=self.cfg.daemon.mode,
                 symbols=len(self.market.symbols), strategies=[r.name for r in self.engine.runs],
                 broker=self.broker.name, market_time=iso_utc(self.clock.now_ns()))
        self.notifier.on_daemon_started(mode=self.cfg.daemon.mode, pid=os.getpid())
        components: list[tuple[str, Component]] = [
            ("collector", self.collector.run), ("tick_path", self.tick_path.run),
            ("paper_feed", self._paper_feed),
            *([("surge_detector", self._surge)] if self.cfg.surge.enabled else []),
            ("fills_to_engine", self._fills_to_engine), ("desk", self._desk),
            ("router", self._router), ("housekeeper", self._housekeeper),
            ("alerts", self.notifier.run),
            ("supervisor", self._supervisor), *self._extra]
        try:
            async with asyncio.TaskGroup() as tg:
                self._tasks = [tg.create_task(self._guard(n, c), name=n) for n, c in components]
                if self.on_ready is not None:
                    await self.on_ready()
        except* ComponentCrashed as eg:
            raise eg.exceptions[0] from None
        finally:
            gc.unfreeze()            # what died with this run can be collected again
            await self.broker.close()
            if self.timeseries is not None:
                await self.timeseries.close()
            if self.ledger is not None:
                await self.ledger.close()
                log.info("ledger_closed")
            if self.order_wal is not None:
                self.order_wal.close()

    async def _guard(self, name: str, component: Component) -> None:
        try:
            await component()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.critical("component_crashed", component=name,
                         error=f"{type(exc).__name__}: {exc}", exc_info=True)
            raise ComponentCrashed(name, exc) from exc

    def add_component(self, name: str, component: Component) -> None:
        """Run ``component`` as one more supervised task (before ``run``)."""
        self._extra.append((name, component))

    def request_stop(self, reason: str = "requested") -> None:
        if not self.stopping.is_set():
            log.info("stop_requested", reason=reason)
            self.stopping.set()

    async def _supervisor(self) -> None:
        await self.stopping.wait()
        await self._shutdown()

    async def _shutdown(self) -> None:
        t0 = time.monotonic()
        deadline = t0 + self.cfg.daemon.stop_timeout
        self.desk.accepting = False
        log.info("stopping", phase="no_new_orders")
        # let queued intents be decided (they are refused now) and in-flight orders settle
        while time.monotonic() < deadline and self._busy():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        # stop the market side first (no more prints → no more paper fills), then let the
        # router finish applying what the broker already reported before anything is cancelled
        for t in self._tasks:
            if t.get_name() in _FEED_SIDE:
                t.cancel()
        quiet = 0
        while time.monotonic() < deadline and quiet < 3:
            await asyncio.sleep(0.02)
            idle = self._routed == self._routed_seen and self._routed % 2 == 0
            quiet = quiet + 1 if idle else 0
            self._routed_seen = self._routed
        open_orders = len(self.desk.open_orders())
        await self.notifier.drain(max(0.5, deadline - time.monotonic()))
        self.stopped_cleanly = True
        log.info("stopped", seconds=round(time.monotonic() - t0, 3), open_orders=open_orders,
                 fills=self.desk.stats.fills)
        for t in self._tasks:
            if t is not asyncio.current_task():
                t.cancel()

    @property
    def bars_built(self) -> int:
        return self.tick_path.bars_built

    def _busy(self) -> bool:
        return bool(len(self.bus.intents) or self.tick_path.pending) or any(
            o.status.value == "submitted" for o in self.desk.open_orders())

    # --- components ------------------------------------------------------------------
    async def _bar_writer(self) -> None:
        """Closed bars into the time-series store (batched, off the hot path): the next
        start of a live feed warms its strategies up from them."""
        assert self._bars_store is not None and self.timeseries is not None
        while True:
            batches = await self._bars_store.receive_batch()
            bars = [b for batch in batches for b in batch]
            try:
                await self.timeseries.write_bars(bars)
            except JTSError as exc:
                log.error("bar_write_failed", bars=len(bars), error=str(exc))

    async def _paper_feed(self) -> None:
        on_ticks = getattr(self.broker, "on_ticks", None)
        while True:
            ticks = await self._ticks_broker.receive()
            if on_ticks is not None:
                on_ticks(ticks)

    async def _surge(self) -> None:
        ch = self._ticks_surge
        assert ch is not None
        while True:
            batches = await ch.receive_batch()
            # yield once: whatever arrives meanwhile joins the call (fewer, larger calls when
            # the loop is busy)
            await asyncio.sleep(0)
            found = self.surge.update_ticks(TickBatch.join(batches + ch.drain()))
            if found:                        # (the detector logs each candidate)
                self.bus.candidates.publish_nowait(found)
                for c in found:
                    self.notifier.on_surge(c.symbol, c.score, reasons=list(c.reasons))

    async def _fills_to_engine(self) -> None:
        while True:
            self.engine.on_fill(await self._fills_engine.receive())

    async def _desk(self) -> None:
        while True:
            await self.desk.handle_many(await self.bus.intents.receive_batch(500))

    async def _housekeeper(self) -> None:
        oc = self.cfg.orders
        while True:
            await self.clock.sleep(oc.housekeeping_interval)
            stuck = await self.desk.housekeeping(unknown_deadline_s=oc.unknown_deadline,
                                                 limit_ttl_s=oc.limit_ttl)
            if stuck and self.risk.state is not TradingState.HALTED:
                self.risk.set_state(TradingState.HALTED, f"unresolved orders: {', '.join(stuck)}")
                log.critical("trading_halted", reason="order outcome unknown past deadline",
                             orders=stuck)
                self.notifier.notify("risk_limit", "trading HALTED: order outcome unknown past "
                                     f"the deadline ({', '.join(stuck)})", severity="critical")

    async def _router(self) -> None:
        async for report in self.broker.events():
            self._routed += 1
            await self.desk.on_report(report)
            self._routed += 1

    def _order_done(self, rec: OrderRecord) -> None:
        self.engine.on_order_done(rec.request.strategy, rec.request.symbol)

    async def _publish_fill(self, fill: Fill) -> None:
        await self.bus.fills.publish(fill)
        self.notifier.on_fill(fill)
        pf, alerts, limit = self.portfolio, self.notifier, self.cfg.risk.max_daily_loss
        if alerts.daily_loss_alerted(pf.day):
            return
        # the exact P&L only when the float estimate cannot rule the alert out (as the
        # risk gate does): a fill does not settle every moved mark
        threshold = alerts.daily_loss_threshold(limit)
        if threshold <= 0:
            return
        est = pf.estimate()
        if est is not None and est.unrealized_above(-threshold - pf.realized_today):
            return
        alerts.check_daily_loss(pf.realized_today + pf.unrealized(), day=pf.day, limit=limit)

    async def _publish_event(self, ev: OrderEvent) -> None:
        await self.bus.order_events.publish(ev)

    # --- status ----------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        from jts.status import snapshot

        return snapshot(self)


__all__ = ["App", "ComponentCrashed", "JTSError", "load_strategies"]
