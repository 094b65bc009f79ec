"""Moving averages: SMA, EMA, WMA, DEMA, TEMA, KAMA, HMA, VWAP (streaming step + state sizes).

``step(kind, st, o, x, p, out)`` advances one indicator by one bar: ``x`` holds the inputs,
``p`` the parameters, results go to ``out``. ``state_size(kind, p)`` is the slice it needs.
"""

from __future__ import annotations

import math

import numba as nb

from jts.indicators._window import NAN, ema_upd, is_zero, sma_upd, wma_upd

SMA, EMA, WMA, DEMA, TEMA, KAMA, HMA, VWAP = 1, 2, 3, 4, 5, 6, 7, 8


def state_size(kind: int, p: tuple[float, ...]) -> int:
    n = int(p[0]) if p else 0
    if kind == SMA:
        return n + 2
    if kind == EMA:
        return 2
    if kind == WMA:
        return n + 3
    if kind == DEMA:
        return 4
    if kind == TEMA:
        return 6
    if kind == KAMA:
        return 3 + n + 2
    if kind == HMA:
        half, root = max(int(n / 2), 1), max(int(math.sqrt(n)), 1)
        return (half + 3) + (n + 3) + (root + 3)
    if kind == VWAP:
        return 3 + 2 * n
    raise ValueError(kind)


@nb.njit(cache=True)
def kama_upd(st, o, x, n):  # type: ignore[no-untyped-def]
    """Kaufman adaptive MA, TA-Lib's loop. State: count, sumROC, kama, ring[n+2]."""
    c = st[o]
    if c == 0 and math.isnan(x):
        return NAN
    rb = o + 3
    m = n + 2
    st[rb + int(c) % m] = x
    st[o] = c + 1
    if c == 0:
        return NAN
    prev = st[rb + int(c - 1) % m]
    if c < n:
        st[o + 1] += abs(prev - x)
        if c == n - 1:
            st[o + 2] = x
        return NAN
    if c == n:
        st[o + 1] += abs(prev - x)
        st[o + 2] = prev
    else:
        st[o + 1] -= abs(st[rb + int(c - n - 1) % m] - st[rb + int(c - n) % m])
        st[o + 1] += abs(x - prev)
    roc = x - st[rb + int(c - n) % m]
    s = st[o + 1]
    er = 1.0 if (s <= roc or is_zero(s)) else abs(roc / s)
    const_max = 2.0 / 31.0
    sc = (er * (2.0 / 3.0 - const_max)) + const_max
    sc *= sc
    st[o + 2] = ((x - st[o + 2]) * sc) + st[o + 2]
    return st[o + 2]


@nb.njit(cache=True)
def vwap_upd(st, o, h, lw, c_, v, n):  # type: ignore[no-untyped-def]
    """Rolling VWAP over n bars: sum(typical*volume)/sum(volume); zero volume -> NaN."""
    c = st[o]
    if c == 0 and (math.isnan(h) or math.isnan(lw) or math.isnan(c_) or math.isnan(v)):
        return NAN
    tp = (h + lw + c_) / 3.0
    rb = o + 3
    i = int(c) % n
    if c >= n:
        st[o + 1] -= st[rb + 2 * i]
        st[o + 2] -= st[rb + 2 * i + 1]
    st[rb + 2 * i] = tp * v
    st[rb + 2 * i + 1] = v
    st[o + 1] += tp * v
    st[o + 2] += v
    st[o] = c + 1
    if c < n - 1 or st[o + 2] == 0.0:
        return NAN
    return st[o + 1] / st[o + 2]


@nb.njit(cache=True)
def step(kind, st, o, x, p, out):  # type: ignore[no-untyped-def]
    n = int(p[0])
    if kind == SMA:
        out[0] = sma_upd(st, o, x[0], n)
    elif kind == EMA:
        out[0] = ema_upd(st, o, x[0], n, 2.0 / (n + 1))
    elif kind == WMA:
        out[0] = wma_upd(st, o, x[0], n)
    elif kind == DEMA:
        k = 2.0 / (n + 1)
        e1 = ema_upd(st, o, x[0], n, k)
        e2 = ema_upd(st, o + 2, e1, n, k)
        out[0] = (2.0 * e1) - e2
    elif kind == TEMA:
        k = 2.0 / (n + 1)
        e1 = ema_upd(st, o, x[0], n, k)
        e2 = ema_upd(st, o + 2, e1, n, k)
        e3 = ema_upd(st, o + 4, e2, n, k)
        out[0] = e3 + ((3.0 * e1) - (3.0 * e2))
    elif kind == KAMA:
        out[0] = kama_upd(st, o, x[0], n)
    elif kind == HMA:
        half = max(int(n / 2), 1)
        root = max(int(math.sqrt(n)), 1)
        a = wma_upd(st, o, x[0], half)
        o2 = o + half + 3
        b = wma_upd(st, o2, x[0], n)
        d = (2.0 * a) - b
        out[0] = wma_upd(st, o2 + n + 3, d, root)
    elif kind == VWAP:
        out[0] = vwap_upd(st, o, x[0], x[1], x[2], x[3], n)
