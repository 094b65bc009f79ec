"""Numba kernel of the collector's validation: one call per batch maps each tick's symbol to
its row, checks its price and volume, its order against the row's newest accepted time, and
de-duplicates it, with per-row state in arrays over :class:`jts.tick_batch.SymbolTable` rows;
the accepted ticks are written out as compacted columns.

De-duplication keeps, per row, two open-addressing hash tables of keys (``seq`` when the
venue numbers its trades, else ``(ts, price, volume)`` exactly): new keys go into the
*recent* table; when it holds ``window`` keys it becomes the *old* one and the other is
cleared and becomes recent. A key in either is a duplicate, so the last ``window`` to
``2 × window`` keys of a symbol are remembered — the same rule as two generations of sets.
Tables have ``cap`` slots (a power of two ≥ 2 × window, so at most half full), each slot
``(a, b, c)`` in one row of ``keys`` (one cache line per probe): a seq key is
``(seq, -1, 0)``, a content key ``(ts, price bits, volume bits)`` (positive finite floats:
their bits are never -1 or 0); ``c == EMPTY`` marks a free slot.

A key newer than anything the row ever accepted — a seq above the row's highest seq, a
content key stamped after its newest accepted time — cannot be in the tables, so the common
in-order tick skips the look-ups and only takes a free slot.
"""

from __future__ import annotations

import numba as nb
import numpy as np

EMPTY = -1
NEVER = np.iinfo(np.int64).min
# reason counters, in jts.collector.REASONS order
MALFORMED, BAD_PRICE, BAD_VOLUME, ZERO_VOLUME, OUT_OF_ORDER, DUPLICATE = range(6)
N_COUNTS = 6
_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xC2B2AE3D27D4EB4F)
_M3 = np.uint64(0x165667B19E3779F9)


@nb.njit(cache=True, inline="always")
def _slot(a, b, c, mask):  # type: ignore[no-untyped-def]
    h = np.uint64(a) * _M1 ^ np.uint64(b) * _M2 ^ np.uint64(c) * _M3
    h ^= h >> np.uint64(29)
    return np.int64(h & np.uint64(mask))


@nb.njit(cache=True, inline="always")
def _find(keys, r, g, j, a, b, c, mask):  # type: ignore[no-untyped-def]
    """Slot of key (a, b, c) in table ``g`` of row ``r`` (probing from ``j``), or the free
    slot where it would go, negated minus one."""
    while True:
        cc = keys[r, g, j, 2]
        if cc == EMPTY:
            return -j - 1
        if cc == c and keys[r, g, j, 0] == a and keys[r, g, j, 1] == b:
            return j
        j = (j + 1) & mask


@nb.njit(cache=True, inline="always")
def _free(keys, r, g, j, mask):  # type: ignore[no-untyped-def]
    while keys[r, g, j, 2] != EMPTY:
        j = (j + 1) & mask
    return j


@nb.njit(cache=True)
def validate(sym, remap, ts, px, vol, seq, pxbits, volbits, last_ts, max_seq, tol, keys,  # type: ignore[no-untyped-def]
             recent, count, window, o_row, o_ts, o_px, o_vol, o_seq, counts):
    """Check the batch in order (``remap[sym[i]]`` is tick i's row; outside ``remap`` or
    -1: malformed); write the accepted ticks into the ``o_*`` columns and return how many;
    add the rejections to ``counts``."""
    mask = keys.shape[2] - 1
    n_map = remap.shape[0]
    inf = np.inf
    k = 0
    for i in range(sym.shape[0]):
        s = sym[i]
        if s < 0 or s >= n_map or remap[s] < 0:
            counts[MALFORMED] += 1
            continue
        r = remap[s]
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
        t = ts[i]
        last = last_ts[r]
        if t < last - tol:
            counts[OUT_OF_ORDER] += 1
            continue
        q = seq[i]
        if q != 0:
            a, b, c = q, np.int64(-1), np.int64(0)
            fresh = q > max_seq[r]
        else:
            a, b, c = t, pxbits[i], volbits[i]
            fresh = t > last
        j = _slot(a, b, c, mask)
        g = recent[r]
        if fresh:                              # newer than any key the row holds
            at = _free(keys, r, g, j, mask)
        else:
            at = _find(keys, r, g, j, a, b, c, mask)
            if at >= 0 or _find(keys, r, 1 - g, j, a, b, c, mask) >= 0:
                counts[DUPLICATE] += 1
                continue
            at = -at - 1
        keys[r, g, at, 0] = a
        keys[r, g, at, 1] = b
        keys[r, g, at, 2] = c
        count[r] += 1
        if count[r] >= window:                 # recent becomes old; the old one is reset
            g = 1 - g
            recent[r] = g
            keys[r, g, :, 2] = EMPTY
            count[r] = 0
        if q != 0 and q > max_seq[r]:
            max_seq[r] = q
        if t > last:
            last_ts[r] = t
        o_row[k] = r
        o_ts[k] = t
        o_px[k] = p
        o_vol[k] = v
        o_seq[k] = q
        k += 1
    return k
