"""Collector as a running component on a FakeClock: stale/recovered alerts within the feed's
session, failing and restarting feeds, the last-price cache, the tick writer, and the
simulated market end to end through the bus."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime

from jts.bus import DROP, Bus
from jts.calendar import KrxCalendar
from jts.clock import NS, FakeClock, from_datetime
from jts.collector import Collector, Feed
from jts.sim import SimMarket
from jts.storage.cache import MemoryCache, last_price
from jts.storage.ts_writer import TickWriter
from jts.types import Tick

from .helpers import T0, QueueFeed, Recorder, settle, tick

TUE_10 = from_datetime(datetime(2025, 6, 10, 10, 0))     # a KRX trading day, continuous session
TUE_0859 = from_datetime(datetime(2025, 6, 10, 8, 59))
SUN_10 = from_datetime(datetime(2025, 6, 8, 10, 0))


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_feed_goes_stale_after_silence_in_session_and_recovers() -> None:
    clock, rec, feed = FakeClock(TUE_10), Recorder(), QueueFeed()
    c = Collector([Feed("kis", feed, venue="krx", calendar=KrxCalendar())], rec.publish, clock,
                  stale_after_s=30, on_alert=rec.alert)
    task = asyncio.create_task(c.run())
    await settle()
    feed.push([tick("A", TUE_10, seq=1)])
    await settle()
    assert len(rec.ticks) == 1
    await clock.run_for(30)
    assert rec.kinds() == [] and c.status()[0]["stale"] is False
    await clock.run_for(2)
    assert rec.kinds() == ["feed_stale"]
    _kind, message, fields = rec.alerts[0]
    assert "kis" in message and fields["feed"] == "kis" and fields["age_s"] > 30
    await clock.run_for(120)
    assert rec.kinds() == ["feed_stale"]                   # one alert per episode
    st = c.status()[0]
    assert st["stale"] is True and st["last_tick_age_s"] >= 150 and st["in_session"] is True
    feed.push([tick("A", TUE_10 + NS, seq=2)])
    await settle()
    assert rec.kinds() == ["feed_stale", "feed_recovered"]
    assert rec.alerts[1][2]["severity"] == "info"
    st = c.status()[0]
    assert st["stale"] is False and st["stale_count"] == 1 and st["last_tick_age_s"] == 0
    feed.end()
    await asyncio.wait_for(task, 1)                          # every feed ended: run returns
    assert c.status()[0]["state"] == "ended"


async def test_silence_outside_the_session_is_not_stale() -> None:
    clock, rec, feed = FakeClock(SUN_10), Recorder(), QueueFeed()
    c = Collector([Feed("kis", feed, calendar=KrxCalendar())], rec.publish, clock,
                  stale_after_s=30, on_alert=rec.alert)
    task = asyncio.create_task(c.run())
    await clock.run_for(600, step=5)
    assert rec.kinds() == [] and c.status()[0]["in_session"] is False
    await stop(task)


async def test_silence_counts_from_the_session_open_not_from_yesterday() -> None:
    clock, rec, feed = FakeClock(TUE_0859), Recorder(), QueueFeed()
    c = Collector([Feed("kis", feed, calendar=KrxCalendar())], rec.publish, clock,
                  stale_after_s=30, on_alert=rec.alert)
    task = asyncio.create_task(c.run())
    await clock.run_for(60 + 20)                 # 09:00:20: 20 s into the session
    assert rec.kinds() == []
    await clock.run_for(12)
    assert rec.kinds() == ["feed_stale"]
    await stop(task)


async def test_a_failing_feed_alerts_and_the_others_keep_running() -> None:
    clock, rec = FakeClock(T0), Recorder()
    bad, good = QueueFeed(), QueueFeed()
    c = Collector([Feed("bad", bad), Feed("good", good)], rec.publish, clock,
                  on_alert=rec.alert)
    task = asyncio.create_task(c.run())
    await settle()
    bad.fail(ConnectionResetError("peer reset"))
    await settle()
    assert rec.kinds() == ["feed_failed"] and rec.alerts[0][2]["restart"] is False
    good.push([tick(seq=1)])
    await settle()
    assert len(rec.ticks) == 1
    st = {s["name"]: s for s in c.status()}
    assert st["bad"]["state"] == "failed" and st["bad"]["errors"] == 1
    assert st["good"]["state"] == "running"
    await stop(task)


async def test_a_feed_given_as_a_factory_is_restarted_after_a_failure() -> None:
    clock, rec = FakeClock(T0), Recorder()
    starts: list[int] = []

    async def source() -> AsyncIterator[list[Tick]]:
        starts.append(clock.now_ns())
        if len(starts) == 1:
            raise OSError("connect refused")
        yield [tick(seq=len(starts))]
        await asyncio.Event().wait()             # then stays connected, silent

    c = Collector([Feed("ws", source, restart_delay_s=5)], rec.publish, clock,
                  on_alert=rec.alert, stale_after_s=3600)
    task = asyncio.create_task(c.run())
    await settle()
    assert len(starts) == 1 and rec.kinds() == ["feed_failed"]
    await clock.run_for(4)
    assert len(starts) == 1
    await clock.run_for(1)
    await settle()
    assert starts == [T0, T0 + 5 * NS] and len(rec.ticks) == 1
    assert c.status()[0]["state"] == "running"
    await stop(task)


async def test_last_price_cache_is_written_in_batches_with_the_newest_tick() -> None:
    clock, rec = FakeClock(T0), Recorder()
    cache = MemoryCache(clock)
    c = Collector([Feed("krx", [], venue="krx")], rec.publish, clock, cache=cache)
    c.ingest("krx", [tick("A", T0, 100.0, seq=1), tick("B", T0, 50.0, seq=2),
                     tick("A", T0 + 1, 101.0, seq=3)])
    c.ingest("krx", [tick("A", T0 + 2, 102.0, seq=4)])
    assert await last_price(cache, "krx", "A") is None      # nothing written on the hot path
    assert await c.flush_cache() == 2
    a = await last_price(cache, "krx", "A")
    b = await last_price(cache, "krx", "B")
    assert a is not None and a.price == 102.0 and a.seq == 4
    assert b is not None and b.price == 50.0
    assert await c.flush_cache() == 0 and c.totals()["cache_writes"] == 2


async def test_the_running_collector_flushes_the_cache_on_its_interval() -> None:
    clock, rec, feed = FakeClock(T0), Recorder(), QueueFeed()
    cache = MemoryCache(clock)
    c = Collector([Feed("krx", feed, venue="krx")], rec.publish, clock, cache=cache,
                  cache_interval_s=1.0)
    task = asyncio.create_task(c.run())
    await settle()
    feed.push([tick("A", T0, 100.0, seq=1)])
    await settle()
    await clock.run_for(1)
    got = await last_price(cache, "krx", "A")
    assert got is not None and got.price == 100.0
    await stop(task)


class DownCache(MemoryCache):
    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        raise ConnectionError("redis down")


async def test_a_failing_cache_is_counted_and_never_reaches_the_hot_path() -> None:
    clock, rec = FakeClock(T0), Recorder()
    c = Collector([Feed("krx", [])], rec.publish, clock, cache=DownCache(clock))
    assert len(c.ingest("krx", [tick("A", seq=1), tick("B", seq=2)])) == 2
    assert await c.flush_cache() == 0
    assert c.totals()["cache_errors"] == 1 and len(rec.ticks) == 2


class ListSink:
    def __init__(self) -> None:
        self.rows: list[Tick] = []

    async def write_ticks(self, ticks: list[Tick]) -> int:
        self.rows.extend(ticks)
        return len(ticks)


async def test_accepted_ticks_go_to_the_bounded_writer_which_drops_oldest() -> None:
    clock, rec, sink = FakeClock(T0), Recorder(), ListSink()
    writer = TickWriter(sink, clock, max_queue=3, batch_size=100)
    c = Collector([Feed("krx", [])], rec.publish, clock, tick_writer=writer)
    c.ingest("krx", [tick("A", T0 + i, seq=i + 1) for i in range(5)] + [tick(price=-1.0)])
    assert c.totals()["writer_dropped"] == 2
    await writer.flush()
    assert [t.seq for t in sink.rows] == [3, 4, 5]
    assert all(t.recv_ns == T0 for t in sink.rows)


async def test_simulated_market_end_to_end_through_the_bus() -> None:
    clock = FakeClock(TUE_10)
    market = SimMarket(symbols=30, seed=3, tick_interval_s=0.5)
    bus = Bus()
    sub = bus.ticks.subscribe("test", 10_000, DROP)
    c = Collector([Feed("sim", market.stream(clock), venue="krx", calendar=KrxCalendar())],
                  bus.ticks.publish_nowait, clock, stale_after_s=30)
    task = asyncio.create_task(c.run())
    await settle()
    for _ in range(40):
        await clock.run_for(0.5, step=0.5)
    got = [t for batch in sub.drain() for t in batch]
    st = c.status()[0]
    assert got and st["accepted"] == len(got) == market.ticks_emitted
    assert st["rejected_total"] == 0 and st["stale"] is False
    assert len(got) == len({t.seq for t in got})
    await stop(task)


class BatchWriter:
    """The collector hands its writer each accepted batch in one ``offer_many`` call."""

    def __init__(self, fail: bool = False) -> None:
        self.dropped = 0
        self.calls: list[list[Tick]] = []
        self.fail = fail

    def offer_many(self, ticks: list[Tick]) -> int:
        if self.fail:
            raise RuntimeError("disk full")
        self.calls.append(list(ticks))
        return len(ticks)


def test_a_batch_writer_gets_each_accepted_batch_in_one_call() -> None:
    clock, rec, writer = FakeClock(T0), Recorder(), BatchWriter()
    c = Collector([Feed("krx", [])], rec.publish, clock, tick_writer=writer)
    c.ingest("krx", [tick("A", T0 + i, seq=i + 1) for i in range(3)] + [tick(price=-1.0)])
    c.ingest("krx", [tick(price=-1.0)])                     # nothing accepted: no call
    assert [[t.seq for t in b] for b in writer.calls] == [[1, 2, 3]]
    assert writer.calls[0] == rec.batches[0]


def test_a_failing_batch_writer_does_not_break_ingest() -> None:
    clock, rec = FakeClock(T0), Recorder()
    c = Collector([Feed("krx", [])], rec.publish, clock, tick_writer=BatchWriter(fail=True))
    out = c.ingest("krx", [tick("A", T0, seq=1)])
    assert [t.seq for t in out] == [1] and c.status()[0]["accepted"] == 1
