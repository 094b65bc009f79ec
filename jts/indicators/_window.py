"""Streaming building blocks shared by every indicator kernel.

Every streaming kernel keeps its state in a slice of one float64 row ``st`` starting at offset
``o``; ``st[o]`` is always the number of valid bars consumed so far (0 = not started). A row of
zeros is a fresh state. Leading NaN inputs are skipped (TA-Lib's wrapper starts at the first
non-NaN value); a NaN after the start propagates through the arithmetic as it does in TA-Lib.

The helpers mirror TA-Lib's C loops operation for operation, so batch (a loop over these) and
TA-Lib agree to rounding and the streaming form equals the batch form bit for bit.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

NAN = np.nan


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
    """Simple moving average. State: count, sum, ring[n] (size n+2)."""
    c = st[o]
    if c == 0 and math.isnan(x):
        return NAN
    rb = o + 2
    ring_put(st, rb, n, c, x)
    st[o + 1] += x
    st[o] = c + 1
    if c + 1 < n:
        return NAN
    out = st[o + 1] / n
    st[o + 1] -= ring_ago(st, rb, n, c, n - 1)
    return out


@nb.njit(cache=True, fastmath={"contract"})  # fused multiply-add, exactly as TA-Lib's build
def ema_upd(st, o, x, n, k):  # type: ignore[no-untyped-def]
    """EMA seeded with the SMA of the first n values (TA-Lib default). State: count, value."""
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
        st[o + 1] = ((x - st[o + 1]) * k) + st[o + 1]
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
def var_upd(st, o, x, n):  # type: ignore[no-untyped-def]
    """Population variance (TA-Lib VAR running sums). State: count, s1, s2, ring[n]."""
    c = st[o]
    if c == 0 and math.isnan(x):
        return NAN
    rb = o + 3
    ring_put(st, rb, n, c, x)
    st[o] = c + 1
    st[o + 1] += x
    st[o + 2] += x * x
    if c < n - 1:
        return NAN
    m1 = st[o + 1] / n
    m2 = st[o + 2] / n
    t = ring_ago(st, rb, n, c, n - 1)
    st[o + 1] -= t
    st[o + 2] -= t * t
    return m2 - (m1 * m1)


@nb.njit(cache=True)
def sd_from_var(v):  # type: ignore[no-untyped-def]
    if math.isnan(v):
        return NAN
    return math.sqrt(v) if not v < 0.00000001 else 0.0


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
