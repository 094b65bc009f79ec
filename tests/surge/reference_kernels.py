"""Test-only reference: the surge kernels as they were before the evaluation caches
(per-symbol cached window sums, velocity reference and breakout high). The property test in
``test_equivalence.py`` runs these side by side with :mod:`jts.surge_kernels` and demands
bit-identical outputs and state; do not optimise this copy."""

from __future__ import annotations

import math

import numba as nb
import numpy as np

MINUTE_NS = 60_000_000_000
NAN = np.nan

# integer parameters
I_SLOT_NS, I_RING, I_WVOL, I_WVEL, I_WBRK, I_WSKIP, I_PERIOD_NS, I_NMAIN = range(8)
I_MIN_OBS, I_NCAP, I_LEVEL_SPAN, I_COOLDOWN_NS, I_DIRECTION, I_REQUIRE_MOVE = range(8, 14)
N_IPARAMS = 14
# float parameters
F_Z_MIN, F_VEL_MIN, F_BRK_MIN, F_IMB_MIN, F_PRIOR_K, F_WINSOR, F_SIGMA_FLOOR = range(7)
F_W_VEL, F_W_BRK, F_W_IMB, F_SCORE_MIN = range(7, 11)
N_FPARAMS = 11
# counters
C_TICKS, C_BAD_SYMBOL, C_BAD_PRICE, C_BAD_VOLUME, C_LATE, C_OUT_OF_ORDER, C_FOLDED = range(7)
C_FUTURE = 7
N_COUNTERS = 8
# reason flags
FLAG_VOLUME, FLAG_VELOCITY, FLAG_BREAKOUT, FLAG_IMBALANCE = 1, 2, 4, 8
# direction
DIR_BOTH, DIR_UP, DIR_DOWN = 0, 1, 2


@nb.njit(cache=True, inline="always")
def bucket_of(ts: int, period_ns: int, nmain: int) -> int:
    """Minute-of-session bucket of ``ts``; minutes past the session share bucket ``nmain``."""
    b = (ts % period_ns) // MINUTE_NS
    return nmain if b >= nmain else b


@nb.njit(cache=True)
def expected(s, b, prof_mean, prof_n, level, shape, prior_k):  # type: ignore[no-untyped-def]
    """Shrunk expected ``log1p(volume per minute)`` of symbol ``s`` in bucket ``b``."""
    n = prof_n[s, b]
    prior = level[s] + shape[b]
    if n == 0:
        return prior
    if math.isnan(prior) or prior_k == 0.0:
        return prof_mean[s, b]
    return (n * prof_mean[s, b] + prior_k * prior) / (n + prior_k)


@nb.njit(cache=True)
def fold_minute(s, minute, v, ip, fp, prof_mean, prof_n, level, var, obs,  # type: ignore[no-untyped-def]
                shape):
    """Learn one completed minute's volume into the profile (winsorized, EWMA past the cap)."""
    b = bucket_of(minute * MINUTE_NS, ip[I_PERIOD_NS], ip[I_NMAIN])
    y = math.log1p(v)
    mu = expected(s, b, prof_mean, prof_n, level, shape, fp[F_PRIOR_K])
    sd = math.sqrt(var[s])
    lim = fp[F_WINSOR] * sd
    if obs[s] >= ip[I_MIN_OBS] and not math.isnan(mu):
        y = min(max(y, mu - lim), mu + lim)
    n = min(prof_n[s, b] + 1, ip[I_NCAP])
    if prof_n[s, b] == 0:
        prof_mean[s, b] = y
    else:
        prof_mean[s, b] += (y - prof_mean[s, b]) / n
    prof_n[s, b] = n
    obs[s] += 1
    a = max(1.0 / obs[s], 1.0 / ip[I_LEVEL_SPAN])
    if math.isnan(level[s]):
        level[s] = y - shape[b]
    else:
        level[s] += a * (y - shape[b] - level[s])
    if not math.isnan(mu):
        r = y - mu
        var[s] += a * (min(r * r, lim * lim) - var[s])
        floor = fp[F_SIGMA_FLOOR] * fp[F_SIGMA_FLOOR]
        if var[s] < floor:
            var[s] = floor


