"""Collector hot path: normalization, validation counters, de-duplication, flood throttling."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jts.clock import NS, FakeClock
from jts.collector import REASONS, Collector, Feed
from jts.types import Tick

from .helpers import T0, Recorder, tick


def make(*feeds: Feed, clock: FakeClock | None = None, **kw: Any
         ) -> tuple[Collector, Recorder, FakeClock]:
    rec = Recorder()
    clock = clock or FakeClock(T0 + 5 * NS)
    feeds = feeds or (Feed("krx", [], venue="krx"),)
    return Collector(list(feeds), rec.publish, clock, on_alert=rec.alert, **kw), rec, clock


def rejected(c: Collector, feed: str = "krx") -> dict[str, int]:
    [st_] = [s for s in c.status() if s["name"] == feed]
    return {k: v for k, v in st_["rejected"].items() if v}


def test_accepted_ticks_get_receive_time_and_keep_venue() -> None:
    c, rec, clock = make(Feed("krx", [], venue="krx"))
    out = c.ingest("krx", [tick("A", T0, seq=1), tick("B", T0 + 1, seq=2, venue="")])
    assert rec.batches == [out]                       # one publish per batch
    assert [t.recv_ns for t in out] == [clock.now_ns()] * 2
    assert [t.venue for t in out] == ["krx", "krx"]   # kept / filled from the feed
    assert [(t.symbol, t.ts_ns, t.price, t.volume, t.seq) for t in out] == [
        ("A", T0, 70_000.0, 10.0, 1), ("B", T0 + 1, 70_000.0, 10.0, 2)]
    assert rejected(c) == {}


@pytest.mark.parametrize(("bad", "reason"), [
    (tick(price=-1.0), "bad_price"),
    (tick(price=0.0), "bad_price"),
    (tick(price=math.nan), "bad_price"),
    (tick(price=math.inf), "bad_price"),
    (tick(volume=-5.0), "bad_volume"),
    (tick(volume=math.nan), "bad_volume"),
    (tick(volume=math.inf), "bad_volume"),
    (tick(volume=0.0), "zero_volume"),
    (tick(symbol=""), "malformed"),
    ("not a tick", "malformed"),
    (Tick("krx", "A", T0, 0, "12", 1.0), "malformed"),   # type: ignore[arg-type]
])
def test_each_bad_tick_is_counted_under_its_reason_and_dropped(bad: Any, reason: str) -> None:
    c, rec, _ = make()
    good = tick("OK", T0, seq=9)
    out = c.ingest("krx", [bad, good])
    assert out == rec.ticks and [t.symbol for t in out] == ["OK"]
    assert rejected(c) == {reason: 1}
    s = c.status()[0]
    assert s["ticks"] == 2 and s["accepted"] == 1 and s["rejected_total"] == 1


def test_a_batch_that_is_not_a_list_is_counted_not_raised() -> None:
    c, rec, _ = make()
    assert c.ingest("krx", None) == [] and c.ingest("krx", 42) == []
    assert rejected(c) == {"malformed": 2} and rec.batches == []


def test_all_rejected_batch_is_not_published() -> None:
    c, rec, _ = make()
    assert c.ingest("krx", [tick(price=-1.0), tick(volume=0.0)]) == []
    assert rec.batches == []


def test_out_of_order_beyond_tolerance_is_rejected() -> None:
    c, _, _ = make(out_of_order_tolerance_s=0.5)
    c.ingest("krx", [tick("A", T0 + 10 * NS, seq=1)])
    out = c.ingest("krx", [tick("A", T0 + 9_600_000_000, seq=2),     # 0.4 s late: tolerated
                           tick("A", T0 + 9 * NS, seq=3),             # 1 s late: rejected
                           tick("B", T0, seq=4)])                     # other symbol: own order
    assert [t.seq for t in out] == [2, 4]
    assert rejected(c) == {"out_of_order": 1}
    # the tolerated late tick did not move the symbol's clock backwards
    assert c.ingest("krx", [tick("A", T0 + 9_400_000_000, seq=5)]) == []


def test_out_of_order_default_tolerance_is_zero_but_equal_times_pass() -> None:
    c, _, _ = make()
    c.ingest("krx", [tick("A", T0, seq=1)])
    assert [t.seq for t in c.ingest("krx", [tick("A", T0, seq=2), tick("A", T0 - 1, seq=3)])] \
        == [2]
    assert rejected(c) == {"out_of_order": 1}


def test_duplicates_by_sequence_number() -> None:
    c, _, _ = make()
    out = c.ingest("krx", [tick("A", T0, seq=7), tick("A", T0, price=1.0, seq=7),
                           tick("B", T0, seq=7)])                     # seq is per symbol
    assert [(t.symbol, t.price) for t in out] == [("A", 70_000.0), ("B", 70_000.0)]
    c.ingest("krx", [tick("A", T0 + 1, seq=7)])                     # across batches too
    assert rejected(c) == {"duplicate": 2}


def test_duplicates_by_content_when_there_is_no_sequence() -> None:
    c, _, _ = make()
    out = c.ingest("krx", [tick("A", T0), tick("A", T0), tick("A", T0, volume=11.0),
                           tick("A", T0, price=70_100.0), tick("A", T0, venue="nxt")])
    assert [(t.venue, t.price, t.volume) for t in out] == [
        ("krx", 70_000.0, 10.0), ("krx", 70_000.0, 11.0), ("krx", 70_100.0, 10.0),
        ("nxt", 70_000.0, 10.0)]
    assert rejected(c) == {"duplicate": 1}


def test_redundant_feeds_deduplicate_each_other() -> None:
    c, rec, _ = make(Feed("ws", [], venue="krx"), Feed("poll", [], venue="krx"))
    c.ingest("ws", [tick("A", T0, seq=1), tick("A", T0 + 1, seq=2)])
    assert [t.seq for t in c.ingest("poll", [tick("A", T0 + 1, seq=2),
                                             tick("A", T0 + 2, seq=3)])] == [3]
    assert rejected(c, "poll") == {"duplicate": 1} and rejected(c, "ws") == {}
    assert len(rec.batches) == 2


def test_dedup_memory_is_bounded_per_symbol() -> None:
    c, _, _ = make(dedup_window=4, out_of_order_tolerance_s=100)
    c.ingest("krx", [tick("A", T0 + i, seq=i + 1) for i in range(10)])
    # seq 1 fell out of the window (forgotten); seq 10 is still remembered
    assert [t.seq for t in c.ingest("krx", [tick("A", T0, seq=1), tick("A", T0, seq=10)])] == [1]


def test_flood_by_batch_size_drops_oldest_and_alerts_once_per_interval() -> None:
    c, rec, clock = make(Feed("krx", [], venue="krx", max_batch=3), flood_alert_interval_s=60)
    out = c.ingest("krx", [tick("A", T0 + i, seq=i + 1) for i in range(5)])
    assert [t.seq for t in out] == [3, 4, 5]                   # newest kept
    c.ingest("krx", [tick("A", T0 + 10 + i, seq=10 + i) for i in range(4)])
    assert rejected(c) == {"flood": 3}
    assert rec.kinds() == ["feed_flood"]
    clock.advance(61)
    c.ingest("krx", [tick("A", T0 + 20 + i, seq=20 + i) for i in range(4)])
    assert rec.kinds() == ["feed_flood", "feed_flood"]
    assert rec.alerts[-1][2]["feed"] == "krx" and rec.alerts[-1][2]["dropped_total"] == 4


def test_flood_by_rate_counts_per_clock_second() -> None:
    c, rec, clock = make(Feed("krx", [], venue="krx", max_per_second=5))
    clock.set((clock.now_ns() // NS + 1) * NS)                 # start of a clock second
    a = c.ingest("krx", [tick("A", T0 + i, seq=i + 1) for i in range(3)])
    b = c.ingest("krx", [tick("A", T0 + 10 + i, seq=10 + i) for i in range(4)])
    assert len(a) == 3 and [t.seq for t in b] == [12, 13]     # 2 of room left, newest kept
    assert c.ingest("krx", [tick("A", T0 + 20, seq=20)]) == []
    clock.advance(1)
    assert len(c.ingest("krx", [tick("A", T0 + 30 + i, seq=30 + i) for i in range(5)])) == 5
    assert rejected(c) == {"flood": 3}
    assert "feed_flood" in rec.kinds()


def test_publish_failure_is_counted_not_raised() -> None:
    clock = FakeClock(T0)

    def broken(batch: list[Tick]) -> None:
        raise RuntimeError("bus closed")

    c = Collector([Feed("krx", [])], broken, clock)
    assert len(c.ingest("krx", [tick(seq=1)])) == 1
    assert c.totals()["publish_errors"] == 1 and c.totals()["published"] == 0


def test_alert_hook_failure_does_not_break_ingest() -> None:
    clock = FakeClock(T0)

    def bad_alert(kind: str, message: str, **fields: Any) -> None:
        raise RuntimeError("sink down")

    c = Collector([Feed("krx", [], max_batch=1)], lambda b: None, clock, on_alert=bad_alert)
    assert len(c.ingest("krx", [tick(seq=1), tick(seq=2)])) == 1


def test_constructor_rejects_bad_settings() -> None:
    clock = FakeClock(T0)
    with pytest.raises(ValueError, match="unique"):
        Collector([Feed("a", []), Feed("a", [])], lambda b: None, clock)
    with pytest.raises(ValueError, match="stale_after_s"):
        Collector([Feed("a", [])], lambda b: None, clock, stale_after_s=0)
    with pytest.raises(ValueError, match="dedup_window"):
        Collector([Feed("a", [])], lambda b: None, clock, dedup_window=0)


_prices = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(0.0))
_ticks = st.builds(lambda sym, ts, p, v, seq: Tick("krx", sym, T0 + ts, 0, p, v, seq),
                   st.sampled_from(["A", "B", ""]), st.integers(0, 50), _prices, _prices,
                   st.integers(0, 5))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_ticks, max_size=12), max_size=8))
def test_property_every_tick_is_accepted_or_rejected_exactly_once(
        batches: list[list[Tick]]) -> None:
    c, rec, _ = make(Feed("krx", [], venue="krx", max_batch=10))
    for b in batches:
        c.ingest("krx", b)
    s = c.status()[0]
    assert s["ticks"] == sum(len(b) for b in batches)
    assert s["accepted"] + s["rejected_total"] == s["ticks"]
    assert s["accepted"] == len(rec.ticks)
    assert set(s["rejected"]) == set(REASONS)
    for t in rec.ticks:
        assert t.price > 0 and math.isfinite(t.price) and t.volume > 0
    # accepted ticks are in time order per symbol and unique by (symbol, seq/content)
    seen: set[object] = set()
    last: dict[str, int] = {}
    for t in rec.ticks:
        k = (t.symbol, t.seq) if t.seq else (t.symbol, t.ts_ns, t.price, t.volume)
        assert k not in seen
        seen.add(k)
        assert t.ts_ns >= last.get(t.symbol, 0)
        last[t.symbol] = t.ts_ns
