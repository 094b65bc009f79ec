"""Candle patterns: doji, engulfing, hammer (TA-Lib CDL* rules and default candle settings)
and gap up/down (JTS: ``low > previous high`` / ``high < previous low``).

Outputs follow TA-Lib (0, not NaN, during warm-up): +100 bullish / -100 bearish
(engulfing: ±80 when an edge is equal), 0 none.
"""

from __future__ import annotations

import math

import numba as nb

DOJI, ENGULFING, HAMMER, GAP_UP, GAP_DOWN = range(80, 85)
_R = 12  # ring length for candle history


def state_size(kind: int, p: tuple[float, ...]) -> int:
    return 4 + 4 * _R


@nb.njit(cache=True, inline="always")
def _get(st, o, c, ago, field):  # type: ignore[no-untyped-def]
    return st[o + 4 + 4 * (int(c - ago) % _R) + field]


@nb.njit(cache=True)
def step(kind, st, o, x, p, out):  # type: ignore[no-untyped-def]
    op, hi, lo, cl = x[0], x[1], x[2], x[3]
    c = st[o]
    if c == 0 and (math.isnan(op) or math.isnan(hi) or math.isnan(lo) or math.isnan(cl)):
        out[0] = 0.0
        return
    b = o + 4 + 4 * (int(c) % _R)
    st[b] = op
    st[b + 1] = hi
    st[b + 2] = lo
    st[b + 3] = cl
    st[o] = c + 1
    rb = abs(cl - op)
    hl = hi - lo
    if kind == DOJI:
        if c < 10:
            st[o + 1] += hl
            out[0] = 0.0
            return
        out[0] = 100.0 if rb <= 0.1 * (st[o + 1] / 10.0) / 1.0 else 0.0
        st[o + 1] += hl - (_get(st, o, c, 10, 1) - _get(st, o, c, 10, 2))
    elif kind == ENGULFING:
        if c < 2:
            out[0] = 0.0
            return
        po, pc = _get(st, o, c, 1, 0), _get(st, o, c, 1, 3)
        col = 1.0 if cl >= op else -1.0
        pcol = 1.0 if pc >= po else -1.0
        hit = (col == 1.0 and pcol == -1.0
               and ((cl >= po and op < pc) or (cl > po and op <= pc))) or \
              (col == -1.0 and pcol == 1.0
               and ((op >= pc and cl < po) or (op > pc and cl <= po)))
        if not hit:
            out[0] = 0.0
        elif op != pc and cl != po:
            out[0] = col * 100.0
        else:
            out[0] = col * 80.0
    elif kind == HAMMER:
        if c < 11:
            if c >= 1:
                st[o + 1] += rb
                st[o + 2] += hl
            if 5 <= c <= 9:
                st[o + 3] += hl
            out[0] = 0.0
            return
        body_lo = min(op, cl)
        ok = (rb < 1.0 * (st[o + 1] / 10.0) / 1.0
              and body_lo - lo > 1.0 * rb / 1.0
              and hi - max(op, cl) < 0.1 * (st[o + 2] / 10.0) / 1.0
              and body_lo <= _get(st, o, c, 1, 2) + 0.2 * (st[o + 3] / 5.0) / 1.0)
        out[0] = 100.0 if ok else 0.0
        t_o, t_h, t_l, t_c = (_get(st, o, c, 10, 0), _get(st, o, c, 10, 1),
                              _get(st, o, c, 10, 2), _get(st, o, c, 10, 3))
        st[o + 1] += rb - abs(t_c - t_o)
        st[o + 2] += hl - (t_h - t_l)
        st[o + 3] += (_get(st, o, c, 1, 1) - _get(st, o, c, 1, 2)) - (
            _get(st, o, c, 6, 1) - _get(st, o, c, 6, 2))
    elif kind == GAP_UP or kind == GAP_DOWN:
        if c < 1:
            out[0] = 0.0
            return
        if kind == GAP_UP:
            out[0] = 100.0 if lo > _get(st, o, c, 1, 1) else 0.0
        else:
            out[0] = 100.0 if hi < _get(st, o, c, 1, 2) else 0.0