@nb.njit(cache=True)
def _ingest(sym, ts, px, vol, ip, fp, ring_vol, ring_hi, ring_close, ring_stamp,  # type: ignore[no-untyped-def]
            cur_slot, last_ts, last_px, min_idx, min_vol, min_partial, prof_mean, prof_n,
            level, var, obs, shape, touched, touched_list, counters, ts_limit):
    n_sym = cur_slot.shape[0]
    slot_ns = ip[I_SLOT_NS]
    ring = ip[I_RING]
    nt = 0
    for i in range(sym.shape[0]):
        s = sym[i]
        p = px[i]
        v = vol[i]
        t = ts[i]
        counters[C_TICKS] += 1
        if s < 0 or s >= n_sym:
            counters[C_BAD_SYMBOL] += 1
            continue
        if not (p > 0.0 and p < math.inf):
            counters[C_BAD_PRICE] += 1
            continue
        if not (v > 0.0 and v < math.inf):
            counters[C_BAD_VOLUME] += 1
            continue
        if t > ts_limit:
            counters[C_FUTURE] += 1
            continue
        g = t // slot_ns
        k = cur_slot[s]
        if g > k:
            cur_slot[s] = g
        elif g <= k - ring + 1:
            counters[C_LATE] += 1
            continue
        j = g % ring
        if ring_stamp[s, j] != g:
            ring_stamp[s, j] = g
            ring_vol[s, j] = 0.0
            ring_hi[s, j] = p
            ring_close[s, j] = p
        ring_vol[s, j] += v
        if p > ring_hi[s, j]:
            ring_hi[s, j] = p
        if t >= last_ts[s]:
            ring_close[s, j] = p
            last_ts[s] = t
            last_px[s] = p
        else:
            counters[C_OUT_OF_ORDER] += 1
        m = t // MINUTE_NS
        if m == min_idx[s]:
            min_vol[s] += v
        elif m > min_idx[s]:
            if min_idx[s] >= 0 and not min_partial[s]:
                fold_minute(s, min_idx[s], min_vol[s], ip, fp, prof_mean, prof_n, level, var,
                            obs, shape)
                counters[C_FOLDED] += 1
            min_idx[s] = m
            min_vol[s] = v
            min_partial[s] = False
        if not touched[s]:
            touched[s] = True
            touched_list[nt] = s
            nt += 1
    return nt


