"""Indicator throughput vs TA-Lib, and streaming strategy update cost per tick.

Run: .venv/bin/python bench/bench_indicators.py [n_symbols]
Measures N symbols (default 20) x 97,500 one-minute bars (~one KRX year: 250 days x 390 min)
and scales linearly to 500 symbols. pandas-ta is included when importable (it needs
Python >= 3.12, so on this 3.11 venv it is reported as unavailable).
"""

from __future__ import annotations

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


def series(n_sym: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return 10_000 + np.cumsum(rng.normal(0, 5, (n_sym, BARS)), axis=1)


def timed(fn: Callable[[np.ndarray], object], data: np.ndarray, reps: int = 3) -> float:
    fn(data[0])  # compile / warm
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        for row in data:
            fn(row)
        best = min(best, time.perf_counter() - t)
    return best


def batch_table(n_sym: int) -> None:
    import talib

    try:
        import pandas as pd
        import pandas_ta as pta  # type: ignore[import-not-found]
    except ImportError:
        pta = None
    data = series(n_sym)
    cases: list[tuple[str, Callable[[np.ndarray], object], Callable[[np.ndarray], object],
                      Callable[[np.ndarray], object] | None]] = [
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
    print(f"\n### Batch: {n_sym} symbols x {BARS:,} bars measured, scaled to {FULL} symbols\n")
    print("| indicator | JTS Mbars/s | TA-Lib Mbars/s | pandas-ta Mbars/s | JTS 500-sym s "
          "| TA-Lib 500-sym s | JTS/TA-Lib speed |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, ours, ref, pt in cases:
        a = timed(ours, data)
        b = timed(ref, data)
        c = timed(pt, data, 1) if pt else None
        scale = FULL / n_sym
        pts = f"{n_bars / c / 1e6:.1f}" if c else "n/a (needs Python ≥ 3.12)"
        print(f"| {name} | {n_bars / a / 1e6:.1f} | {n_bars / b / 1e6:.1f} | {pts} | "
              f"{a * scale:.2f} | {b * scale:.2f} | {b / a:.2f}x |")


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
    print("| symbols per batch | batches | µs per batch | µs per tick per symbol |")
    print("|---:|---:|---:|---:|")
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
        for s in range(1, steps):
            ev.update_batch(sym, rows[s], pos, held, ep)
        dt = time.perf_counter() - t
        per_batch = dt / (steps - 1) * 1e6
        print(f"| {n_sym} | {steps - 1} | {per_batch:.1f} | {per_batch / n_sym:.3f} |")


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    batch_table(n)
    stream_table()
