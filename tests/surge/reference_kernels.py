"""Test-only reference: the surge evaluation as a full scan of each symbol's ring (the form
before the per-symbol window caches). It shares ingestion and scoring (``_ingest``,
``judge``) with :mod:`jts.surge_kernels` and differs only in how the window figures are
found; ``test_equivalence.py`` runs both side by side and demands bit-identical outputs and
state. Do not optimise this copy."""

from __future__ import annotations

import numba as nb
import numpy as np

import jts.surge_kernels as K


@nb.njit(cache=True)
def _evaluate(s, ip, fp, ring_vol, ring_hi, ring_close, ring_stamp, cur_slot,  # type: ignore[no-untyped-def]
              last_ts, last_px, prof_mean, prof_n, level, var, obs, shape, book_imb,
              o_z, o_vel, o_brk, o_score, o_flags, o_ts):
    slot_ns = ip[K.I_SLOT_NS]
    ring = ip[K.I_RING]
    k = cur_slot[s]
    now = last_ts[s]
    wv = ip[K.I_WVOL]
    vw = 0.0
    for g in range(k - wv + 1, k + 1):
        j = g % ring
        if ring_stamp[s, j] == g:
            vw += ring_vol[s, j]
    span = (wv - 1) * slot_ns + (now - k * slot_ns) + 1
    vel = K.NAN
    for g in range(k - ip[K.I_WVEL], k - ring, -1):
        j = g % ring
        if ring_stamp[s, j] == g:
            vel = last_px[s] / ring_close[s, j] - 1.0
            break
    hi = -1.0
    for g in range(k - ip[K.I_WBRK], k - ip[K.I_WSKIP] + 1):
        j = g % ring
        if ring_stamp[s, j] == g and ring_hi[s, j] > hi:
            hi = ring_hi[s, j]
    brk = last_px[s] / hi - 1.0 if hi > 0.0 else K.NAN
    return K.judge(s, now, vw * K.MINUTE_NS / span, vel, brk, ip, fp, prof_mean, prof_n, level,
                 var, obs, shape, book_imb, o_z, o_vel, o_brk, o_score, o_flags, o_ts)


@nb.njit(cache=True)
def process_batch(sym, ts, px, vol, ip, fp, ring_vol, ring_hi, ring_close,  # type: ignore[no-untyped-def]
                  ring_stamp, cur_slot, last_ts, last_px, min_idx, min_vol, min_partial,
                  prof_mean, prof_n, level, var, obs, shape, book_imb, last_emit, touched,
                  touched_list, counters, o_z, o_vel, o_brk, o_score, o_flags, o_ts, out_idx,
                  ts_limit):
    """``jts.surge_kernels.process_batch`` with the full-scan evaluation."""
    scratch = np.full(cur_slot.shape[0], K.NO_SLOT, dtype=np.int64)     # caches unused here
    nt = K._ingest(sym, ts, px, vol, ip, fp, ring_vol, ring_hi, ring_close, ring_stamp,
                 cur_slot, last_ts, last_px, min_idx, min_vol, min_partial, prof_mean, prof_n,
                 level, var, obs, shape, touched, touched_list, counters, ts_limit, scratch)
    cool = ip[K.I_COOLDOWN_NS]
    ne = 0
    for q in range(nt):
        s = touched_list[q]
        touched[s] = False
        ok = _evaluate(s, ip, fp, ring_vol, ring_hi, ring_close, ring_stamp, cur_slot,
                       last_ts, last_px, prof_mean, prof_n, level, var, obs, shape, book_imb,
                       o_z, o_vel, o_brk, o_score, o_flags, o_ts)
        if ok and (last_emit[s] == np.iinfo(np.int64).min or o_ts[s] - last_emit[s] >= cool):
            out_idx[ne] = s
            ne += 1
    return ne
