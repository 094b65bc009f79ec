"""Momentum oscillators: RSI, ROC, MOM, MACD, PPO, STOCH, STOCHRSI, WILLR, CCI, MFI, ADX/DI, AROON.

Streaming ``step`` kernels that mirror TA-Lib's C loops (see ``_window`` for conventions).
Multi-output indicators publish every output only once all of them are valid, like TA-Lib.
"""

from __future__ import annotations

import math

import numba as nb

from jts.indicators._window import NAN, ema_upd, extreme_upd, fma, is_zero, sma_upd

RSI, ROC, MOM, MACD, PPO, STOCH, STOCHRSI, WILLR, CCI, MFI, ADX, AROON = range(20, 32)


def state_size(kind: int, p: tuple[float, ...]) -> int:
    n = int(p[0]) if p else 0
    if kind == RSI:
        return 4
    if kind in (ROC, MOM):
        return 1 + n + 1
    if kind == MACD:
        return 1 + 2 + 2 + 2
    if kind == PPO:
        return (n + 2) + (int(p[1]) + 2) + 2
    if kind == STOCH:
        return 2 * (n + 3) + (int(p[1]) + 2) + (int(p[2]) + 2)
    if kind == STOCHRSI:
        return 4 + 2 * (int(p[1]) + 3) + (int(p[2]) + 2)
    if kind == WILLR:
        return 2 * (n + 3)
    if kind == CCI:
        return 1 + n
    if kind == MFI:
        return 4 + 2 * n
    if kind == ADX:
        return 10
    if kind == AROON:
        return 2 * (n + 4)
    raise ValueError(kind)


@nb.njit(cache=True)
def rsi_upd(st, o, x, n):  # type: ignore[no-untyped-def]
    """Wilder RSI (TA-Lib). State: count, prev, gain, loss."""
    c = st[o]
    if c == 0 and math.isnan(x):
        return NAN
    st[o] = c + 1
    if c == 0:
        st[o + 1] = x
        return NAN
    d = x - st[o + 1]
    st[o + 1] = x
    if c <= n:
        if d < 0:
            st[o + 3] -= d
        else:
            st[o + 2] += d
        if c < n:
            return NAN
        st[o + 3] /= n
        st[o + 2] /= n
    else:
        a = (n - 1) / n
        inv = 1.0 / n
        st[o + 3] = fma(st[o + 3], a, max(-d, 0.0) * inv)
        st[o + 2] = fma(st[o + 2], a, max(d, 0.0) * inv)
    t = st[o + 2] + st[o + 3]
    return 100.0 * (st[o + 2] / t) if not is_zero(t) else 0.0


@nb.njit(cache=True)
def stoch_core(st, o, h, lw, c_, nk, nk2, nd, slow):  # type: ignore[no-untyped-def]
    """Fast %K over nk, then SMA(nk2) (skipped when nk2 == 1 and not slow), then SMA(nd)."""
    hh, _ = extreme_upd(st, o, h, nk, True)
    ll, _ = extreme_upd(st, o + nk + 3, lw, nk, False)
    o2 = o + 2 * (nk + 3)
    if math.isnan(hh):
        fk = NAN
    else:
        diff = (hh - ll) / 100.0
        fk = (c_ - ll) / diff if diff != 0.0 else 0.0
    k = sma_upd(st, o2, fk, nk2) if slow else fk
    d = sma_upd(st, o2 + (nk2 + 2 if slow else 0), k, nd)
    return (k, d) if not math.isnan(d) else (NAN, NAN)


@nb.njit(cache=True)
def dmi_upd(st, o, h, lw, c_, n, out):  # type: ignore[no-untyped-def]
    """ADX, +DI, -DI (TA-Lib). State: count, pH, pL, pC, +DM, -DM, TR, sumDX, adx."""
    c = st[o]
    if c == 0 and (math.isnan(h) or math.isnan(lw) or math.isnan(c_)):
        out[0] = NAN
        out[1] = NAN
        out[2] = NAN
        return
    st[o] = c + 1
    out[0] = NAN
    out[1] = NAN
    out[2] = NAN
    if c == 0:
        st[o + 1] = h
        st[o + 2] = lw
        st[o + 3] = c_
        return
    dp = h - st[o + 1]
    dm = st[o + 2] - lw
    st[o + 1] = h
    st[o + 2] = lw
    yc = st[o + 3]
    tr = h - lw
    t2 = abs(h - yc)
    if t2 > tr:
        tr = t2
    t2 = abs(lw - yc)
    if t2 > tr:
        tr = t2
    st[o + 3] = c_
    if c < n:
        if dm > 0 and dp < dm:
            st[o + 5] += dm
        elif dp > 0 and dp > dm:
            st[o + 4] += dp
        st[o + 6] += tr
        return
    st[o + 5] -= st[o + 5] / n
    st[o + 4] -= st[o + 4] / n
    if dm > 0 and dp < dm:
        st[o + 5] += dm
    elif dp > 0 and dp > dm:
        st[o + 4] += dp
    st[o + 6] = st[o + 6] - (st[o + 6] / n) + tr
    ptr = st[o + 6]
    if is_zero(ptr):
        out[1] = 0.0
        out[2] = 0.0
    else:
        mdi = 100.0 * (st[o + 5] / ptr)
        pdi = 100.0 * (st[o + 4] / ptr)
        out[1] = pdi
        out[2] = mdi
        s = mdi + pdi
        if not is_zero(s):
            dx = 100.0 * (abs(mdi - pdi) / s)
            if c < 2 * n:
                st[o + 7] += dx
            else:
                st[o + 8] = ((st[o + 8] * (n - 1)) + dx) / n
    if c == 2 * n - 1:
        st[o + 8] = st[o + 7] / n
    if c >= 2 * n - 1:
        out[0] = st[o + 8]


