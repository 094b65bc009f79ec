"""Numba kernel of the collector's validation: one call per batch checks every tick's price
and volume, its order against its symbol's newest accepted time, and de-duplicates it, with
per-row state in arrays over :class:`jts.tick_batch.SymbolTable` rows.

De-duplication keeps, per row, two open-addressing hash tables of keys (``seq`` when the
venue numbers its trades, else ``(ts, price, volume)`` exactly): new keys go into the
*recent* table; when it holds ``window`` keys it becomes the *old* one and the other is
cleared and becomes recent. A key in either is a duplicate, so the last ``window`` to
``2 × window`` keys of a symbol are remembered — the same rule as two generations of sets.
Tables have ``cap`` slots (a power of two ≥ 2 × window, so at most half full). A slot is
``(a, b, c)``: a seq key is ``(seq, -1, 0)``, a content key ``(ts, price bits, volume bits)``
(positive finite floats: their bits are never -1 or 0); ``c == EMPTY`` marks a free slot.
"""

from __future__ import annotations

import numba as nb
import numpy as np

EMPTY = -1
# reason counters, in jts.collector.REASONS order after "malformed"
BAD_PRICE, BAD_VOLUME, ZERO_VOLUME, OUT_OF_ORDER, DUPLICATE = range(5)
N_COUNTS = 5
_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xC2B2AE3D27D4EB4F)
_M3 = np.uint64(0x165667B19E3779F9)


@nb.njit(cache=True, inline="always")
def _slot(a, b, c, mask):  # type: ignore[no-untyped-def]
    h = np.uint64(a) * _M1 ^ np.uint64(b) * _M2 ^ np.uint64(c) * _M3
    h ^= h >> np.uint64(29)
    return np.int64(h & np.uint64(mask))


@nb.njit(cache=True, inline="always")
def _find(ka, kb, kc, r, g, j, a, b, c, mask):  # type: ignore[no-untyped-def]
    """Slot of key (a, b, c) in table ``g`` of row ``r`` (probing from ``j``), or the free
    slot where it would go, negated minus one."""
    while True:
        cc = kc[r, g, j]
        if cc == EMPTY:
            return -j - 1
        if cc == c and ka[r, g, j] == a and kb[r, g, j] == b:
            return j
        j = (j + 1) & mask


@nb.njit(cache=True)
def validate(row, ts, px, vol, seq, pxbits, volbits, last_ts, tol, ka, kb, kc, recent,  # type: ignore[no-untyped-def]
             count, window, keep, counts):
    """Check the batch in order; write the positions of accepted ticks into ``keep`` and
    return how many; add the rejections to ``counts``. Rows must be valid (>= 0)."""
    mask = ka.shape[2] - 1
    inf = np.inf
    k = 0
    for i in range(row.shape[0]):
        p = px[i]
        if not (p > 0.0 and p < inf):
            counts[BAD_PRICE] += 1
            continue
        v = vol[i]
        if not (v >= 0.0 and v < inf):
            counts[BAD_VOLUME] += 1
            continue
        if v == 0.0:
            counts[ZERO_VOLUME] += 1
            continue
        r = row[i]
        t = ts[i]
        last = last_ts[r]
        if t < last - tol:
            counts[OUT_OF_ORDER] += 1
            continue
        s = seq[i]
        if s != 0:
            a, b, c = s, np.int64(-1), np.int64(0)
        else:
            a, b, c = t, pxbits[i], volbits[i]
        j = _slot(a, b, c, mask)
        g = recent[r]
        at = _find(ka, kb, kc, r, g, j, a, b, c, mask)
        if at >= 0 or _find(ka, kb, kc, r, 1 - g, j, a, b, c, mask) >= 0:
            counts[DUPLICATE] += 1
            continue
        at = -at - 1
        ka[r, g, at] = a
        kb[r, g, at] = b
        kc[r, g, at] = c
        count[r] += 1
        if count[r] >= window:                 # recent becomes old; the old one is reset
            g = 1 - g
            recent[r] = g
            kc[r, g, :] = EMPTY
            count[r] = 0
        if t > last:
            last_ts[r] = t
        keep[k] = i
        k += 1
    return k
