"""Whole-array evaluation of a compiled strategy for the backtester, fast path.

Same program, same arithmetic as :class:`jts.strategy.VectorSignals` (and therefore as the
live streaming evaluator): indicator ops with a register-only batch loop in
:mod:`jts.indicators.fast` (SMA, EMA, RSI, MACD — bit-identical to the streaming kernels by
that module's tests) use it, every other indicator runs the generic ``run_batch``; the
element-wise and lag ops run in one numba loop each with the streaming interpreter's own
scalar function. Position-dependent ops (``tail``) are left for the simulation kernel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np
import numpy.typing as npt

from jts.indicators import fast
from jts.indicators.dispatch import run_batch
from jts.indicators.momentum import MACD, RSI
from jts.indicators.moving import EMA, SMA
from jts.indicators.registry import SPECS
from jts.strategy import kernel as K
from jts.strategy.loader import CompiledStrategy

F64 = npt.NDArray[np.float64]
_SPEC = {s.kind: s for s in SPECS}


@dataclass
class Signals:
    """One symbol's evaluated program: ``regs[n_regs, n_bars]``; ``entry``/``exit`` are
    complete when ``position_dependent`` is False."""

    regs: F64
    entry: npt.NDArray[np.bool_]
    exit: npt.NDArray[np.bool_]
    position_dependent: bool


@nb.njit(cache=True, nogil=True)
def _elementwise(op, dst, a, b, c, regs):  # type: ignore[no-untyped-def]
    for t in range(regs.shape[1]):
        regs[dst, t] = K._scalar(op, regs[a, t], regs[b, t], regs[c, t])


@nb.njit(cache=True, nogil=True)
def _lag(dst, a, n, regs):  # type: ignore[no-untyped-def]
    m = regs.shape[1]
    for t in range(min(n, m)):
        regs[dst, t] = math.nan
    for t in range(n, m):
        regs[dst, t] = regs[a, t - n]


def _indicator(ops: npt.NDArray[np.int64], fprm: F64, i: int, regs: F64) -> None:
    dst, n_out, kind, n_in = int(ops[i, 1]), int(ops[i, 4]), int(ops[i, 5]), int(ops[i, 7])
    p = fprm[i]
    if kind in (SMA, EMA, RSI) and n_out == 1:
        x = regs[int(ops[i, 8])]
        fn = fast.sma if kind == SMA else fast.ema if kind == EMA else fast.rsi
        regs[dst] = fn(x, int(p[0]))
        return
    if kind == MACD and n_out == 3:
        line, sig, hist = fast.macd(regs[int(ops[i, 8])], int(p[0]), int(p[1]), int(p[2]))
        regs[dst], regs[dst + 1], regs[dst + 2] = line, sig, hist
        return
    xs = np.ascontiguousarray(regs[ops[i, 8: 8 + n_in]])
    spec = _SPEC[kind]
    size = max(spec.state(tuple(float(v) for v in p[: len(spec.params)])), 1)
    regs[dst: dst + n_out] = run_batch(kind, xs, p, n_out, size)


def evaluate(cs: CompiledStrategy, open_: F64, high: F64, low: F64, close: F64,
             volume: F64, value: F64) -> Signals:
    """Evaluate every market-only op of ``cs`` over one symbol's bars (no gaps inside)."""
    prog = cs.program
    n = close.shape[0]
    n_regs = prog.regs.shape[0]
    regs = np.empty((n_regs, n))
    for j, col in enumerate((open_, high, low, close, volume, value)):
        regs[j] = col
    regs[K.N_FIXED - 4: K.N_FIXED] = np.nan
    consts = prog.regs[K.N_FIXED:]
    regs[K.N_FIXED:] = consts[:, None]          # constants; NaN rows are written by ops
    ops = prog.ops
    tail = set(prog.tail.tolist())
    for i in range(ops.shape[0]):
        if i in tail:
            continue
        op = int(ops[i, 0])
        if op == K.IND:
            _indicator(ops, prog.fprm, i, regs)
        elif op == K.LAG:
            _lag(int(ops[i, 1]), int(ops[i, 2]), int(ops[i, 5]), regs)
        else:
            _elementwise(op, int(ops[i, 1]), int(ops[i, 2]), int(ops[i, 3]), int(ops[i, 4]),
                         regs)
    pd = bool(tail)
    if pd:
        empty = np.zeros(0, np.bool_)
        return Signals(regs, empty, empty, True)
    return Signals(regs, regs[cs.entry_reg] != 0.0, regs[cs.exit_reg] != 0.0, False)
