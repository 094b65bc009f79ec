"""The live pipeline under load: ticks → collector → bar builder / surge detector → strategy
engine → desk (risk → write-ahead → paper broker submit), 1,800 symbols, one event loop.

Run: .venv/bin/python bench/bench_pipeline.py [--symbols N] [--seconds S] [--batch B] ...

The real :class:`jts.app.App` is built and run (its own components, channels and tasks; the
embedded SQLite ledger in a temporary state directory). Only the market and the broker are
injected through the constructor: a synthetic market that streams pre-planned batches of
prints for N symbols on a :class:`FakeClock` (market time follows the data, as fast as the
loop takes it), and the paper broker with a timing hook on ``submit``. Stages are timed with
``time.perf_counter_ns`` by thin wrappers on the component *instances* (nothing is copied):

* tick → scored: surge detector done with the batch holding the tick (per tick);
* tick → candidate: surge candidate emitted, from the oldest batch in that update;
* tick → intent: the strategy engine returned the intent, from the batch that closed its bar
  (also as the event-loop thread's CPU time over the same span, ``thread_time_ns``: the
  latency with a core of our own, which a shared machine's wall clock cannot show);
* risk check: ``RiskGate.check`` alone; desk service: ``Desk.handle`` start → ``submit`` call;
* intent → submit: engine returned the intent → ``broker.submit`` called (queueing included).

Two load modes: ``saturate`` (closed loop: the next batch is released as soon as every tick
consumer took the previous one: the sustainable rate) and ``paced`` (open loop at a fixed
offered rate; latency counted from the scheduled arrival, so queueing is never hidden).
Tick objects are built by the feed inside the loop (as a real feed parser would); that time
is measured and reported apart (``feed`` column) and excluded from the pipeline rate.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.pipeline_harness import (  # noqa: E402
    DAY0,
    MIN,
    Probe,
    Samples,
    SyntheticMarket,
    TimedPaperBroker,
)
from jts.app import App  # noqa: E402
from jts.clock import FakeClock  # noqa: E402
from jts.config import (  # noqa: E402
    Config,
    DaemonConfig,
    MarketConfig,
    OrdersConfig,
    PaperConfig,
    RiskConfig,
    StorageConfig,
)
from jts.log import setup_logging  # noqa: E402
from jts.strategy import load_strategy  # noqa: E402
from jts.surge import SurgeConfig  # noqa: E402

# every universe symbol, no max_positions: each minute's crosses become a burst of intents
BURST_STRATEGY = """[strategy]
name = "bench_burst"
universe = "all"
timeframe = "1m"
[rules]
entry = "crossover(ema(close, 3), ema(close, 8))"
exit = "crossunder(ema(close, 3), ema(close, 8)) or bars_held >= 5"
[sizing]
method = "fixed_notional"
value = 1000000
"""


_TS: list[tempfile.TemporaryDirectory[str]] = []


def _timeseries_url() -> str:
    """The embedded ClickHouse engine runs once per process: every run shares one store."""
    if not _TS:
        _TS.append(tempfile.TemporaryDirectory(prefix="jts-bench-ts-"))
    return f"chdb:///{_TS[0].name}/timeseries"


def bench_config(state_dir: Path, n_symbols: int, ledger: str, record_ticks: bool,
                 journal_sync: bool = True) -> Config:
    return Config(
        daemon=DaemonConfig(state_dir=str(state_dir), stop_timeout=30.0),
        market=MarketConfig(symbols=n_symbols, history_bars=60, record_ticks=record_ticks),
        paper=PaperConfig(initial_cash=1e13),
        risk=RiskConfig(max_position_notional=1e12, max_total_exposure=1e13,
                        max_open_positions=100_000, max_orders_per_minute=1_000_000,
                        max_daily_loss=1e12),
        storage=StorageConfig(ledger=ledger, timeseries=_timeseries_url()),
        orders=OrdersConfig(journal_sync=journal_sync),
        # the ~1 % surging symbols surge all run long: re-flag them every minute, not 10
        surge=SurgeConfig(cooldown_s=60))


@dataclass
class Result:
    mode: str
    ledger: str
    ticks: int
    seconds: float
    feed_seconds: float
    cpu_seconds: float
    samples: Samples
    stats: dict[str, Any]
    feed_cpu_seconds: float = 0.0


    @property
    def pipeline_tps(self) -> float:
        return self.ticks / max(1e-9, self.seconds - self.feed_seconds)

    @property
    def gross_tps(self) -> float:
        return self.ticks / self.seconds

    @property
    def cpu_tps(self) -> float:
        """Ticks per second of process CPU (the feed's own CPU excluded): the one-core rate
        on a machine this process does not share."""
        return self.ticks / max(1e-9, self.cpu_seconds - self.feed_cpu_seconds)


async def run_pipeline(*, n_symbols: int = 1_800, seconds: float = 20.0, batch: int = 5_000,
                       rate: float = 20_000.0, paced_tps: float | None = None,
                       ledger: str = "sqlite:///ledger.sqlite3", warmup_s: float = 90.0,
                       record_ticks: bool = True, gc_freeze: bool = False,
                       coalesce: int = 0, burst: bool = True, columnar: bool = True,
                       journal_sync: bool = True,
                       state_dir: Path | None = None, log_level: str = "info",
                       broker_cls: type[TimedPaperBroker] = TimedPaperBroker,
                       customize: Callable[[App], None] | None = None) -> Result:
    """Build the App around a synthetic market and run ``seconds`` of market time (after
    ``warmup_s`` of market time that is not measured); return the samples. ``gc_freeze``
    tries a proposal: move everything alive after warm-up out of the collector's sight;
    ``broker_cls`` and ``customize`` (called with the built App) let a prototype of a
    hot-path change be measured in place."""
    tmp = tempfile.TemporaryDirectory(prefix="jts-bench-") if state_dir is None else None
    sd = Path(tmp.name) if tmp is not None else state_dir
    assert sd is not None
    try:
        cfg = bench_config(sd, n_symbols, ledger, record_ticks, journal_sync)
        setup_logging(level=log_level, log_file=cfg.log_file, console=False)
        strat = sd / "bench_burst.toml"
        strat.write_text(BURST_STRATEGY, encoding="utf-8")
        strategies = [load_strategy(REPO / "strategies" / "paper_momentum.toml"),
                      load_strategy(REPO / "strategies" / "ema_cross_rsi.toml"),
                      *([load_strategy(strat)] if burst else [])]
        start = DAY0 + 120 * MIN                    # 11:00 KST: history covers the morning
        clock = FakeClock(start)
        skip = int(warmup_s * rate) // batch
        total = (skip + int(seconds * rate) // batch) * batch
        market = SyntheticMarket(n_symbols, rate=rate, batch=batch, total=total,
                                 start_ns=start, paced_tps=paced_tps, coalesce=coalesce,
                                 columnar=columnar)
        broker = broker_cls(name="paper", account=cfg.paper.account, cost_model=cfg.costs,
                                  initial_cash=Decimal(10**13), clock=clock,
                                  symbols=market.symbols, market=market.market_of,
                                  prev_close=market.prev_close)
        app = App(cfg, clock=clock, market=market, broker=broker, strategies=strategies)
        market.skip = skip
        if customize is not None:
            customize(app)
        probe = Probe(app, market, broker, skip)
        tick_chans = [c for c in app.bus.ticks.subscribers]

        async def drained() -> None:
            for ch in tick_chans:
                await ch.join()

        if paced_tps is None:
            market.release = drained

        async def stopper() -> None:
            await market.done.wait()
            for ch in app.bus.bars.subscribers:
                await ch.join()
            await app.bus.intents.join()
            app.request_stop("benchmark done")

        app.add_component("bench_stopper", stopper)
        if gc_freeze:
            async def freeze() -> None:
                gc.collect()
                gc.freeze()
            app.on_ready = freeze
        gc.collect()
        try:
            await app.run()
        finally:
            probe.close()
        n_meas = total - skip * batch
        wall = (market.t_last - market.recv[skip]) / 1e9
        st = app.status()
        stats = {"intents": st["orders"]["intents"], "submitted": st["orders"]["submitted"],
                 "rejected": st["orders"]["risk_rejected"], "fills": st["fills"],
                 "bars": st["bars"], "candidates": app.surge.emitted,
                 "dropped": sum(c["dropped"] for c in st["channels"].values()),
                 "strategies": {s["name"]: (s["entries"], s["exits"], s["capped"])
                                for s in st["strategies"]}}
        return Result("paced" if paced_tps else "saturate", ledger, n_meas, wall,
                      market.feed_ns / 1e9, market.cpu1 - market.cpu0,
                      probe.s, stats, market.feed_cpu_ns / 1e9)
    finally:
        if tmp is not None:
            tmp.cleanup()


def pct(xs: list[int], q: float, w: list[int] | None = None) -> float:
    """Percentile in milliseconds (weighted when ``w`` is given); NaN without samples."""
    if not xs:
        return float("nan")
    a = np.asarray(xs, dtype=np.float64) / 1e6
    if w is None:
        return float(np.percentile(a, q))
    order = np.argsort(a)
    cum = np.cumsum(np.asarray(w, dtype=np.float64)[order])
    return float(a[order][min(len(a) - 1, int(np.searchsorted(cum, q / 100 * cum[-1])))])


def latency_rows(r: Result) -> list[str]:
    s = r.samples
    rows = [("tick → surge scored (per tick)", s.scored, s.scored_w),
            ("tick → surge candidate", s.candidate, None),
            ("tick → bars evaluated by the engine (per bar batch)", s.bars_done, None),
            ("tick → order intent", s.intent, None),
            ("tick → order intent, loop thread CPU (no other process)", s.intent_cpu, None),
            ("risk check (RiskGate.check)", s.risk, None),
            ("desk service (handle → submit call)", s.desk, None),
            ("intent → submit call (queue + desk)", s.to_submit, None),
            ("tick → submit call", s.tick_to_submit, None),
            ("surge update_ticks call (per batch)", s.surge_call, None),
            ("bar builder add call (per batch)", s.bar_call, None),
            ("engine on_bars call (per bar batch)", s.engine_call, None),
            ("cyclic GC pause (any generation)", s.gc_pause, None)]
    out = []
    for name, xs, w in rows:
        n = sum(w) if w else len(xs)
        out.append(f"| {r.mode} | {name} | {n:,} | {pct(xs, 50, w):.3f} | {pct(xs, 99, w):.3f} "
                   f"| {pct(xs, 99.9, w):.3f} | {max(xs, default=0) / 1e6:.3f} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--symbols", type=int, default=1_800)
    ap.add_argument("--seconds", type=float, default=180.0, help="market seconds measured")
    ap.add_argument("--batch", type=int, default=5_000)
    ap.add_argument("--rate", type=float, default=20_000.0, help="prints per market second")
    ap.add_argument("--paced", type=float, default=30_000.0,
                    help="offered ticks/s of the paced run (0: skip it)")
    ap.add_argument("--warmup", type=float, default=90.0, help="market seconds not measured")
    ap.add_argument("--ledger", default="sqlite:///ledger.sqlite3")
    ap.add_argument("--no-record", action="store_true", help="[market] record_ticks = false")
    ap.add_argument("--gc-freeze", action="store_true", help="gc.freeze() after warm-up")
    ap.add_argument("--no-saturate", action="store_true", help="run the paced mode only")
    ap.add_argument("--journal-nosync", action="store_true",
                    help="[orders] journal_sync = false (no fdatasync before the sends)")
    ap.add_argument("--tick-objects", action="store_true",
                    help="the feed yields list[Tick] (default: TickColumns, parsed into arrays)")
    ap.add_argument("--coalesce", type=int, default=0,
                    help="paced: a read that is behind takes every due batch, up to N ticks")
    ap.add_argument("--no-burst", action="store_true",
                    help="only the repository's strategies (no bench_burst order bursts)")
    args = ap.parse_args()
    common: dict[str, Any] = dict(n_symbols=args.symbols, seconds=args.seconds, batch=args.batch,
                                  rate=args.rate, ledger=args.ledger, warmup_s=args.warmup,
                                  record_ticks=not args.no_record, gc_freeze=args.gc_freeze,
                                  coalesce=args.coalesce, burst=not args.no_burst,
                                  columnar=not args.tick_objects,
                                  journal_sync=not args.journal_nosync)
    runs = [] if args.no_saturate else [asyncio.run(run_pipeline(**common))]
    if args.paced:
        runs.append(asyncio.run(run_pipeline(paced_tps=args.paced, **common)))
    print(f"Live pipeline, {args.symbols:,} symbols, {args.rate:,.0f} prints per market "
          f"second, batches of {args.batch:,}, {args.seconds:g} market s measured; ledger "
          f"{args.ledger}; record_ticks {not args.no_record}; gc.freeze {args.gc_freeze}; "
          f"coalesce {args.coalesce or 'off'}; bench_burst {not args.no_burst}; "
          f"feed {'list[Tick]' if args.tick_objects else 'TickColumns'}; "
          f"journal_sync {not args.journal_nosync}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    print("| mode | ticks | wall s | CPU s | feed s wall (CPU) | ticks/s wall | ticks/CPU-s | bars "
          "| candidates | intents | submitted | fills | dropped |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        st = r.stats
        print(f"| {r.mode} | {r.ticks:,} | {r.seconds:.2f} | {r.cpu_seconds:.2f} | "
              f"{r.feed_seconds:.2f} ({r.feed_cpu_seconds:.2f}) | {r.pipeline_tps:,.0f} | "
              f"{r.cpu_tps:,.0f} | {st['bars']:,} | "
              f"{st['candidates']:,} | {st['intents']:,} | {st['submitted']:,} | "
              f"{st['fills']:,} | {st['dropped']:,} |")
    print("\n| mode | stage | samples | p50 ms | p99 ms | p99.9 ms | max ms |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in runs:
        print("\n".join(latency_rows(r)))


if __name__ == "__main__":
    main()
    if "chdb" in sys.modules:      # chdb's interpreter teardown can SIGSEGV (see tests/conftest.py)
        sys.stdout.flush()
        os._exit(0)
