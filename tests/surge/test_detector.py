"""Surge detector behaviour on hand-built streams: each signal, cool-down, profile, bad input."""

from __future__ import annotations

import itertools
import math

import msgspec
import numpy as np
import pytest

from jts.errors import ConfigError, DataError
from jts.surge import SurgeCandidate, SurgeConfig, SurgeDetector
from jts.types import Bar, Tick
from tests.surge.helpers import DAY0, MIN, NS, Stream, flat_history, names

T = DAY0 + 120 * MIN          # live start: mid-session (KRX minute 120)
P = 10_000.0


def detector(n: int = 4, **kw: object) -> SurgeDetector:
    cfg = msgspec.convert({"session": "24h", **kw}, SurgeConfig)
    det = SurgeDetector(names(n), cfg)
    det.warm_up(flat_history(names(n), T))
    return det


def baseline(st: Stream, syms: range | list[int], t0: int, seconds: int) -> None:
    for s in syms:
        st.trade(s, t0, seconds, qty=10.0, p0=P)


def test_quiet_market_emits_nothing() -> None:
    st = Stream(detector())
    baseline(st, range(4), T, 600)
    assert st.play() == []
    assert st.det.status()["ticks"] == 2_400


def test_volume_surge_with_price_run_is_flagged_with_reasons() -> None:
    st = Stream(detector())
    baseline(st, range(4), T, 300)
    st.trade(2, T + 300 * NS, 90, qty=100.0, p0=P, p1=P * 1.012)   # 10x volume, +1.2 %
    baseline(st, [0, 1, 3], T + 300 * NS, 90)
    got = st.play()
    assert [c.symbol for c in got] == ["A0002"]
    c = got[0]
    assert c.volume_z >= 4.0 and c.velocity is not None and c.velocity > 0
    assert c.reasons[0].startswith("volume_z=")
    assert any(r.startswith(("velocity=+", "breakout=+")) for r in c.reasons)
    assert c.imbalance is None
    assert T + 300 * NS < c.ts_ns <= T + 390 * NS
    assert c.score >= c.volume_z
    assert msgspec.json.decode(msgspec.json.encode(c), type=SurgeCandidate) == c


def test_velocity_alone_confirms() -> None:
    st = Stream(detector(breakout_min_pct=30.0))               # breakout cannot fire
    baseline(st, [0], T, 300)
    st.trade(0, T + 300 * NS, 90, qty=100.0, p0=P, p1=P * 1.015)
    c = st.play()[0]
    assert c.velocity is not None and c.velocity >= 0.005
    assert [r.split("=")[0] for r in c.reasons] == ["volume_z", "velocity"]
    assert c.reasons[1].endswith("/120s")


def test_volume_without_price_move_needs_confirmation() -> None:
    for require, expect in ((True, 0), (False, 1)):
        st = Stream(detector(require_price_move=require))
        baseline(st, range(4), T, 300)
        st.trade(1, T + 300 * NS, 60, qty=100.0, p0=P)      # flat price, 10x volume
        st.play()
        assert len(st.got) == expect
        if expect:
            assert st.got[0].reasons == (st.got[0].reasons[0],)


def test_cooldown_runs_on_market_time() -> None:
    st = Stream(detector(cooldown_s=600))
    baseline(st, [0], T, 300)
    st.trade(0, T + 300 * NS, 60, qty=100.0, p0=P, p1=P * 1.01)
    assert len(st.play()) == 1
    first = st.got[0].ts_ns
    # a second burst 4 minutes later is still inside the cool-down
    baseline(st, [0], T + 360 * NS, 180)
    st.trade(0, T + 540 * NS, 60, qty=100.0, p0=P * 1.01, p1=P * 1.02)
    assert st.play() == []
    # one 12 minutes after the first emission is reported again
    baseline(st, [0], T + 600 * NS, 300)
    st.trade(0, first + 720 * NS, 60, qty=150.0, p0=P * 1.02, p1=P * 1.035)
    again = st.play()
    assert [c.symbol for c in again] == ["A0000"] and again[0].ts_ns - first >= 600 * NS


def test_breakout_of_recent_high() -> None:
    st = Stream(detector(velocity_min_pct=30.0, volume_z_min=3.0))   # velocity cannot fire
    baseline(st, [0, 1], T, 300)
    st.trade(0, T + 300 * NS, 60, qty=100.0, p0=P * 1.005, p1=P * 1.008)  # above the 1.001 wicks
    st.trade(1, T + 300 * NS, 60, qty=100.0, p0=P * 0.995)                 # under the high
    got = st.play()
    assert [c.symbol for c in got] == ["A0000"]
    assert got[0].breakout is not None and got[0].breakout > 0.003
    assert any(r.startswith("breakout=+") for r in got[0].reasons)


