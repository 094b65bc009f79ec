"""Streaming building blocks shared by every indicator kernel.

Every streaming kernel keeps its state in a slice of one float64 row ``st`` starting at offset
``o``; ``st[o]`` is always the number of valid bars consumed so far (0 = not started). A row of
zeros is a fresh state. Leading NaN inputs are skipped (TA-Lib's wrapper starts at the first
non-NaN value); a NaN after the start propagates through the arithmetic as it does in TA-Lib.

The helpers follow TA-Lib's C loops (seeding, warm-up, zero tests) and agree with TA-Lib to
rounding; three recurrences are rearranged for a shorter dependency chain (SMA: one add per bar;
EMA: one fused multiply-add per bar; variance: sums re-centred on a recent value and recomputed
every ``recenter_every(n)`` bars). ``fast.py`` repeats the same operations, so the streaming
form equals the batch form bit for bit.
"""

from __future__ import annotations

import math
from typing import Any

import numba as nb
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

NAN = np.nan


@intrinsic
def _fma(typingctx, a, b, c):  # type: ignore[no-untyped-def]
    """a * b + c with one rounding (llvm.fma): explicit, so batch and streaming fuse alike."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        d = ir.DoubleType()
        fn = builder.module.declare_intrinsic("llvm.fma", [d], ir.FunctionType(d, [d, d, d]))
        return builder.call(fn, args)

    return sig, codegen


fma: Any = _fma  # typed loosely: mypy sees the intrinsic's typing signature, numba the call


@nb.njit(cache=True, inline="always")
def ema_coef(k):  # type: ignore[no-untyped-def]
    """(a, k') with a = 1 - k rounded and k' = 1 - a exact, so a + k' == 1 and an EMA of a
    constant stays exactly that constant."""
    a = 1.0 - k
    return a, 1.0 - a


@nb.njit(cache=True, inline="always")
def recenter_every(n):  # type: ignore[no-untyped-def]
    """Bars between recomputations of the re-centred variance sums (see ``msd_upd``)."""
    return max(1024, 4 * n)


@nb.njit(cache=True, inline="always")
def is_zero(v: float) -> bool:
    return -0.00000001 < v < 0.00000001


@nb.njit(cache=True, inline="always")
def ring_put(st, rb, size, count, x):  # type: ignore[no-untyped-def]
    """Store ``x`` as element number ``count`` of a ring of ``size`` starting at ``rb``."""
    st[rb + int(count) % size] = x


@nb.njit(cache=True, inline="always")
def ring_ago(st, rb, size, count, k):  # type: ignore[no-untyped-def]
    """Element stored ``k`` bars before element number ``count`` (k < size)."""
    return st[rb + (int(count) - int(k)) % size]


@nb.njit(cache=True)
def sma_upd(st, o, x, n):  # type: ignore[no-untyped-def]
    """Simple moving average. State: count, window sum, ring[n] (size n+2).

    The sum is seeded like TA-Lib's, then updated with ``sum += x - x[n bars ago]``.
    """
    c = st[o]
    if c == 0 and math.isnan(x):
        return NAN
    slot = o + 2 + int(c) % n
    st[o] = c + 1
    if c < n:
        st[slot] = x
        st[o + 1] += x
        if c < n - 1:
            return NAN
        return st[o + 1] / n
    old = st[slot]
    st[slot] = x
    st[o + 1] += x - old
    return st[o + 1] / n


@nb.njit(cache=True)
def ema_upd(st, o, x, n, k):  # type: ignore[no-untyped-def]
    """EMA seeded with the SMA of the first n values (TA-Lib default), then
    ``e = fma(1 - k, e, k * x)``. State: count, value."""
    c = st[o]
    if c == 0 and math.isnan(x):
        return NAN
    st[o] = c + 1
    if c < n - 1:
        st[o + 1] += x
        return NAN
    if c == n - 1:
        st[o + 1] = (st[o + 1] + x) / n
    else:
        a, kk = ema_coef(k)
        st[o + 1] = fma(a, st[o + 1], kk * x)
    return st[o + 1]


@nb.njit(cache=True)
def wma_upd(st, o, x, n):  # type: ignore[no-untyped-def]
    """Linearly weighted MA. State: count, periodSum, periodSub, ring[n] (size n+3)."""
    c = st[o]
    if c == 0 and math.isnan(x):
        return NAN
    rb = o + 3
    trailing = st[rb + int(c) % n] if c >= n else 0.0
    ring_put(st, rb, n, c, x)
    st[o] = c + 1
    if c < n - 1:
        st[o + 2] += x
        st[o + 1] += x * (c + 1)
        return NAN
    st[o + 2] += x
    st[o + 2] -= trailing
    st[o + 1] += x * n
    out = st[o + 1] / (n * (n + 1) / 2.0)
    st[o + 1] -= st[o + 2]
    return out


@nb.njit(cache=True)
def msd_sums(st, o, n):  # type: ignore[no-untyped-def]
    """Recompute the re-centred sums from the ring; the newest value becomes the centre."""
    rb = o + 4
    c = int(st[o]) - 1  # number of the newest value
    ctr = st[rb + c % n]
    s1 = 0.0
    s2 = 0.0
    for j in range(c - n + 1, c + 1):
        y = st[rb + j % n] - ctr
        s1 += y
        s2 += y * y
    st[o + 1] = s1
    st[o + 2] = s2
    st[o + 3] = ctr


@nb.njit(cache=True)
def msd_upd(st, o, x, n):  # type: ignore[no-untyped-def]
    """Rolling mean and population variance (TA-Lib VAR's ``E[y²] - E[y]²`` on values re-centred
    on a recent one, recomputed every ``recenter_every(n)`` bars; a NaN inside the window
    stays). State: count, s1, s2, centre, ring[n] (size n+4). Returns (mean, var)."""
    c = st[o]
    if c == 0 and math.isnan(x):
        return NAN, NAN
    slot = o + 4 + int(c) % n
    old = st[slot]
    st[slot] = x
    st[o] = c + 1
    if c < n - 1:
        return NAN, NAN
    if (c - (n - 1)) % recenter_every(n) == 0:
        if st[o + 1] == st[o + 1]:  # not NaN: a NaN that entered the window stays
            msd_sums(st, o, n)
    else:
        ctr = st[o + 3]
        yn = x - ctr
        yo = old - ctr
        d = yn - yo
        st[o + 1] += d
        st[o + 2] += d * (yn + yo)
    my = st[o + 1] / n
    return st[o + 3] + my, st[o + 2] * (1.0 / n) - my * my


@nb.njit(cache=True)
def var_upd(st, o, x, n):  # type: ignore[no-untyped-def]
    """Population variance (see ``msd_upd``; same state)."""
    return msd_upd(st, o, x, n)[1]


@nb.njit(cache=True, inline="always")
def sd_from_var(v):  # type: ignore[no-untyped-def]
    """sqrt(v), 0 below TA-Lib's 1e-8, NaN stays NaN (written branch-free so it vectorizes)."""
    sd = math.sqrt(abs(v))
    return 0.0 if v < 0.00000001 else sd


@nb.njit(cache=True)
def extreme_upd(st, o, x, n, want_max):  # type: ignore[no-untyped-def]
    """Highest (or lowest) of the last n values and its age in bars (ties: newest).

    State: count, value, index, ring[n] (size n+3). Returns (value, age); NaN before n values.
    Amortized O(1): the window is rescanned only when the extreme leaves it.
    """
    c = int(st[o])
    if c == 0 and math.isnan(x):
        return NAN, NAN
    rb = o + 3
    ring_put(st, rb, n, c, x)
    st[o] = c + 1
    best = st[o + 1]
    bidx = int(st[o + 2])
    if c == 0 or bidx <= c - n:
        start = c - n + 1 if c - n + 1 > 0 else 0
        best = ring_ago(st, rb, n, c, c - start)
        bidx = start
        j = start + 1
        while j <= c:
            v = ring_ago(st, rb, n, c, c - j)
            if (v >= best) if want_max else (v <= best):
                best = v
                bidx = j
            j += 1
    elif (x >= best) if want_max else (x <= best):
        best = x
        bidx = c
    st[o + 1] = best
    st[o + 2] = bidx
    if c < n - 1:
        return NAN, NAN
    return best, c - bidx
