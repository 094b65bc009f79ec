"""Backtest speed: the full jts path (formula → indicators → simulation → metrics) against
vectorbt and backtesting.py on identical synthetic KRX minute bars and the same SMA cross.

    .venv/bin/python bench/bench_backtest.py [--symbols 500] [--peers /path/to/site]

Peers are optional: install them outside the project venv, e.g.
``.venv/bin/pip install --target /work/bench-site vectorbt backtesting`` and pass
``--peers /work/bench-site`` (appended to sys.path, so the project's numpy/numba win).
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jts.backtest import run_backtest
from jts.backtest.metrics import portfolio_metrics
from jts.backtest.optimize import Runner, combos, parse_param
from jts.backtest.synth import random_bars
from jts.strategy import load_strategy

FAST, SLOW, DAYS = 10, 30, 250
TOML = f"""
[strategy]
name = "sma_cross"
universe = ["005930"]
timeframe = "1m"
[params]
fast = {FAST}
slow = {SLOW}
[rules]
entry = "crossover(sma(close, fast), sma(close, slow))"
exit = "crossunder(sma(close, fast), sma(close, slow))"
[sizing]
method = "fixed_notional"
value = 1000000
"""


def strategy_file() -> Path:
    p = Path(tempfile.gettempdir()) / "jts_bench_sma.toml"
    p.write_text(TOML, encoding="utf-8")
    return p


def jts_once(cs, bars) -> float:  # type: ignore[no-untyped-def]
    res = run_backtest(cs, bars)
    m = portfolio_metrics(res.equity, res.gross, res.ts_ns, res.initial_cash, res.rows,
                          res.timeframe, fees=res.fees, slippage=res.slippage,
                          turnover=res.turnover)
    return float(m["final_equity"])


def best_of(fn, n: int = 5) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(n):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _worker(args: tuple[str, list[int]]) -> float:
    path, seeds = args
    cs = load_strategy(path)
    total = 0.0
    for seed in seeds:
        bars = random_bars(["005930"], DAYS, seed=seed)      # data generation not timed
        t = time.perf_counter()
        jts_once(cs, bars)
        total += time.perf_counter() - t
    return total


def many_jts(path: str, n: int, jobs: int) -> tuple[float, float]:
    """(compute seconds of the slowest process, wall seconds incl. data generation)."""
    seeds = list(range(n))
    parts = [(path, seeds[i::jobs]) for i in range(jobs)]
    t = time.perf_counter()
    with mp.get_context("fork").Pool(jobs) as pool:
        times = pool.map(_worker, parts)
    return max(times), time.perf_counter() - t


def cold_start(path: str) -> float:
    code = ("import time; t=time.perf_counter();"
            "from jts.backtest import run_backtest; from jts.backtest.synth import random_bars;"
            "from jts.strategy import load_strategy;"
            f"run_backtest(load_strategy({path!r}), random_bars(['005930'], 5));"
            "print(time.perf_counter()-t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parent.parent)
    return float(out.stdout.strip().splitlines()[-1])


def vbt_run(vbt, close):  # type: ignore[no-untyped-def]
    fast = vbt.MA.run(close, FAST)
    slow = vbt.MA.run(close, SLOW)
    pf = vbt.Portfolio.from_signals(close, fast.ma_crossed_above(slow),
                                    fast.ma_crossed_below(slow), fees=0.00015,
                                    init_cash=100_000_000, size=1_000_000, size_type="value",
                                    freq="1min")
    return pf.total_return(), pf.sharpe_ratio()


def bt_run(close_df):  # type: ignore[no-untyped-def]
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover

    def sma(x, n):  # type: ignore[no-untyped-def]
        s = np.cumsum(np.r_[0.0, x])
        out = np.full(len(x), np.nan)
        out[n - 1:] = (s[n:] - s[:-n]) / n
        return out

    class Cross(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.f = self.I(sma, self.data.Close, FAST)
            self.s = self.I(sma, self.data.Close, SLOW)

        def next(self) -> None:
            if crossover(self.f, self.s):
                self.buy(size=max(1, int(1_000_000 // self.data.Close[-1])))
            elif crossover(self.s, self.f):
                self.position.close()

    return Backtest(close_df, Cross, cash=100_000_000, commission=0.00015,
                    exclusive_orders=True, finalize_trades=True).run()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--peers", default=os.environ.get("JTS_BENCH_PEERS", "/work/bench-site"))
    a = ap.parse_args()
    path = str(strategy_file())
    rows: list[tuple[str, str, str]] = []
    cold = cold_start(path)
    rows.append(("jts cold start (fresh process: imports + cached JIT + 1 run)", f"{cold:.2f} s",
                 "target ≤ 5 s"))
    cs = load_strategy(path)
    bars = random_bars(["005930"], DAYS, seed=1)
    n = bars.ts_ns.shape[0]
    jts_once(cs, bars)
    warm = best_of(lambda: jts_once(cs, bars), 7)
    rows.append((f"jts 1 symbol × 1 year ({n:,} 1m bars), warm", f"{warm * 1e3:.2f} ms", ""))
    specs = [parse_param("fast=5:14:1", cs), parse_param("slow=20:65:5", cs)]
    sets = combos(specs)
    runner = Runner(cs, bars, __import__("jts.costs").costs.CostModel(),
                    __import__("jts.backtest").backtest.Settings(), a.jobs)
    runner.run(0, n, 0, sets[: a.jobs * 4])            # warm the workers
    grid = best_of(lambda: runner.run(0, n, 0, sets), 3)
    runner.close()
    rows.append((f"jts 10 × 10 grid over 1 symbol-year, {a.jobs} processes, warm",
                 f"{grid:.3f} s", "target ≤ 1 s"))
    comp, wall = many_jts(path, a.symbols, a.jobs)
    rows.append((f"jts {a.symbols} symbol-years, {a.jobs} processes (compute / wall incl. "
                 "data generation and JIT load)", f"{comp:.2f} s / {wall:.2f} s",
                 "target ≤ 5 s"))
    if a.peers and Path(a.peers).is_dir():
        sys.path.append(a.peers)
        try:
            import pandas as pd
            import vectorbt as vbt
            close = pd.Series(bars.close[0],
                              index=pd.to_datetime(bars.ts_ns, utc=True).tz_convert("Asia/Seoul"))
            t = time.perf_counter()
            vbt_run(vbt, close)
            vcold = time.perf_counter() - t
            vwarm = best_of(lambda: vbt_run(vbt, close), 5)
            rows.append((f"vectorbt {vbt.__version__} 1 symbol-year cold / warm",
                         f"{vcold:.2f} s / {vwarm * 1e3:.1f} ms",
                         f"jts is {vwarm / warm:.1f}× faster warm"))
            k = 50
            wide = pd.DataFrame(random_bars([f"S{i}" for i in range(k)], DAYS, seed=3).close.T,
                                index=close.index)
            t = time.perf_counter()
            vbt_run(vbt, wide)
            v50 = time.perf_counter() - t
            rows.append((f"vectorbt {k} symbol-years as {k} columns, warm (×{a.symbols // k} "
                         f"= est. {a.symbols})", f"{v50:.2f} s (est. {v50 * a.symbols / k:.1f} s)",
                         "single process"))
        except Exception as exc:  # a peer that does not run here is reported, not fatal
            rows.append(("vectorbt", f"failed: {type(exc).__name__}: {exc}"[:80], ""))
        try:
            import backtesting
            df = pd.DataFrame({"Open": bars.open[0], "High": bars.high[0], "Low": bars.low[0],
                               "Close": bars.close[0], "Volume": bars.volume[0]},
                              index=pd.to_datetime(bars.ts_ns))
            t = time.perf_counter()
            bt_run(df)
            bt1 = time.perf_counter() - t
            bt2 = best_of(lambda: bt_run(df), 2)
            rows.append((f"backtesting.py {backtesting.__version__} 1 symbol-year cold / warm",
                         f"{bt1:.2f} s / {bt2:.2f} s", f"jts is {bt2 / warm:,.0f}× faster warm"))
        except Exception as exc:
            rows.append(("backtesting.py", f"failed: {type(exc).__name__}: {exc}"[:80], ""))
    print(f"\n### Backtest (SMA {FAST}/{SLOW} cross, synthetic KRX 1m bars, "
          f"{os.cpu_count()} cores)\n")
    print("| case | time | note |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")


if __name__ == "__main__":
    main()