def test_book_imbalance_confirms_and_is_reported() -> None:
    st = Stream(detector(velocity_min_pct=30.0))
    st.det.update_book(1, 900.0, 100.0)
    baseline(st, range(4), T, 300)
    st.trade(1, T + 300 * NS, 60, qty=100.0, p0=P)
    st.trade(2, T + 300 * NS, 60, qty=100.0, p0=P)          # same volume, no book: no signal
    got = st.play()
    assert [c.symbol for c in got] == ["A0001"]
    assert got[0].imbalance == pytest.approx(0.8)
    assert "imbalance=+0.80" in got[0].reasons
    st.det.clear_book(1)
    assert all(c.imbalance is None for c in st.det.top(4))


def test_update_book_rejects_bad_input() -> None:
    det = detector()
    with pytest.raises(DataError, match="out of range"):
        det.update_book(9, 1.0, 1.0)
    with pytest.raises(DataError, match="non-negative"):
        det.update_book(0, -1.0, 1.0)
    det.update_book([0, 1], [0.0, 3.0], [0.0, 1.0])          # empty book → unknown
    assert math.isnan(det._book_imb[0]) and det._book_imb[1] == 0.5


@pytest.mark.parametrize(("direction", "expect"), [("both", 1), ("up", 0), ("down", 1)])
def test_direction_filter(direction: str, expect: int) -> None:
    st = Stream(detector(direction=direction))
    baseline(st, [0], T, 300)
    st.trade(0, T + 300 * NS, 90, qty=100.0, p0=P, p1=P * 0.985)         # a selling climax
    st.play()
    assert len(st.got) == expect
    if expect:
        assert st.got[0].velocity is not None and st.got[0].velocity < 0


def test_time_of_day_profile_expects_a_busy_open() -> None:
    shape = {m: 5.0 for m in range(30)}                      # first half hour 5x busier
    cfg = SurgeConfig(session="krx")
    det = SurgeDetector(names(1), cfg)
    det.warm_up(flat_history(names(1), DAY0 + 240 * MIN, minutes=3 * 1_440, shape=shape))
    assert det.expected_volume_per_min(0, DAY0 + 5 * MIN) > 3 * det.expected_volume_per_min(
        0, DAY0 + 200 * MIN)
    st = Stream(det)
    day = DAY0 + 86_400 * NS
    st.trade(0, day, 120, qty=50.0, p0=P, p1=P * 1.01)        # 5x the midday rate, at the open
    assert st.play() == []
    st.trade(0, day + 200 * MIN, 120, qty=10.0, p0=P)
    st.trade(0, day + 202 * MIN, 120, qty=50.0, p0=P, p1=P * 1.01)   # same rate at minute 202
    assert [c.symbol for c in st.play()] == ["A0000"]


def test_no_profile_no_volume_judgement() -> None:
    det = SurgeDetector(names(1), SurgeConfig(session="24h"))
    st = Stream(det)
    st.trade(0, T, 240, qty=100.0, p0=P, p1=P * 1.02)
    assert st.play() == []
    assert all(math.isnan(x) for x in det._z[:1])


def test_profile_learns_online_from_scratch() -> None:
    det = SurgeDetector(names(1), SurgeConfig(session="24h", min_profile_obs=10))
    assert math.isnan(det.expected_volume_per_min(0, T))
    st = Stream(det)
    st.trade(0, T, 15 * 60, qty=10.0, p0=P)
    assert st.play() == []
    assert det.status()["minutes_learned"] >= 13
    assert 500 < det.expected_volume_per_min(0, T + 20 * MIN) < 700
    st.trade(0, T + 900 * NS, 90, qty=100.0, p0=P, p1=P * 1.02)
    assert [c.symbol for c in st.play()] == ["A0000"]


def test_profile_adapts_to_a_new_volume_level() -> None:
    det = detector(1)
    before = det.expected_volume_per_min(0, T)
    st = Stream(det)
    st.trade(0, T, 3 * 3_600, qty=20.0, p0=P)                # double the usual volume, all day
    st.play(batch_s=60)
    assert st.got == []                                      # 2x is not a surge at sd 0.2
    after = det.expected_volume_per_min(0, T + 10 * MIN)
    assert 1.15 * before < after < 1.8 * before       # moves towards 2x, without forgetting


def test_bad_ticks_are_counted_not_fatal() -> None:
    det = detector(2)
    s = [0, 5, -1, 0, 0, 0, 1, 0]
    t = [T + i * NS for i in range(8)]
    p = [P, P, P, -1.0, math.nan, P, P, math.inf]
    v = [10.0, 10.0, 10.0, 10.0, 10.0, 0.0, 10.0, 10.0]
    assert det.update(s, t, p, v) == []
    st = det.status()
    assert st["ticks"] == 8
    assert st["dropped"] == {"bad_symbol": 2, "bad_price": 3, "bad_volume": 1, "late": 0,
                             "future": 0}
    det.update([0], [T - 3_600 * NS], [P], [10.0])         # far older than the ring
    det.update([1], [T + 3 * NS], [P], [10.0])              # slightly out of order: kept
    st = det.status()
    assert st["dropped"]["late"] == 1 and st["out_of_order"] == 1
    with pytest.raises(DataError, match="1-D arrays of one length"):
        det.update([0, 1], [T], [P], [1.0])


