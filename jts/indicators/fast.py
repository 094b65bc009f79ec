"""Dedicated batch loops for the hottest indicators (SMA, EMA, RSI, MACD, BBANDS).

The same arithmetic, in the same order, as the streaming kernels in ``_window``/``momentum``/
``volatility`` (tests assert bit equality), with the state in registers. Each loop carries one
short dependency chain per bar (SMA: one add; EMA/MACD/RSI: one fused multiply-add; BBANDS: one
add per sum), outputs are allocated once with only the warm-up written as NaN, and SMA's
divisions and BBANDS' square roots run in a second, vectorized pass over cache-sized blocks.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from jts.indicators._window import ema_coef, fma, recenter_every, sd_from_var

BLOCK = 512  # SMA/BBANDS: bars per block (outputs stay in L1 between the two passes)


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
def _divide(a, n):  # type: ignore[no-untyped-def]
    """a /= n in place; indexed from 0 so it vectorizes."""
    for j in range(a.shape[0]):
        a[j] = a[j] / n


@nb.njit(cache=True)
def sma(x, n):  # type: ignore[no-untyped-def]
    m = x.shape[0]
    b = first_valid(x)
    out = nan_head(m, b + n - 1)
    if b + n - 1 >= m:
        return out
    s = 0.0
    for i in range(b, b + n):
        s += x[i]
    out[b + n - 1] = s / n
    j0 = b + n
    while j0 < m:  # the sums of a block, then one vectorized division over it
        e = min(j0 + BLOCK, m)
        for i in range(j0, e):
            s += x[i] - x[i - n]
            out[i] = s
        _divide(out[j0:e], n)
        j0 = e
    return out


@nb.njit(cache=True)
def ema_into(x, n, k, out, b):  # type: ignore[no-untyped-def]
    m = x.shape[0]
    if b + n - 1 >= m:
        return
    a, kk = ema_coef(k)
    s = 0.0
    for i in range(b, b + n - 1):
        s += x[i]
    e = (s + x[b + n - 1]) / n
    out[b + n - 1] = e
    for i in range(b + n, m):
        e = fma(a, e, kk * x[i])
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
        # Wilder smoothing with a precomputed 1/n and FMA (TA-Lib divides: ≤ few-ulp apart)
        lo = fma(lo, a, max(-d, 0.0) * inv)
        g = fma(g, a, max(d, 0.0) * inv)
        t = g + lo
        out[i] = 100.0 * (g / t) if not (-1e-8 < t < 1e-8) else 0.0
    return out


@nb.njit(cache=True)
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
    if start >= m:
        return line, sgl, hist
    a_s, k_s = ema_coef(2.0 / (slow + 1))
    a_f, k_f = ema_coef(2.0 / (fast + 1))
    a_g, k_g = ema_coef(2.0 / (sig + 1))
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
    for i in range(s0 + 1, start + 1):  # the signal's seed: the first sig line values
        sg += v
        xi = x[i]
        es = fma(a_s, es, k_s * xi)
        ef = fma(a_f, ef, k_f * xi)
        v = ef - es
    sg = (sg + v) / sig
    line[start] = v
    sgl[start] = sg
    hist[start] = v - sg
    for i in range(start + 1, m):
        xi = x[i]
        es = fma(a_s, es, k_s * xi)
        ef = fma(a_f, ef, k_f * xi)
        v = ef - es
        sg = fma(a_g, sg, k_g * v)
        line[i] = v
        sgl[i] = sg
        hist[i] = v - sg
    return line, sgl, hist


@nb.njit(cache=True)
def _bands(u, mid, lo, up, dn):  # type: ignore[no-untyped-def]
    """u holds the variance on entry; write the bands. Index from 0 so it vectorizes."""
    for j in range(u.shape[0]):
        sd = sd_from_var(u[j])
        md = mid[j]
        u[j] = fma(sd, up, md)
        lo[j] = fma(sd, -dn, md)


@nb.njit(cache=True)
def _sums(x, i, n):  # type: ignore[no-untyped-def]
    """Window sums of x[i-n+1..i] re-centred on x[i] (as ``_window.msd_sums``)."""
    ctr = x[i]
    s1 = 0.0
    s2 = 0.0
    for q in range(i - n + 1, i + 1):
        y = x[q] - ctr
        s1 += y
        s2 += y * y
    return ctr, s1, s2


@nb.njit(cache=True)
def bbands(x, n, up, dn):  # type: ignore[no-untyped-def]
    m = x.shape[0]
    b = first_valid(x)
    u = nan_head(m, b + n - 1)
    mid = nan_head(m, b + n - 1)
    lo = nan_head(m, b + n - 1)
    i = b + n - 1
    if i >= m:
        return u, mid, lo
    inv = 1.0 / n
    every = recenter_every(n)
    ctr = 0.0
    s1 = 0.0
    s2 = 0.0
    while i < m:  # one segment per re-centring
        if s1 == s1:  # a NaN that entered the window stays (as the streaming form)
            ctr, s1, s2 = _sums(x, i, n)
        my = s1 / n
        mid[i] = ctr + my
        u[i] = s2 * inv - my * my
        seg = min(i + every, m)
        j0 = i + 1
        while j0 < seg:
            e = min(j0 + BLOCK, seg)
            for j in range(j0, e):
                yn = x[j] - ctr
                yo = x[j - n] - ctr
                d = yn - yo
                s1 += d
                s2 += d * (yn + yo)
                my = s1 / n
                mid[j] = ctr + my
                u[j] = s2 * inv - my * my
            _bands(u[j0:e], mid[j0:e], lo[j0:e], up, dn)
            j0 = e
        _bands(u[i:i + 1], mid[i:i + 1], lo[i:i + 1], up, dn)
        i = seg
    return u, mid, lo
