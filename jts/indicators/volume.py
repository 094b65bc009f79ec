"""Volume indicators: OBV, A/D line, Chaikin A/D oscillator, volume ratio, surge score.

Streaming ``step`` kernels (see ``_window``). Volume ratio and surge score are JTS's own:
``vol_ratio(n)`` = volume / mean volume of the previous n bars (NaN when that mean is 0);
``surge(n)`` = z-score of volume against the previous n bars × 1-bar return in percent
(NaN when the previous n volumes have zero deviation).
"""

from __future__ import annotations

import math

import numba as nb

from jts.indicators._window import NAN, sd_from_var, sma_upd, var_upd

OBV, AD, ADOSC, VOLRATIO, SURGE = range(70, 75)


def state_size(kind: int, p: tuple[float, ...]) -> int:
    n = int(p[0]) if p else 0
    if kind == OBV:
        return 3
    if kind == AD:
        return 2
    if kind == ADOSC:
        return 4
    if kind == VOLRATIO:
        return (n + 2) + 1
    if kind == SURGE:
        return (n + 2) + (n + 4) + 3
    raise ValueError(kind)


@nb.njit(cache=True)
def ad_upd(st, o, h, lw, c_, v):  # type: ignore[no-untyped-def]
    """Chaikin accumulation/distribution line. State: count, ad."""
    if st[o] == 0 and (math.isnan(h) or math.isnan(lw) or math.isnan(c_) or math.isnan(v)):
        return NAN
    st[o] += 1
    t = h - lw
    if t > 0.0:
        st[o + 1] += (((c_ - lw) - (h - c_)) / t) * v
    return st[o + 1]


@nb.njit(cache=True)
def step(kind, st, o, x, p, out):  # type: ignore[no-untyped-def]
    n = int(p[0])
    if kind == OBV:
        c = st[o]
        if c == 0 and (math.isnan(x[0]) or math.isnan(x[1])):
            out[0] = NAN
            return
        st[o] = c + 1
        if c == 0:
            st[o + 1] = x[1]
        elif x[0] > st[o + 2]:
            st[o + 1] += x[1]
        elif x[0] < st[o + 2]:
            st[o + 1] -= x[1]
        st[o + 2] = x[0]
        out[0] = st[o + 1]
    elif kind == AD:
        out[0] = ad_upd(st, o, x[0], x[1], x[2], x[3])
    elif kind == ADOSC:
        fast, slow = n, int(p[1])
        a = ad_upd(st, o, x[0], x[1], x[2], x[3])
        if math.isnan(a):
            out[0] = NAN
            return
        c = st[o]
        fk = 2.0 / (fast + 1)
        sk = 2.0 / (slow + 1)
        if c == 1:
            st[o + 2] = a
            st[o + 3] = a
        else:
            st[o + 2] = (fk * a) + ((1.0 - fk) * st[o + 2])
            st[o + 3] = (sk * a) + ((1.0 - sk) * st[o + 3])
        out[0] = st[o + 2] - st[o + 3] if c >= max(fast, slow) else NAN
    elif kind == VOLRATIO:
        mo = o + n + 2
        v = x[0]
        prev = st[mo]
        full = st[o] >= n
        m = sma_upd(st, o, v, n)
        out[0] = v / prev if (full and prev != 0.0) else NAN
        st[mo] = m
    elif kind == SURGE:
        v = x[0]
        so = o + (n + 2) + (n + 4)
        mean, sd, pc = st[so], st[so + 1], st[so + 2]
        full = st[o] >= n
        m = sma_upd(st, o, v, n)
        var = var_upd(st, o + n + 2, v, n)
        if full and sd != 0.0 and pc != 0.0:
            out[0] = ((v - mean) / sd) * ((x[1] / pc - 1.0) * 100.0)
        else:
            out[0] = NAN
        st[so] = m
        st[so + 1] = sd_from_var(var)
        st[so + 2] = x[1]
