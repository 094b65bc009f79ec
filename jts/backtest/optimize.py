"""Parameter optimization: grid or random search over ``--param name=lo:hi:step`` ranges,
optionally walk-forward (optimize in-sample, then run the winner on the following
out-of-sample days, rolling), parallel over processes (fork: the bars are inherited, not
copied through pipes). A parameter set is recompiled from the already-parsed strategy
(~0.1 ms), so sweeps cost the simulation, not the parser.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing as mp
import os
import random
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import product
from types import MappingProxyType
from typing import Any

import numpy as np

from jts.backtest import kernel as K
from jts.backtest.data import InputError
from jts.backtest.engine import Settings, run_backtest
from jts.backtest.metrics import portfolio_metrics
from jts.costs import CostModel
from jts.storage.timeseries import BarArrays
from jts.strategy.compile import Compiler
from jts.strategy.errors import Source
from jts.strategy.loader import CompiledStrategy

OBJECTIVES = ("sharpe", "sortino", "calmar", "return", "annualized_return", "profit_factor",
              "expectancy", "win_rate", "max_drawdown")
MAX_COMBOS = 1_000_000
SUMMARY = ("total_return", "annualized_return", "sharpe", "sortino", "calmar", "max_drawdown",
           "trade_count", "win_rate", "profit_factor", "final_equity")


@dataclass(frozen=True)
class ParamSpec:
    name: str
    values: tuple[float, ...]


def parse_param(text: str, cs: CompiledStrategy) -> ParamSpec:
    """``name=lo:hi:step`` (inclusive), ``name=a,b,c`` or ``name=x``."""
    name, eq, spec = text.partition("=")
    name = name.strip()
    if not eq or not name or not spec.strip():
        raise InputError(f"--param {text!r}: expected name=lo:hi:step or name=a,b,c")
    if name not in cs.params:
        known = ", ".join(cs.params) or "none"
        raise InputError(f"--param {name}: the strategy has no parameter {name!r} "
                         f"(its [params]: {known})")
    try:
        if ":" in spec:
            parts = [float(x) for x in spec.split(":")]
            if len(parts) not in (2, 3):
                raise ValueError
            lo, hi = parts[0], parts[1]
            step = parts[2] if len(parts) == 3 else 1.0
            if not all(math.isfinite(x) for x in parts):
                raise ValueError
            if step <= 0:
                raise InputError(f"--param {text}: step must be > 0")
            if lo > hi:
                raise InputError(f"--param {text}: empty range ({lo:g} > {hi:g})")
            n = math.floor((hi - lo) / step + 1e-9) + 1
            if n > MAX_COMBOS:
                raise InputError(f"--param {text}: {n} values is too many")
            values = tuple(round(lo + i * step, 10) for i in range(n))
        else:
            values = tuple(float(x) for x in spec.split(","))
            if not all(math.isfinite(x) for x in values):
                raise ValueError
    except ValueError:
        raise InputError(f"--param {text!r}: not numbers (use name=lo:hi:step)") from None
    return ParamSpec(name, values)


def combos(specs: Sequence[ParamSpec], method: str = "grid", samples: int = 100,
           seed: int = 0) -> list[dict[str, float]]:
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise InputError("--param: a parameter is given twice")
    total = math.prod(len(s.values) for s in specs)
    if total > MAX_COMBOS:
        raise InputError(f"{total:,} parameter combinations is too many (max {MAX_COMBOS:,})")
    if method == "grid":
        return [dict(zip(names, vals, strict=True)) for vals in product(*(s.values for s in specs))]
    if method != "random":
        raise InputError(f"--method must be grid or random, got {method!r}")
    if samples < 1:
        raise InputError("--samples must be ≥ 1")
    rng = random.Random(seed)
    picks = rng.sample(range(total), min(samples, total))
    out = []
    for k in picks:
        combo = {}
        for s in reversed(specs):
            k, i = divmod(k, len(s.values))
            combo[s.name] = s.values[i]
        out.append({n: combo[n] for n in names})
    return out


def recompile(cs: CompiledStrategy, overrides: dict[str, float]) -> CompiledStrategy:
    """``cs`` with other parameter values, compiled from its parsed rules."""
    values = {**cs.params, **overrides}
    src = Source("", str(cs.path), exact=False)
    comp = Compiler(values, {k: (n, src) for k, n in cs.vars.items()})
    vals = {w: comp.compile(cs.rules[w], src) for w in ("entry", "exit")}
    prog = comp.finish(vals)
    return dataclasses.replace(cs, params=MappingProxyType(values), program=prog,
                               entry_reg=vals["entry"].reg, exit_reg=vals["exit"].reg,
                               warmup_bars=max(vals["entry"].warm, vals["exit"].warm))


def score(m: dict[str, Any], objective: str) -> float:
    key = "total_return" if objective == "return" else objective
    v = m.get(key)
    if v is None or not math.isfinite(v):
        return -math.inf
    return -float(v) if objective == "max_drawdown" else float(v)


def slice_bars(b: BarArrays, lo: int, hi: int) -> BarArrays:
    return BarArrays(b.symbols, b.timeframe, b.ts_ns[lo:hi],
                     {k: v[:, lo:hi] for k, v in b.columns.items()})


# ---- worker side ---------------------------------------------------------------------------
_CTX: dict[str, Any] = {}


def _init(cs: CompiledStrategy, bars: BarArrays, costs: CostModel, st: Settings) -> None:
    _CTX.update(cs=cs, bars=bars, costs=costs, st=st)


def _work(lo: int, hi: int, measure_from: int, batch: list[dict[str, float]]
          ) -> list[dict[str, Any]]:
    cs0: CompiledStrategy = _CTX["cs"]
    bars = slice_bars(_CTX["bars"], lo, hi)
    out = []
    for combo in batch:
        cs = recompile(cs0, combo)
        res = run_backtest(cs, bars, _CTX["costs"], _CTX["st"])
        k = measure_from - lo
        cash0 = res.initial_cash if k == 0 else float(res.equity[k - 1])
        rows = res.rows[res.rows[:, K.T_ENTRY_BAR] >= k] if k else res.rows
        m = portfolio_metrics(res.equity[k:], res.gross[k:], res.ts_ns[k:], cash0, rows,
                              res.timeframe, fees=res.fees, slippage=res.slippage,
                              turnover=res.turnover)
        out.append({"params": combo, **{s: m.get(s) for s in SUMMARY}})
    return out


class Runner:
    """Evaluates batches of parameter sets over bar windows, inline or on a process pool."""

    def __init__(self, cs: CompiledStrategy, bars: BarArrays, costs: CostModel, st: Settings,
                 jobs: int = 0) -> None:
        self.jobs = jobs or min(os.cpu_count() or 1, 8)
        _init(cs, bars, costs, st)
        self.pool: ProcessPoolExecutor | None = None
        if self.jobs > 1:
            self.pool = ProcessPoolExecutor(self.jobs, mp_context=mp.get_context("fork"),
                                            initializer=_init, initargs=(cs, bars, costs, st))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def run(self, lo: int, hi: int, measure_from: int, sets: list[dict[str, float]]
            ) -> list[dict[str, Any]]:
        if self.pool is None or len(sets) < 2:
            return _work(lo, hi, measure_from, sets)
        n = max(1, math.ceil(len(sets) / (self.jobs * 4)))
        futs = [self.pool.submit(_work, lo, hi, measure_from, sets[i: i + n])
                for i in range(0, len(sets), n)]
        return [r for f in futs for r in f.result()]


def day_starts(ts_ns: np.ndarray) -> np.ndarray:
    day = (ts_ns + 9 * 3_600 * 10**9) // (86_400 * 10**9)
    out: np.ndarray = np.r_[0, np.flatnonzero(np.diff(day) != 0) + 1]
    return out


def walk_forward(runner: Runner, ts_ns: np.ndarray, sets: list[dict[str, float]],
                 is_days: int, oos_days: int, objective: str, warmup: int
                 ) -> list[dict[str, Any]]:
    """Rolling folds: optimize on ``is_days`` trading days, run the best set on the next
    ``oos_days`` (simulated from the start of the in-sample window so indicators are warm;
    only the out-of-sample part is measured)."""
    starts = day_starts(ts_ns)
    n_days = starts.shape[0]
    if is_days < 1 or oos_days < 1:
        raise InputError("--walk-forward IS:OOS needs positive day counts")
    if is_days + oos_days > n_days:
        raise InputError(f"--walk-forward {is_days}:{oos_days} needs {is_days + oos_days} "
                         f"trading days, the data has {n_days}")
    bounds = np.r_[starts, ts_ns.shape[0]]
    folds = []
    d = 0
    while d + is_days + oos_days <= n_days:
        lo, mid, hi = int(bounds[d]), int(bounds[d + is_days]), int(bounds[d + is_days + oos_days])
        if mid - lo < warmup + 2:
            raise InputError(f"in-sample window of {is_days} days has {mid - lo} bars; the "
                             f"strategy needs {warmup} bars of warm-up")
        ins = runner.run(lo, mid, lo, sets)
        best = max(ins, key=lambda r: score(r, objective))
        oos = runner.run(lo, hi, mid, [best["params"]])[0]
        folds.append({"is_from": int(ts_ns[lo]), "is_to": int(ts_ns[mid - 1]),
                      "oos_from": int(ts_ns[mid]), "oos_to": int(ts_ns[hi - 1]),
                      "params": best["params"], "in_sample": best, "out_of_sample": oos})
        d += oos_days
    return folds
