"""The surge kernels with their per-symbol window caches equal the plain full-scan kernels
(``reference_kernels``) bit for bit: same candidates, same scores and reasons, same state,
over random streams with late, out-of-order, future and bad ticks across many ring slots."""

from __future__ import annotations

import msgspec
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from jts.surge import SurgeConfig, SurgeDetector
from tests.surge import reference_kernels as R
from tests.surge.helpers import MIN, NS, flat_history, names

N = 6
T = (1_750_000_000 // 86_400 + 1) * 86_400 * NS + 120 * MIN
CFG = msgspec.convert({"session": "24h", "slot_s": 5, "volume_window_s": 20,
                       "velocity_window_s": 15, "breakout_window_s": 40, "breakout_skip_s": 0,
                       "cooldown_s": 0, "volume_z_min": 0.5, "velocity_min_pct": 0.05,
                       "require_price_move": False}, SurgeConfig)
CFG_SKIP = msgspec.convert({"session": "24h", "slot_s": 5, "volume_window_s": 30,
                            "velocity_window_s": 10, "breakout_window_s": 60,
                            "breakout_skip_s": 15, "cooldown_s": 20, "volume_z_min": 0.5},
                           SurgeConfig)
HIST = flat_history(names(N), T, minutes=30)
STATE = ("_ring_vol", "_ring_hi", "_ring_close", "_ring_stamp", "_cur_slot", "_last_ts",
         "_last_px", "_min_idx", "_min_vol", "_min_partial", "_prof_mean", "_prof_n", "_level",
         "_var", "_obs", "_last_emit", "_counters", "_z", "_vel", "_brk", "_score", "_flags",
         "_eval_ts")

price = st.one_of(st.floats(9_000, 11_500), st.sampled_from([0.0, -1.0, float("nan")]))
volume = st.one_of(st.floats(1, 20_000), st.sampled_from([0.0, float("nan")]))
# (symbol, market seconds after the batch's base: negative = late, large = a jump ahead)
tick = st.tuples(st.integers(-1, N), st.integers(-60, 90), price, volume)
stream = st.lists(st.tuples(st.integers(1, 40), st.lists(tick, max_size=30)), min_size=1,
                  max_size=25)


def reference_update(det: SurgeDetector, s: np.ndarray, t: np.ndarray, p: np.ndarray,
                     v: np.ndarray) -> list[int]:
    """What ``SurgeDetector.update`` did with the full-scan kernels: the emitted indices."""
    k = len(t)
    ref = int(np.median(t[[k // 2, (7 * k) // 8, k - 1]])) if k else 0
    limit = ref + det.cfg.max_future_s * NS if k else np.iinfo(np.int64).min
    ne = R.process_batch(s, t, p, v, det._ip, det._fp, det._ring_vol, det._ring_hi,
                         det._ring_close, det._ring_stamp, det._cur_slot, det._last_ts,
                         det._last_px, det._min_idx, det._min_vol, det._min_partial,
                         det._prof_mean, det._prof_n, det._level, det._var, det._obs,
                         det._shape, det._book_imb, det._last_emit, det._touched,
                         det._touched_list, det._counters, det._z, det._vel, det._brk,
                         det._score, det._flags, det._eval_ts, det._out_idx, limit)
    idx = det._out_idx[:ne]
    idx = idx[np.argsort(-det._score[idx], kind="stable")][: det.cfg.max_candidates]
    det._last_emit[idx] = det._eval_ts[idx]
    return [int(i) for i in idx]


def check(cfg: SurgeConfig, plan: list[tuple[int, list[tuple[int, int, float, float]]]],
          book: bool) -> None:
    fast, plain = SurgeDetector(names(N), cfg), SurgeDetector(names(N), cfg)
    fast.warm_up(HIST)
    plain.warm_up(HIST)
    base = T
    for b_no, (advance_s, batch) in enumerate(plan):
        base += advance_s * NS
        if book and b_no % 3 == 0:
            for det in (fast, plain):
                det.update_book([b_no % N], [100.0 + b_no], [300.0])
        rows = [(s, base + dt * NS + i, px, v) for i, (s, dt, px, v) in enumerate(batch)]
        s = np.array([r[0] for r in rows], dtype=np.int64)
        t = np.array([r[1] for r in rows], dtype=np.int64)
        p = np.array([r[2] for r in rows], dtype=np.float64)
        v = np.array([r[3] for r in rows], dtype=np.float64)
        keep = (s >= 0) & (s < N)          # update() refuses out-of-range indices up front
        s, t, p, v = s[keep], t[keep], p[keep], v[keep]
        got = [fast.index[c.symbol] for c in fast.update(s, t, p, v)]
        want = reference_update(plain, s, t, p, v)
        assert got == want, f"batch {b_no}"
        for name in STATE:
            np.testing.assert_array_equal(getattr(fast, name), getattr(plain, name),
                                          err_msg=f"{name} after batch {b_no}")


@settings(max_examples=120, deadline=None)
@given(stream, st.booleans())
def test_cached_windows_equal_the_full_scan(plan: list[tuple[int, list[tuple[int, int, float,
                                                                             float]]]],
                                            book: bool) -> None:
    check(CFG, plan, book)


@settings(max_examples=80, deadline=None)
@given(stream)
def test_cached_windows_equal_the_full_scan_with_a_breakout_skip(
        plan: list[tuple[int, list[tuple[int, int, float, float]]]]) -> None:
    check(CFG_SKIP, plan, False)


def test_a_late_tick_into_a_summarised_slot_is_seen() -> None:
    """The case the cache must not miss: the current slot is already scored (its caches
    built), then a late print lands in an older slot inside every window."""
    plan = [(0, [(0, 0, 10_000.0, 100.0)]), (12, [(0, 0, 10_050.0, 100.0)]),
            (1, [(0, -8, 12_000.0, 50_000.0), (0, 0, 10_060.0, 10.0)])]
    check(CFG, plan, False)
