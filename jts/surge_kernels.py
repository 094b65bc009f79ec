"""Numba kernels of the surge detector: one call ingests a whole batch of ticks for the whole
universe and scores every symbol the batch touched.

State lives in plain numpy arrays owned by :class:`jts.surge.SurgeDetector` (see
``_State`` there); the layout is

* a ring of time slots per symbol (``N × S``): traded volume, high, last price and the global
  slot number the cell currently holds (``stamp``; a cell whose stamp is not the slot asked
  for is empty — rings are cleared lazily, never swept);
* a time-of-day volume profile per symbol (``N × B``): mean of ``log1p(volume per minute)``
  per minute-of-session bucket and its observation count, shrunk towards a prior
  ``level[s] + shape[b]`` (per-symbol level plus the universe's intraday shape);
* per-symbol scalars: current slot, last tick time and price, the minute being accumulated,
  the log-volume variance, the book imbalance, the last emission time;
* per-symbol caches of the windows' completed slots (volume sum, velocity reference close,
  breakout high) and the slot they were computed for (``cache_k``), so that scoring a symbol
  reads one slot instead of scanning the ring; a new current slot or a late tick into an
  older slot makes them stale.

Integer and float parameters travel in two small arrays indexed by the ``I_*``/``F_*``
constants below so that the kernel signature stays fixed when thresholds change.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

MINUTE_NS = 60_000_000_000
NAN = np.nan
NO_SLOT = np.iinfo(np.int64).min     # ``cache_k`` of a symbol whose window caches are stale

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
            level, var, obs, shape, touched, touched_list, counters, ts_limit, cache_k):
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
        elif g < k:
            cache_k[s] = NO_SLOT        # a late tick changed a slot the caches summarise
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
def _refresh(s, k, ip, ring_vol, ring_hi, ring_close, ring_stamp, cache_k, c_vol,  # type: ignore[no-untyped-def]
             c_ref, c_hi):
    """Recompute symbol ``s``'s window summaries for current slot ``k`` from its ring, all
    over completed slots only (``< k``): the volume of ``[k - wvol + 1, k - 1]`` summed in slot
    order, the close of the newest slot in ``[k - ring + 1, k - wvel]`` (NaN: none) and the
    highest high in ``[k - wbrk, min(k - wskip, k - 1)]`` (-1: none)."""
    ring = ip[I_RING]
    g0 = k - ip[I_WVOL] + 1
    j = g0 % ring
    vw = 0.0
    for g in range(g0, k):
        if ring_stamp[s, j] == g:
            vw += ring_vol[s, j]
        j += 1
        if j == ring:
            j = 0
    ref = NAN
    g = k - ip[I_WVEL]
    j = g % ring
    while g > k - ring:
        if ring_stamp[s, j] == g:
            ref = ring_close[s, j]
            break
        g -= 1
        j -= 1
        if j < 0:
            j = ring - 1
    hi = -1.0
    g0 = k - ip[I_WBRK]
    j = g0 % ring
    for g in range(g0, min(k - ip[I_WSKIP], k - 1) + 1):
        if ring_stamp[s, j] == g and ring_hi[s, j] > hi:
            hi = ring_hi[s, j]
        j += 1
        if j == ring:
            j = 0
    c_vol[s] = vw
    c_ref[s] = ref
    c_hi[s] = hi
    cache_k[s] = k


@nb.njit(cache=True)
def _evaluate(s, ip, fp, ring_vol, ring_hi, ring_close, ring_stamp, cur_slot,  # type: ignore[no-untyped-def]
              last_ts, last_px, prof_mean, prof_n, level, var, obs, shape, book_imb,
              o_z, o_vel, o_brk, o_score, o_flags, o_ts, cache_k, c_vol, c_ref, c_hi):
    """Score symbol ``s`` as of its last tick; returns True when it qualifies to be emitted
    (cool-down not considered). The completed slots' summaries come from the per-symbol
    cache (recomputed when the current slot moved or a late tick wrote an older slot); only
    the current slot is read live, so results equal a full scan of the windows."""
    slot_ns = ip[I_SLOT_NS]
    ring = ip[I_RING]
    k = cur_slot[s]
    now = last_ts[s]
    if cache_k[s] != k:
        _refresh(s, k, ip, ring_vol, ring_hi, ring_close, ring_stamp, cache_k, c_vol, c_ref,
                 c_hi)
    jk = k % ring
    live = ring_stamp[s, jk] == k
    # volume over the window (the current slot counts for its elapsed part)
    wv = ip[I_WVOL]
    vw = c_vol[s]
    if live:
        vw += ring_vol[s, jk]
    span = (wv - 1) * slot_ns + (now - k * slot_ns) + 1
    # velocity: last price against the price as of one window ago
    ref = c_ref[s]
    vel = NAN if math.isnan(ref) else last_px[s] / ref - 1.0
    # breakout: last price against the high of [now - window, now - skip]
    hi = c_hi[s]
    if ip[I_WSKIP] == 0 and live and ring_hi[s, jk] > hi:
        hi = ring_hi[s, jk]
    brk = last_px[s] / hi - 1.0 if hi > 0.0 else NAN
    return judge(s, now, vw * MINUTE_NS / span, vel, brk, ip, fp, prof_mean, prof_n, level,
                 var, obs, shape, book_imb, o_z, o_vel, o_brk, o_score, o_flags, o_ts)


@nb.njit(cache=True, inline="always")
def judge(s, now, rate, vel, brk, ip, fp, prof_mean, prof_n, level, var, obs, shape,  # type: ignore[no-untyped-def]
          book_imb, o_z, o_vel, o_brk, o_score, o_flags, o_ts):
    """Symbol ``s``'s reasons and score from its window figures (volume ``rate`` per minute,
    velocity, breakout) and book imbalance, written to the ``o_*`` outputs; True when it
    qualifies to be emitted (cool-down not considered)."""
    z = NAN
    if obs[s] >= ip[I_MIN_OBS]:
        mu = expected(s, bucket_of(now, ip[I_PERIOD_NS], ip[I_NMAIN]), prof_mean, prof_n,
                      level, shape, fp[F_PRIOR_K])
        if not math.isnan(mu):
            z = (math.log1p(rate) - mu) / math.sqrt(var[s])
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
                  ts_limit, cache_k, c_vol, c_ref, c_hi):
    """Ingest one batch, score every touched symbol once, and write the indices of symbols
    that qualify and are out of their cool-down into ``out_idx``; returns their count.
    Ticks stamped after ``ts_limit`` are dropped (a bad clock must not make a symbol deaf).
    The caller decides which of them to emit and stamps ``last_emit`` for those."""
    nt = _ingest(sym, ts, px, vol, ip, fp, ring_vol, ring_hi, ring_close, ring_stamp,
                 cur_slot, last_ts, last_px, min_idx, min_vol, min_partial, prof_mean, prof_n,
                 level, var, obs, shape, touched, touched_list, counters, ts_limit, cache_k)
    cool = ip[I_COOLDOWN_NS]
    ne = 0
    for q in range(nt):
        s = touched_list[q]
        touched[s] = False
        ok = _evaluate(s, ip, fp, ring_vol, ring_hi, ring_close, ring_stamp, cur_slot,
                       last_ts, last_px, prof_mean, prof_n, level, var, obs, shape, book_imb,
                       o_z, o_vel, o_brk, o_score, o_flags, o_ts, cache_k, c_vol, c_ref, c_hi)
        if ok and (last_emit[s] == np.iinfo(np.int64).min or o_ts[s] - last_emit[s] >= cool):
            out_idx[ne] = s
            ne += 1
    return ne


@nb.njit(cache=True)
def seed_ring(sym, start, minutes, high, close, volume, slot_ns, ring, ring_vol,  # type: ignore[no-untyped-def]
              ring_hi, ring_close, ring_stamp, cur_slot, last_ts, last_px):
    """Spread warm-up bars (sorted by time per symbol) over the ring slots they cover so that
    windows straddling the live start see the recent past."""
    for i in range(sym.shape[0]):
        s = sym[i]
        dur = minutes[i] * MINUTE_NS
        g0 = start[i] // slot_ns
        g1 = (start[i] + dur - 1) // slot_ns
        per = volume[i] / (g1 - g0 + 1)
        for g in range(g0, g1 + 1):
            j = g % ring
            if ring_stamp[s, j] != g:
                ring_stamp[s, j] = g
                ring_vol[s, j] = 0.0
                ring_hi[s, j] = high[i]
            ring_vol[s, j] += per
            ring_hi[s, j] = max(ring_hi[s, j], high[i])
            ring_close[s, j] = close[i]
        end = start[i] + dur - 1
        if end >= last_ts[s]:
            last_ts[s] = end
            last_px[s] = close[i]
            cur_slot[s] = max(cur_slot[s], g1)


def fit_profile(sym: np.ndarray, start_ns: np.ndarray, volume: np.ndarray, *, period_ns: int,
                nmain: int, ncap: int, sigma_floor: float, sigma_default: float,
                prof_mean: np.ndarray, prof_n: np.ndarray, level: np.ndarray, var: np.ndarray,
                obs: np.ndarray, shape: np.ndarray) -> None:
    """Fit the volume profile from 1-minute bars (vectorized numpy, run once at warm-up).

    ``shape[b]`` is the universe's mean log-volume in bucket ``b`` relative to each symbol's
    level (buckets nobody traded in are interpolated); ``level[s]`` the symbol's mean
    log-volume net of the shape; ``var[s]`` the variance of its bars around
    ``level + shape``. Symbols in ``sym`` are refit; others keep their state.
    """
    n_sym, nb_ = prof_mean.shape
    b = (start_ns % period_ns) // MINUTE_NS
    b = np.where(b >= nmain, nmain, b)
    y = np.log1p(volume)
    cell = sym * nb_ + b
    cnt = np.bincount(cell, minlength=n_sym * nb_).reshape(n_sym, nb_)
    tot = np.bincount(cell, weights=y, minlength=n_sym * nb_).reshape(n_sym, nb_)
    n_s = np.bincount(sym, minlength=n_sym)
    lvl0 = np.bincount(sym, weights=y, minlength=n_sym) / np.maximum(n_s, 1)
    bc = np.bincount(b, minlength=nb_)
    rel = np.bincount(b, weights=y - lvl0[sym], minlength=nb_) / np.maximum(bc, 1)
    seen = bc[:nmain] > 0
    if seen.any():
        grid = np.arange(nmain)
        shape[:nmain] = np.interp(grid, grid[seen], rel[:nmain][seen])
        shape[nmain] = rel[nmain] if bc[nmain] else 0.0
    lvl = np.bincount(sym, weights=y - shape[b], minlength=n_sym) / np.maximum(n_s, 1)
    resid = y - lvl[sym] - shape[b]
    ss = np.bincount(sym, weights=resid * resid, minlength=n_sym)
    have = n_s > 0
    v = np.where(n_s >= 5, ss / np.maximum(n_s - 1, 1), sigma_default ** 2)
    v = np.maximum(v, sigma_floor ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(cnt > 0, tot / np.maximum(cnt, 1), 0.0)
    prof_mean[have] = mean[have]
    prof_n[have] = np.minimum(cnt[have], ncap)
    level[have] = lvl[have]
    var[have] = v[have]
    obs[have] = n_s[have]
