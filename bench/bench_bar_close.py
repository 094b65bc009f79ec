"""The bar close alone: the tick batch that opens a new minute closes every symbol's bar
(BarBuilder, columnar) and the strategies evaluate them (StrategyEngine.on_bars) — the work
between the tick that closes a bar and the order intents it causes, without the loop.

Run: .venv/bin/python bench/bench_bar_close.py [--symbols 1800] [--minutes 40] [--no-burst]

The synthetic market of bench_pipeline.py supplies history (warm-up) and prints; the
strategies are the repository's paper_momentum and ema_cross_rsi plus bench_burst (EMA 3/8
cross on every symbol, no position cap: a few hundred intents per close). Times are the
thread's CPU time (time.thread_time_ns), so other load on the machine does not inflate
them; wall time is printed beside.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_pipeline import BURST_STRATEGY  # noqa: E402
from bench.pipeline_harness import DAY0, MIN, SyntheticMarket  # noqa: E402
from jts.bars import BarBuilder  # noqa: E402
from jts.engine import StrategyEngine  # noqa: E402
from jts.portfolio import Portfolio  # noqa: E402
from jts.strategy import load_strategy  # noqa: E402
from jts.tick_batch import SymbolTable, TickBatch  # noqa: E402


def run(n_symbols: int, minutes: int, burst: bool, rate: float) -> dict[str, list[float]]:
    strategies = [load_strategy(REPO / "strategies" / "paper_momentum.toml"),
                  load_strategy(REPO / "strategies" / "ema_cross_rsi.toml")]
    if burst:
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "bench_burst.toml"
            p.write_text(BURST_STRATEGY, encoding="utf-8")
            strategies.append(load_strategy(p))
    start = DAY0 + 120 * MIN
    batch = 5_000
    per_min = int(rate * 60) // batch * batch
    market = SyntheticMarket(n_symbols, rate=rate, batch=batch,
                             total=per_min * (minutes + 1), start_ns=start)
    symbols = list(market.symbols)
    index = {s: i for i, s in enumerate(symbols)}
    table = SymbolTable(index, "krx")
    engine = StrategyEngine(strategies, symbols, Portfolio(cash=Decimal(10**13)))
    engine.warm_up(market.history(60, start))
    bars = BarBuilder("1m")
    out: dict[str, list[float]] = {"fold": [], "close": [], "engine": [], "intents": [],
                                   "close wall": [], "engine wall": []}
    for b in range(per_min * (minutes + 1) // batch):
        c = market._make(b, start)
        assert not isinstance(c, list)
        tb = TickBatch(table, c.sym.astype(np.int64), c.ts_ns, c.price, c.volume, c.seq,
                       np.full(len(c.sym), start, np.int64))
        w0, t0 = time.perf_counter_ns(), time.thread_time_ns()
        closed = bars.add(tb)
        w1, t1 = time.perf_counter_ns(), time.thread_time_ns()
        if not closed:
            out["fold"].append((t1 - t0) / 1e3)
            continue
        intents = engine.on_bars(closed)
        w2, t2 = time.perf_counter_ns(), time.thread_time_ns()
        if b >= 2 * per_min // batch:            # first closes: kernels compiling
            out["close"].append((t1 - t0) / 1e6)
            out["engine"].append((t2 - t1) / 1e6)
            out["close wall"].append((w1 - w0) / 1e6)
            out["engine wall"].append((w2 - w1) / 1e6)
            out["intents"].append(float(len(intents)))
        for it in intents:                       # filled at once: positions move
            engine.on_order_done(it.strategy, it.symbol)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--symbols", type=int, default=1_800)
    ap.add_argument("--minutes", type=int, default=40)
    ap.add_argument("--rate", type=float, default=20_000.0, help="prints per market second")
    ap.add_argument("--no-burst", action="store_true", help="without bench_burst")
    args = ap.parse_args()
    out = run(args.symbols, args.minutes, not args.no_burst, args.rate)
    print(f"Bar close, {args.symbols:,} symbols, strategies paper_momentum + ema_cross_rsi"
          f"{'' if args.no_burst else ' + bench_burst'}; {len(out['close'])} closes; "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| step | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|")
    for k in ("close", "engine", "close wall", "engine wall"):
        xs = np.asarray(out[k])
        print(f"| {k} (CPU)" if "wall" not in k else f"| {k}", end="")
        print(f" | {np.percentile(xs, 50):.3f} | {np.percentile(xs, 99):.3f} | {xs.max():.3f} |")
    fold = np.asarray(out["fold"])
    print(f"\nfold of a 5,000-tick batch that closes nothing: p50 {np.percentile(fold, 50):.0f} µs"
          f" CPU; intents per close: median {np.median(out['intents']):.0f}")


if __name__ == "__main__":
    main()
