"""The numba interpreter for compiled strategy programs (streaming and per-bar tail evaluation).

A program is ``ops: int64[n_ops, 12]`` plus ``fprm: float64[n_ops, 3]`` over a register file
``regs: float64[n_regs]``. Columns of an op row::

    0 opcode  1 dst  2 a  3 b  4 c|n_outputs  5 kind|bars  6 state offset  7 n_inputs  8..11 inputs

Registers 0-5 are open high low close volume value, 6-9 position, bars_held, entry_price,
unrealized_pct; constants are preloaded; booleans are 1.0 / 0.0. ``x / 0`` is NaN; every
comparison with NaN is false.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from jts.indicators.dispatch import step_any

(ADD, SUB, MUL, DIV, NEG, LT, LE, GT, GE, EQ, NE, AND, OR, NOT, IF, ABS, MIN2, MAX2,
 IND, LAG) = range(1, 21)
R_OPEN, R_HIGH, R_LOW, R_CLOSE, R_VOLUME, R_VALUE = 0, 1, 2, 3, 4, 5
R_POSITION, R_BARS_HELD, R_ENTRY_PRICE, R_UNREALIZED = 6, 7, 8, 9
N_FIXED = 10
COLS = 12


@nb.njit(cache=True, inline="always")
def _scalar(op, a, b, c):  # type: ignore[no-untyped-def]
    if op == ADD:
        return a + b
    if op == SUB:
        return a - b
    if op == MUL:
        return a * b
    if op == DIV:
        return a / b if b != 0.0 else math.nan
    if op == NEG:
        return -a
    if op == LT:
        return 1.0 if a < b else 0.0
    if op == LE:
        return 1.0 if a <= b else 0.0
    if op == GT:
        return 1.0 if a > b else 0.0
    if op == GE:
        return 1.0 if a >= b else 0.0
    if op == EQ:
        return 1.0 if a == b else 0.0
    if op == NE:
        return 1.0 if a != b else 0.0
    if op == AND:
        return 1.0 if (a != 0.0 and b != 0.0) else 0.0
    if op == OR:
        return 1.0 if (a != 0.0 or b != 0.0) else 0.0
    if op == NOT:
        return 0.0 if a != 0.0 else 1.0
    if op == IF:
        return b if a != 0.0 else c
    if op == ABS:
        return abs(a)
    if op == MIN2:
        return math.nan if (math.isnan(a) or math.isnan(b)) else min(a, b)
    if op == MAX2:
        return math.nan if (math.isnan(a) or math.isnan(b)) else max(a, b)
    return math.nan


@nb.njit(cache=True, inline="always")
def _unrealized(close, position, entry_price):  # type: ignore[no-untyped-def]
    if position > 0:
        return (close / entry_price - 1.0) * 100.0
    if position < 0:
        return (1.0 - close / entry_price) * 100.0
    return math.nan


@nb.njit(cache=True)
def run_rows(ops, fprm, regs, state, sym_idx, bars, position, bars_held,  # type: ignore[no-untyped-def]
             entry_price, entry_reg, exit_reg, out_entry, out_exit):
    """Streaming: advance each (symbol, closed bar) row through the whole program in order."""
    xb = np.zeros(4)
    ob = np.zeros(8)
    n_ops = ops.shape[0]
    for k in range(sym_idx.shape[0]):
        st = state[sym_idx[k]]
        for j in range(6):
            regs[j] = bars[k, j]
        regs[R_POSITION] = position[k]
        regs[R_BARS_HELD] = bars_held[k]
        regs[R_ENTRY_PRICE] = entry_price[k]
        regs[R_UNREALIZED] = _unrealized(bars[k, 3], position[k], entry_price[k])
        for i in range(n_ops):
            op = ops[i, 0]
            if op == IND:
                for j in range(ops[i, 7]):
                    xb[j] = regs[ops[i, 8 + j]]
                step_any(ops[i, 5], st, ops[i, 6], xb, fprm[i], ob)
                d = ops[i, 1]
                for j in range(ops[i, 4]):
                    regs[d + j] = ob[j]
            elif op == LAG:
                o = ops[i, 6]
                n = ops[i, 5]
                c = int(st[o])
                st[o + 1 + c % (n + 1)] = regs[ops[i, 2]]
                st[o] = c + 1
                regs[ops[i, 1]] = st[o + 1 + (c - n) % (n + 1)] if c >= n else math.nan
            else:
                regs[ops[i, 1]] = _scalar(op, regs[ops[i, 2]], regs[ops[i, 3]], regs[ops[i, 4]])
        out_entry[k] = regs[entry_reg] != 0.0
        out_exit[k] = regs[exit_reg] != 0.0


@nb.njit(cache=True)
def eval_bar(ops, tail, regs2d, t, position, bars_held, entry_price, entry_reg, exit_reg):  # type: ignore[no-untyped-def]
    """Vector mode, one bar: evaluate the position-dependent ops ``tail`` (op indices) at bar
    ``t`` of the precomputed market registers ``regs2d[n_regs, n_bars]``; returns (entry, exit).

    Call it from a numba backtest kernel with the position state *before* bar t's decision.
    """
    regs2d[R_POSITION, t] = position
    regs2d[R_BARS_HELD, t] = bars_held
    regs2d[R_ENTRY_PRICE, t] = entry_price
    regs2d[R_UNREALIZED, t] = _unrealized(regs2d[R_CLOSE, t], position, entry_price)
    for q in range(tail.shape[0]):
        i = tail[q]
        regs2d[ops[i, 1], t] = _scalar(ops[i, 0], regs2d[ops[i, 2], t], regs2d[ops[i, 3], t],
                                       regs2d[ops[i, 4], t])
    return regs2d[entry_reg, t] != 0.0, regs2d[exit_reg, t] != 0.0
