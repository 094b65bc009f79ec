"""Volatility and range: TRANGE, ATR, NATR, STDDEV, BBANDS, Keltner, Donchian, z-score,
MAX/MIN (highest/lowest), LINEARREG_SLOPE — streaming ``step`` kernels (see ``_window``)."""

from __future__ import annotations

import math

import numba as nb

from jts.indicators._window import (
    NAN,
    ema_upd,
    extreme_upd,
    fma,
    is_zero,
    msd_upd,
    sd_from_var,
    sma_upd,
    var_upd,
)

TRANGE, ATR, NATR, STDDEV, BBANDS, KELTNER, DONCHIAN, ZSCORE, MAX, MIN, LINREG_SLOPE = range(50, 61)


def state_size(kind: int, p: tuple[float, ...]) -> int:
    n = int(p[0]) if p else 0
    if kind == TRANGE:
        return 2
    if kind in (ATR, NATR):
        return 4
    if kind == STDDEV:
        return n + 4
    if kind == BBANDS:
        return n + 4
    if kind == KELTNER:
        return 2 + 4
    if kind == DONCHIAN:
        return 2 * (n + 3)
    if kind == ZSCORE:
        return (n + 2) + (n + 4)
    if kind in (MAX, MIN):
        return n + 3
    if kind == LINREG_SLOPE:
        return 1 + n
    raise ValueError(kind)


@nb.njit(cache=True)
def trange_upd(st, o, h, lw, c_):  # type: ignore[no-untyped-def]
    """True range (TA-Lib: undefined on the first bar). State: count, previous close."""
    c = st[o]
    if c == 0 and (math.isnan(h) or math.isnan(lw) or math.isnan(c_)):
        return NAN
    st[o] = c + 1
    yc = st[o + 1]
    st[o + 1] = c_
    if c == 0:
        return NAN
    tr = h - lw
    t = abs(h - yc)
    if t > tr:
        tr = t
    t = abs(lw - yc)
    if t > tr:
        tr = t
    return tr


@nb.njit(cache=True)
def atr_upd(st, o, h, lw, c_, n):  # type: ignore[no-untyped-def]
    """Wilder ATR seeded with the mean of the first n true ranges. State: trange(2), count, atr."""
    tr = trange_upd(st, o, h, lw, c_)
    if math.isnan(tr) and st[o + 2] == 0:
        return NAN
    k = st[o + 2]
    st[o + 2] = k + 1
    if n == 1:
        return tr
    if k < n:
        st[o + 3] += tr
        if k < n - 1:
            return NAN
        st[o + 3] /= n
        return st[o + 3]
    a = st[o + 3] * (n - 1)
    a += tr
    a /= n
    st[o + 3] = a
    return a


@nb.njit(cache=True)
def step(kind, st, o, x, p, out):  # type: ignore[no-untyped-def]
    n = int(p[0])
    if kind == TRANGE:
        out[0] = trange_upd(st, o, x[0], x[1], x[2])
    elif kind == ATR:
        out[0] = atr_upd(st, o, x[0], x[1], x[2], n)
    elif kind == NATR:
        a = atr_upd(st, o, x[0], x[1], x[2], n)
        if math.isnan(a):
            out[0] = NAN
        else:
            out[0] = (a / x[2]) * 100.0 if not is_zero(x[2]) else 0.0
    elif kind == STDDEV:
        out[0] = sd_from_var(var_upd(st, o, x[0], n)) * p[1]
    elif kind == BBANDS:
        mid, var = msd_upd(st, o, x[0], n)  # NaN in warm-up: every output below is NaN
        sd = sd_from_var(var)
        up = fma(sd, p[1], mid)
        lo = fma(sd, -p[2], mid)
        out[0] = up
        out[1] = mid
        out[2] = lo
        rng = up - lo
        out[3] = (x[0] - lo) / rng if rng != 0.0 else NAN
        out[4] = rng / mid if mid != 0.0 else NAN
    elif kind == KELTNER:
        m = ema_upd(st, o, x[2], n, 2.0 / (n + 1))
        a = atr_upd(st, o + 2, x[0], x[1], x[2], int(p[2]))
        if math.isnan(m) or math.isnan(a):
            out[0] = NAN
            out[1] = NAN
            out[2] = NAN
        else:
            out[0] = m + p[1] * a
            out[1] = m
            out[2] = m - p[1] * a
    elif kind == DONCHIAN:
        hh, _ = extreme_upd(st, o, x[0], n, True)
        ll, _ = extreme_upd(st, o + n + 3, x[1], n, False)
        out[0] = hh
        out[1] = (hh + ll) / 2.0
        out[2] = ll
    elif kind == ZSCORE:
        m = sma_upd(st, o, x[0], n)
        sd = sd_from_var(var_upd(st, o + n + 2, x[0], n))
        out[0] = (x[0] - m) / sd if sd != 0.0 else NAN
    elif kind == MAX or kind == MIN:
        v, _ = extreme_upd(st, o, x[0], n, kind == MAX)
        out[0] = v
    elif kind == LINREG_SLOPE:
        c = st[o]
        if c == 0 and math.isnan(x[0]):
            out[0] = NAN
            return
        st[o + 1 + int(c) % n] = x[0]
        st[o] = c + 1
        if c < n - 1:
            out[0] = NAN
            return
        sx = n * (n - 1) * 0.5
        sxx = n * (n - 1) * (2 * n - 1) / 6.0
        div = sx * sx - n * sxx
        sxy = 0.0
        sy = 0.0
        i = n - 1
        while i >= 0:
            y = st[o + 1 + int(c - i) % n]
            sy += y
            sxy += i * y
            i -= 1
        out[0] = (n * sxy - sx * sy) / div
