"""Dedicated batch loops for the hottest indicators (SMA, EMA, RSI, MACD, BBANDS).

Same arithmetic, in the same order, as the streaming kernels (tests assert bit equality),
but with state in registers instead of a state row, so they run at C speed.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np


@nb.njit(cache=True)
def first_valid(x):  # type: ignore[no-untyped-def]
    for i in range(x.shape[0]):
        if not math.isnan(x[i]):
            return i
    return x.shape[0]


@nb.njit(cache=True, inline="always")
def nan_head(m, k):  # type: ignore[no-untyped-def]
    """float64[m] whose first k elements are NaN (the rest is written by the caller)."""
    out = np.empty(m)
    out[: min(k, m)] = np.nan
    return out


@nb.njit(cache=True)
def sma(x, n):  # type: ignore[no-untyped-def]
    m = x.shape[0]
    b = first_valid(x)
    out = nan_head(m, b + n - 1)
    s = 0.0
    for i in range(b, min(b + n - 1, m)):
        s += x[i]
    for i in range(b + n - 1, m):
        s += x[i]
        out[i] = s / n
        s -= x[i - n + 1]
    return out


@nb.njit(cache=True, fastmath={"contract"})  # FMA like TA-Lib's build (bit-identical EMA)
def ema_into(x, n, k, out, b):  # type: ignore[no-untyped-def]
    m = x.shape[0]
    if b + n - 1 >= m:
        return
    s = 0.0
    for i in range(b, b + n - 1):
        s += x[i]
    e = (s + x[b + n - 1]) / n
    out[b + n - 1] = e
    for i in range(b + n, m):
        e = ((x[i] - e) * k) + e
        out[i] = e


@nb.njit(cache=True)
def ema(x, n):  # type: ignore[no-untyped-def]
    b = first_valid(x)
    out = nan_head(x.shape[0], b + n - 1)
    ema_into(x, n, 2.0 / (n + 1), out, b)
    return out


@nb.njit(cache=True)
def rsi(x, n):  # type: ignore[no-untyped-def]
    m = x.shape[0]
    b = first_valid(x)
    out = nan_head(m, b + n)
    if b + n >= m:
        return out
    prev = x[b]
    g = 0.0
    lo = 0.0
    for i in range(b + 1, b + n + 1):
        d = x[i] - prev
        prev = x[i]
        if d < 0:
            lo -= d
        else:
            g += d
    lo /= n
    g /= n
    t = g + lo
    out[b + n] = 100.0 * (g / t) if not (-1e-8 < t < 1e-8) else 0.0
    a = (n - 1) / n
    inv = 1.0 / n
    for i in range(b + n + 1, m):
        d = x[i] - prev
        prev = x[i]
        # Wilder smoothing with a precomputed 1/n (TA-Lib divides: ≤ few-ulp difference)
        lo = lo * a - min(d, 0.0) * inv
        g = g * a + max(d, 0.0) * inv
        t = g + lo
        out[i] = 100.0 * (g / t) if not (-1e-8 < t < 1e-8) else 0.0
    return out


@nb.njit(cache=True, fastmath={"contract"})
def macd(x, fast, slow, sig):  # type: ignore[no-untyped-def]
    """One fused pass: slow EMA, fast EMA (seeded over the slow window's tail, as TA-Lib),
    line, signal EMA and histogram."""
    if slow < fast:
        fast, slow = slow, fast
    m = x.shape[0]
    b = first_valid(x)
    s0 = b + slow - 1  # first line value
    start = s0 + sig - 1  # first published value
    line = nan_head(m, start)
    sgl = nan_head(m, start)
    hist = nan_head(m, start)
    if s0 >= m:
        return line, sgl, hist
    ks, kf, kg = 2.0 / (slow + 1), 2.0 / (fast + 1), 2.0 / (sig + 1)
    ss = 0.0
    sf = 0.0
    for i in range(b, s0):
        ss += x[i]
        if i >= s0 - fast + 1:
            sf += x[i]
    es = (ss + x[s0]) / slow
    ef = (sf + x[s0]) / fast
    v = ef - es
    sg = 0.0
    for i in range(s0, m):
        if i > s0:
            xi = x[i]
            es = ((xi - es) * ks) + es
            ef = ((xi - ef) * kf) + ef
            v = ef - es
        if i < start:
            sg += v
            continue
        if i == start:
            sg = (sg + v) / sig
        else:
            sg = ((v - sg) * kg) + sg
        line[i] = v
        sgl[i] = sg
        hist[i] = v - sg
    return line, sgl, hist


@nb.njit(cache=True, fastmath={"contract"})
def bbands(x, n, up, dn):  # type: ignore[no-untyped-def]
    m = x.shape[0]
    b = first_valid(x)
    u = nan_head(m, b + n - 1)
    mid = nan_head(m, b + n - 1)
    lo = nan_head(m, b + n - 1)
    s1 = 0.0
    s2 = 0.0
    for i in range(b, min(b + n - 1, m)):
        s1 += x[i]
        s2 += x[i] * x[i]
    for i in range(b + n - 1, m):
        v = x[i]
        s1 += v
        s2 += v * v
        md = s1 / n
        m2 = s2 / n
        t = x[i - n + 1]
        s1 -= t
        s2 -= t * t
        m2 -= md * md
        sd = math.sqrt(m2) if not m2 < 0.00000001 else 0.0
        u[i] = md + sd * up
        mid[i] = md
        lo[i] = md - sd * dn
    return u, mid, lo