@nb.njit(cache=True)
def step(kind, st, o, x, p, out):  # type: ignore[no-untyped-def]
    n = int(p[0])
    if kind == RSI:
        out[0] = rsi_upd(st, o, x[0], n)
    elif kind == ROC or kind == MOM:
        c = st[o]
        if c == 0 and math.isnan(x[0]):
            out[0] = NAN
            return
        rb = o + 1
        st[rb + int(c) % (n + 1)] = x[0]
        st[o] = c + 1
        if c < n:
            out[0] = NAN
            return
        prev = st[rb + int(c - n) % (n + 1)]
        if kind == MOM:
            out[0] = x[0] - prev
        else:
            out[0] = ((x[0] / prev) - 1.0) * 100.0 if prev != 0.0 else 0.0
    elif kind == MACD:
        fast, slow, sig = n, int(p[1]), int(p[2])
        if slow < fast:
            fast, slow = slow, fast
        c = st[o]
        if c == 0 and math.isnan(x[0]):
            out[0] = NAN
            out[1] = NAN
            out[2] = NAN
            return
        st[o] = c + 1
        es = ema_upd(st, o + 1, x[0], slow, 2.0 / (slow + 1))
        ef = NAN
        if c >= slow - fast:
            ef = ema_upd(st, o + 3, x[0], fast, 2.0 / (fast + 1))
        m = ef - es
        s = ema_upd(st, o + 5, m, sig, 2.0 / (sig + 1))
        if math.isnan(s):
            out[0] = NAN
            out[1] = NAN
            out[2] = NAN
        else:
            out[0] = m
            out[1] = s
            out[2] = m - s
    elif kind == PPO:
        fast, slow = n, int(p[1])
        if slow < fast:
            fast, slow = slow, fast
        if p[2] == 1.0:
            f = ema_upd(st, o, x[0], fast, 2.0 / (fast + 1))
            s = ema_upd(st, o + 2, x[0], slow, 2.0 / (slow + 1))
        else:
            f = sma_upd(st, o, x[0], fast)
            s = sma_upd(st, o + fast + 2, x[0], slow)
        if math.isnan(s):
            out[0] = NAN
        else:
            out[0] = ((f - s) / s) * 100.0 if not is_zero(s) else 0.0
    elif kind == STOCH:
        k, d = stoch_core(st, o, x[0], x[1], x[2], n, int(p[1]), int(p[2]), True)
        out[0] = k
        out[1] = d
    elif kind == STOCHRSI:
        r = rsi_upd(st, o, x[0], n)
        k, d = stoch_core(st, o + 4, r, r, r, int(p[1]), 1, int(p[2]), False)
        out[0] = k
        out[1] = d
    elif kind == WILLR:
        hh, _ = extreme_upd(st, o, x[0], n, True)
        ll, _ = extreme_upd(st, o + n + 3, x[1], n, False)
        if math.isnan(hh):
            out[0] = NAN
        else:
            diff = (hh - ll) / (-100.0)
            out[0] = (hh - x[2]) / diff if diff != 0.0 else 0.0
    elif kind == CCI:
        c = st[o]
        if c == 0 and (math.isnan(x[0]) or math.isnan(x[1]) or math.isnan(x[2])):
            out[0] = NAN
            return
        tp = (x[0] + x[1] + x[2]) / 3.0
        st[o + 1 + int(c) % n] = tp
        st[o] = c + 1
        if c < n - 1:
            out[0] = NAN
            return
        avg = 0.0
        for j in range(n):
            avg += st[o + 1 + j]
        avg /= n
        md = 0.0
        for j in range(n):
            md += abs(st[o + 1 + j] - avg)
        t = tp - avg
        out[0] = t / (0.015 * (md / n)) if (t != 0.0 and md != 0.0) else 0.0
    elif kind == MFI:
        c = st[o]
        if c == 0 and (math.isnan(x[0]) or math.isnan(x[1]) or math.isnan(x[2])
                       or math.isnan(x[3])):
            out[0] = NAN
            return
        st[o] = c + 1
        tp = (x[0] + x[1] + x[2]) / 3.0
        if c == 0:
            st[o + 1] = tp
            out[0] = NAN
            return
        d = tp - st[o + 1]
        st[o + 1] = tp
        flow = tp * x[3]
        i = o + 4 + 2 * (int(c - 1) % n)
        if c > n:
            st[o + 2] -= st[i]
            st[o + 3] -= st[i + 1]
        st[i] = flow if d > 0 else 0.0
        st[i + 1] = flow if d < 0 else 0.0
        if d < 0:
            st[o + 3] += flow
        elif d > 0:
            st[o + 2] += flow
        if c < n:
            out[0] = NAN
            return
        t = st[o + 2] + st[o + 3]
        out[0] = 0.0 if t < 1.0 else 100.0 * (st[o + 2] / t)
    elif kind == ADX:
        dmi_upd(st, o, x[0], x[1], x[2], n, out)
    elif kind == AROON:
        _, ah = extreme_upd(st, o, x[0], n + 1, True)
        _, al = extreme_upd(st, o + n + 4, x[1], n + 1, False)
        f = 100.0 / n
        out[0] = f * (n - ah)
        out[1] = f * (n - al)
