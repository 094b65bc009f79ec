"""Indicator throughput vs TA-Lib, and streaming strategy update cost per tick.

Run: .venv/bin/python bench/bench_indicators.py [n_symbols] [--rounds R]
Batch: N symbols (default 20) x 97,500 one-minute bars (~one KRX year: 250 days x 390 min),
scaled linearly to 500 symbols. Method, so that the two libraries are compared fairly:
- both get the very same input: each symbol's row of one C-contiguous float64 array;
- every function is called once before timing (JTS: loads/compiles its numba kernel, so
  compilation is excluded; TA-Lib: first-call work);
- R rounds (default 7) interleave the two libraries (JTS then TA-Lib, then the other way round),
  each round timing every symbol once, in CPU time of this process (`time.process_time`: other
  processes on a shared machine inflate it less than wall time);
- reported: medians over the rounds (µs per 97,500-bar call, Mbars/s), the median of the
  per-round speed ratios and their range, and the load average before and after.
pandas-ta is included when importable (it needs Python >= 3.12, so on this 3.11 venv it is
reported as unavailable).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jts.indicators as ji
from jts.strategy import load_strategy

BARS = 97_500
FULL = 500
Fn = Callable[[np.ndarray], object]


def series(n_sym: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return 10_000 + np.cumsum(rng.normal(0, 5, (n_sym, BARS)), axis=1)


def cpu_over_rows(fn: Fn, data: np.ndarray) -> float:
    """CPU seconds to run fn over every row of data once."""
    t = time.process_time()
    for row in data:
        fn(row)
    return time.process_time() - t


def interleaved(ours: Fn, ref: Fn, data: np.ndarray, rounds: int
                ) -> tuple[list[float], list[float]]:
    ours(data[0])  # compile / load the cached kernel
    ref(data[0])
    a: list[float] = []
    b: list[float] = []
    for r in range(rounds):
        if r % 2 == 0:
            a.append(cpu_over_rows(ours, data))
            b.append(cpu_over_rows(ref, data))
        else:
            b.append(cpu_over_rows(ref, data))
            a.append(cpu_over_rows(ours, data))
    return a, b


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def batch_table(n_sym: int, rounds: int) -> None:
    import talib

    try:
        import pandas as pd
        import pandas_ta as pta  # type: ignore[import-not-found]
    except ImportError:
        pta = None
    data = series(n_sym)
    cases: list[tuple[str, Fn, Fn, Fn | None]] = [
        ("SMA(20)", lambda x: ji.sma(x, 20), lambda x: talib.SMA(x, 20),
         (lambda x: pta.sma(pd.Series(x), 20)) if pta else None),
        ("EMA(20)", lambda x: ji.ema(x, 20), lambda x: talib.EMA(x, 20),
         (lambda x: pta.ema(pd.Series(x), 20)) if pta else None),
        ("RSI(14)", lambda x: ji.rsi(x, 14), lambda x: talib.RSI(x, 14),
         (lambda x: pta.rsi(pd.Series(x), 14)) if pta else None),
        ("MACD(12,26,9)", lambda x: ji.macd(x, 12, 26, 9), lambda x: talib.MACD(x, 12, 26, 9),
         (lambda x: pta.macd(pd.Series(x))) if pta else None),
        ("BBANDS(20,2,2)", lambda x: ji.bbands(x, 20, 2.0, 2.0),
         lambda x: talib.BBANDS(x, 20, 2.0, 2.0, 0),
         (lambda x: pta.bbands(pd.Series(x), 20, 2.0)) if pta else None),
    ]
    n_bars = n_sym * BARS
    print(f"\n### Batch: {n_sym} symbols x {BARS:,} bars, {rounds} interleaved rounds "
          f"(CPU time, medians), scaled to {FULL} symbols\n")
    print(f"load average before: {load()}\n")
    print("| indicator | JTS µs/call | TA-Lib µs/call | JTS Mbars/s | TA-Lib Mbars/s "
          "| pandas-ta Mbars/s | JTS 500-sym s | TA-Lib 500-sym s | JTS/TA-Lib speed (range) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    scale = FULL / n_sym
    for name, ours, ref, pt in cases:
        a, b = interleaved(ours, ref, data, rounds)
        ma, mb = statistics.median(a), statistics.median(b)
        ratios = sorted(y / x for x, y in zip(a, b, strict=True))
        c = cpu_over_rows(pt, data) if pt else None
        pts = f"{n_bars / c / 1e6:.1f}" if c else "n/a (needs Python ≥ 3.12)"
        print(f"| {name} | {ma / n_sym * 1e6:.0f} | {mb / n_sym * 1e6:.0f} | "
              f"{n_bars / ma / 1e6:.1f} | {n_bars / mb / 1e6:.1f} | {pts} | "
              f"{ma * scale:.3f} | {mb * scale:.3f} | "
              f"{statistics.median(ratios):.2f}x ({ratios[0]:.2f}–{ratios[-1]:.2f}) |")
    print(f"\nload average after: {load()}")


def stream_table() -> None:
    here = Path(__file__).resolve().parents[1]
    src = here / "bench" / "_five_indicators.toml"
    src.write_text(
        '[strategy]\nname = "five"\nuniverse = "all"\ntimeframe = "1m"\n[rules]\n'
        'entry = "crossover(ema(close, 12), ema(close, 26)) and rsi(close, 14) < 70 and '
        'volume > 2 * sma(volume, 20) and close < bb_upper(close, 20, 2, 2)"\n'
        'exit = "macd_hist(close, 12, 26, 9) < 0 or bars_held >= 30 or unrealized_pct <= -2"\n',
        encoding="utf-8")
    try:
        cs = load_strategy(src)
    finally:
        src.unlink()
    print("\n### Streaming: five-indicator strategy (EMA×2, RSI, SMA, BBANDS, MACD), "
          "one closed bar per symbol per batch\n")
    print(f"load average before: {load()}\n")
    print("| symbols per batch | batches | µs per batch (wall) | µs per tick per symbol (wall) "
          "| µs per tick per symbol (CPU) |")
    print("|---:|---:|---:|---:|---:|")
    rng = np.random.default_rng(1)
    for n_sym in (1, 60, 500, 2000):
        ev = cs.stream(n_sym)
        steps = max(20, 200_000 // n_sym)
        px = 10_000 + np.cumsum(rng.normal(0, 5, (steps, n_sym)), axis=0)
        sym = np.arange(n_sym, dtype=np.int64)
        pos = np.zeros(n_sym)
        held = np.zeros(n_sym, np.int64)
        ep = np.full(n_sym, np.nan)
        rows = np.empty((steps, n_sym, 6))
        rows[..., 0] = px
        rows[..., 1] = px + 5
        rows[..., 2] = px - 5
        rows[..., 3] = px
        rows[..., 4] = rng.uniform(100, 1000, (steps, n_sym))
        rows[..., 5] = rows[..., 4] * px
        ev.update_batch(sym, rows[0], pos, held, ep)  # compile / warm
        t = time.perf_counter()
        c = time.process_time()
        for s in range(1, steps):
            ev.update_batch(sym, rows[s], pos, held, ep)
        cpu = (time.process_time() - c) / (steps - 1) * 1e6
        per_batch = (time.perf_counter() - t) / (steps - 1) * 1e6
        print(f"| {n_sym} | {steps - 1} | {per_batch:.1f} | {per_batch / n_sym:.3f} "
              f"| {cpu / n_sym:.3f} |")
    print(f"\nload average after: {load()}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("n_symbols", nargs="?", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--no-stream", action="store_true", help="batch table only")
    args = ap.parse_args()
    batch_table(args.n_symbols, args.rounds)
    if not args.no_stream:
        stream_table()
