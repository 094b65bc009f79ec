"""Numba kernels of the columnar bar builder: a tick batch (symbol row, ts, price, volume
columns) folded into the open bars of a whole universe held as arrays, and the bars a time
boundary closes. Same arithmetic, in the same order, as the per-tick Python path of
:class:`jts.bars.BarBuilder` (so the bars are bit for bit the same)."""

from __future__ import annotations

import numba as nb
import numpy as np

NONE = np.iinfo(np.int64).min         # "no open bar" in ``start``

# columns of the open-bar state and of closed bars (``ohlcvv``)
OPEN, H, L, C, V, VAL = range(6)


@nb.njit(cache=True)
def fold(sym, ts, px, vol, tf, off, start, state, out_sym, out_start, out_ohlcvv):  # type: ignore[no-untyped-def]
    """Fold the rows with ``sym >= 0`` into ``start``/``state``; a tick past its symbol's open
    bar closes it into the ``out_*`` buffers (size >= rows). Returns (closed, late ticks,
    newest ts over every row, -2**62 when there are none)."""
    n_out = 0
    late = 0
    newest = -(1 << 62)
    for r in range(sym.shape[0]):
        t = ts[r]
        if t > newest:
            newest = t
        s = sym[r]
        if s < 0:
            continue
        p = px[r]
        st = start[s]
        if st != NONE:
            d = t - st
            if 0 <= d < tf:
                state[s, C] = p
                if p > state[s, H]:
                    state[s, H] = p
                if p < state[s, L]:
                    state[s, L] = p
                v = vol[r]
                state[s, V] += v
                state[s, VAL] += p * v
                continue
            if d < 0:
                late += 1
                continue
            out_sym[n_out] = s
            out_start[n_out] = st
            for j in range(6):
                out_ohlcvv[n_out, j] = state[s, j]
            n_out += 1
        start[s] = ((t + off) // tf) * tf - off
        v = vol[r]
        state[s, OPEN] = p
        state[s, H] = p
        state[s, L] = p
        state[s, C] = p
        state[s, V] = v
        state[s, VAL] = p * v
    return n_out, late, newest


@nb.njit(cache=True)
def close_before(boundary, start, state, out_sym, out_start, out_ohlcvv, n_out):  # type: ignore[no-untyped-def]
    """Close every open bar that started before ``boundary`` into the ``out_*`` buffers from
    row ``n_out`` on (room for every symbol); returns the new row count."""
    for s in range(start.shape[0]):
        st = start[s]
        if st != NONE and st < boundary:
            out_sym[n_out] = s
            out_start[n_out] = st
            for j in range(6):
                out_ohlcvv[n_out, j] = state[s, j]
            n_out += 1
            start[s] = NONE
    return n_out