@nb.njit(cache=True)
def _evaluate(s, ip, fp, ring_vol, ring_hi, ring_close, ring_stamp, cur_slot,  # type: ignore[no-untyped-def]
              last_ts, last_px, prof_mean, prof_n, level, var, obs, shape, book_imb,
              o_z, o_vel, o_brk, o_score, o_flags, o_ts):
    """Score symbol ``s`` as of its last tick; returns True when it qualifies to be emitted
    (cool-down not considered)."""
    slot_ns = ip[I_SLOT_NS]
    ring = ip[I_RING]
    k = cur_slot[s]
    now = last_ts[s]
    # volume over the window (the current slot counts for its elapsed part)
    wv = ip[I_WVOL]
    vw = 0.0
    for g in range(k - wv + 1, k + 1):
        j = g % ring
        if ring_stamp[s, j] == g:
            vw += ring_vol[s, j]
    span = (wv - 1) * slot_ns + (now - k * slot_ns) + 1
    rate = vw * MINUTE_NS / span
    z = NAN
    if obs[s] >= ip[I_MIN_OBS]:
        mu = expected(s, bucket_of(now, ip[I_PERIOD_NS], ip[I_NMAIN]), prof_mean, prof_n,
                      level, shape, fp[F_PRIOR_K])
        if not math.isnan(mu):
            z = (math.log1p(rate) - mu) / math.sqrt(var[s])
    # velocity: last price against the price as of one window ago
    vel = NAN
    for g in range(k - ip[I_WVEL], k - ring, -1):
        j = g % ring
        if ring_stamp[s, j] == g:
            vel = last_px[s] / ring_close[s, j] - 1.0
            break
    # breakout: last price against the high of [now - window, now - skip]
    hi = -1.0
    for g in range(k - ip[I_WBRK], k - ip[I_WSKIP] + 1):
        j = g % ring
        if ring_stamp[s, j] == g and ring_hi[s, j] > hi:
            hi = ring_hi[s, j]
    brk = last_px[s] / hi - 1.0 if hi > 0.0 else NAN
    imb = book_imb[s]
    # reasons and score
    direction = ip[I_DIRECTION]
    flags = 0
    if z >= fp[F_Z_MIN]:
        flags |= FLAG_VOLUME
    if not math.isnan(vel):
        if direction == DIR_BOTH and abs(vel) >= fp[F_VEL_MIN]:
            flags |= FLAG_VELOCITY
        elif direction == DIR_UP and vel >= fp[F_VEL_MIN]:
            flags |= FLAG_VELOCITY
        elif direction == DIR_DOWN and -vel >= fp[F_VEL_MIN]:
            flags |= FLAG_VELOCITY
    if direction != DIR_DOWN and brk > fp[F_BRK_MIN]:
        flags |= FLAG_BREAKOUT
    if not math.isnan(imb):
        if direction == DIR_BOTH and abs(imb) >= fp[F_IMB_MIN]:
            flags |= FLAG_IMBALANCE
        elif direction == DIR_UP and imb >= fp[F_IMB_MIN]:
            flags |= FLAG_IMBALANCE
        elif direction == DIR_DOWN and -imb >= fp[F_IMB_MIN]:
            flags |= FLAG_IMBALANCE
    score = 0.0
    if z > 0.0:
        score += z
    if not math.isnan(vel):
        score += fp[F_W_VEL] * 100.0 * abs(vel)
    if brk > 0.0:
        score += fp[F_W_BRK] * 100.0 * brk
    if not math.isnan(imb):
        score += fp[F_W_IMB] * abs(imb)
    o_z[s] = z
    o_vel[s] = vel
    o_brk[s] = brk
    o_score[s] = score
    o_flags[s] = flags
    o_ts[s] = now
    if not flags & FLAG_VOLUME:
        return False
    if ip[I_REQUIRE_MOVE] and not flags & (FLAG_VELOCITY | FLAG_BREAKOUT | FLAG_IMBALANCE):
        return False
    if direction == DIR_UP and vel < 0.0 and not flags & FLAG_BREAKOUT:
        return False
    if direction == DIR_DOWN and vel > 0.0:
        return False
    return score >= fp[F_SCORE_MIN]


@nb.njit(cache=True)
def process_batch(sym, ts, px, vol, ip, fp, ring_vol, ring_hi, ring_close,  # type: ignore[no-untyped-def]
                  ring_stamp, cur_slot, last_ts, last_px, min_idx, min_vol, min_partial,
                  prof_mean, prof_n, level, var, obs, shape, book_imb, last_emit, touched,
                  touched_list, counters, o_z, o_vel, o_brk, o_score, o_flags, o_ts, out_idx,
                  ts_limit):
    """Ingest one batch, score every touched symbol once, and write the indices of symbols
    that qualify and are out of their cool-down into ``out_idx``; returns their count.
    Ticks stamped after ``ts_limit`` are dropped (a bad clock must not make a symbol deaf).
    The caller decides which of them to emit and stamps ``last_emit`` for those."""
    nt = _ingest(sym, ts, px, vol, ip, fp, ring_vol, ring_hi, ring_close, ring_stamp,
                 cur_slot, last_ts, last_px, min_idx, min_vol, min_partial, prof_mean, prof_n,
                 level, var, obs, shape, touched, touched_list, counters, ts_limit)
    cool = ip[I_COOLDOWN_NS]
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