def test_a_wild_future_timestamp_does_not_deafen_a_symbol() -> None:
    st = Stream(detector(2))
    baseline(st, [0, 1], T, 300)
    st.play()
    ts = [T + 301 * NS, T + 86_400 * NS, T + 302 * NS]          # one print from tomorrow
    st.det.update([0, 0, 1], ts, [P, P, P], [10.0, 10.0, 10.0])
    assert st.det.status()["dropped"]["future"] == 1
    st.trade(0, T + 303 * NS, 90, qty=100.0, p0=P, p1=P * 1.015)
    assert [c.symbol for c in st.play()] == ["A0000"]
    assert st.det.status()["dropped"]["late"] == 0


def test_ticks_and_arrays_agree() -> None:
    a, b = detector(3), detector(3)
    st = Stream(a)
    baseline(st, range(3), T, 300)
    st.trade(1, T + 300 * NS, 90, qty=120.0, p0=P, p1=P * 1.02)
    rows = sorted(st.rows, key=lambda r: r[1])
    ticks = [Tick("krx", a.symbols[r[0]], r[1], r[1], r[2], r[3]) for r in rows]
    ticks.insert(5, Tick("krx", "NOPE", T, T, P, 1.0))
    got_a = a.update(*(np.array(col) for col in zip(*rows, strict=True)))
    got_b = b.update_ticks(ticks)
    assert got_a == got_b and len(got_a) == 1
    assert b.status()["dropped"]["bad_symbol"] == 1


def test_max_candidates_and_ranking() -> None:
    st = Stream(detector(6, max_candidates=2))
    baseline(st, range(6), T, 300)
    for s in range(5):
        st.trade(s, T + 300 * NS, 60, qty=30.0 + 30 * s, p0=P, p1=P * 1.01)
    st.rows.sort(key=lambda r: r[1])
    last = st.rows[-1][1]
    rows = st.rows
    st.rows = []
    got = st.det.update(*(np.array(col) for col in zip(*rows, strict=True)))
    assert [c.symbol for c in got] == ["A0004", "A0003"]
    assert got[0].score >= got[1].score
    top = st.det.top(3)
    assert [c.symbol for c in top] == ["A0004", "A0003", "A0002"]
    assert all(x.score >= y.score for x, y in itertools.pairwise(top))
    # those cut by max_candidates are not put into cool-down: the next batch reports them
    nxt = st.det.update([2, 1], [last + NS, last + NS], [P * 1.011] * 2, [90.0, 60.0])
    assert [c.symbol for c in nxt] == ["A0002", "A0001"]


def test_top_only_recent_and_status_shape() -> None:
    st = Stream(detector(2))
    assert st.det.top(5) == []
    st.trade(0, T, 60, qty=10.0, p0=P)
    st.trade(1, T + 600 * NS, 60, qty=10.0, p0=P)
    st.play()
    assert {c.symbol for c in st.det.top(5, fresh_s=3_600)} <= {"A0000", "A0001"}
    assert "A0000" not in {c.symbol for c in st.det.top(5)}
    status = st.det.status()
    for key in ("symbols", "batches", "ticks", "dropped", "candidates_emitted", "batch_us_p50",
                "batch_us_p99", "top", "profiled_symbols", "warmup_bars"):
        assert key in status
    assert status["profiled_symbols"] == 2 and status["warmup_bars"] == 1_200


def test_warm_up_ignores_foreign_bars_and_checks_arrays() -> None:
    det = SurgeDetector(names(2), SurgeConfig(session="24h"))
    hist = flat_history(names(2), T, minutes=30)
    hist["A0001"].append(Bar("A0001", "1d", T - 86_400 * NS, P, P, P, P, 1e6, 1e10))
    hist["ZZZZ"] = hist["A0000"][:3]
    det.warm_up(hist)
    assert det.warmup_bars == 60 and det.warmup_ignored == 1
    with pytest.raises(DataError, match="differ in length"):
        det.warm_up_arrays(np.zeros(2, np.int64), np.zeros(1, np.int64), np.zeros(2),
                           np.zeros(2), np.zeros(2))
    with pytest.raises(DataError, match="out of range"):
        det.warm_up_arrays(np.array([7]), np.array([T]), np.ones(1), np.ones(1), np.ones(1))


def test_constructor_rejects_bad_universe() -> None:
    with pytest.raises(ConfigError, match="at least one"):
        SurgeDetector([], SurgeConfig())
    with pytest.raises(ConfigError, match="duplicate"):
        SurgeDetector(["A", "A"], SurgeConfig())
