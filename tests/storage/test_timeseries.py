"""Time series on the real ClickHouse engine (chdb): writes, aligned reads, resampling, the
batched tick writer; the same suite runs on a ClickHouse server when JTS_TEST_CLICKHOUSE_URL
is set."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from jts.clock import FakeClock
from jts.errors import StorageError
from jts.storage.timeseries import ClickHouseTimeSeries, open_timeseries, parse_timeframe
from jts.storage.ts_writer import TickWriter
from jts.tick_batch import TickBatch
from jts.types import Bar, Tick

MIN = 60 * 10**9
# 2024-01-02 09:00 KST, on a minute boundary
T0 = 1_704_153_600 * 10**9
REMOTE = os.environ.get("JTS_TEST_CLICKHOUSE_URL")
BACKENDS = ["chdb"] + (["clickhouse"] if REMOTE else [])


@pytest.fixture(params=BACKENDS)
async def ts(request: pytest.FixtureRequest, chdb_url: str) -> AsyncIterator[ClickHouseTimeSeries]:
    store = await open_timeseries(chdb_url if request.param == "chdb" else str(REMOTE))
    yield store
    await store.close()


def bars(symbol: str, n: int, skip: tuple[int, ...] = (), tf: str = "1m",
         step: int = MIN) -> list[Bar]:
    return [Bar(symbol, tf, T0 + i * step, 10.0 + i, 11.0 + i, 9.0 + i, 10.5 + i, 100.0, 1050.0)
            for i in range(n) if i not in skip]


async def test_read_bars_aligns_symbols_and_time(ts: ClickHouseTimeSeries, sym: str) -> None:
    a, b, c = f"{sym}A", f"{sym}B", f"{sym}C"
    await ts.write_bars(bars(a, 10) + bars(b, 10, skip=(3, 4)))
    arr = await ts.read_bars([b, a, c], T0, T0 + 10 * MIN, "1m")
    assert arr.symbols == [b, a, c]
    assert arr.close.shape == (3, 10)
    assert np.array_equal(arr.ts_ns, T0 + np.arange(10) * MIN)
    assert np.isnan(arr.close[0, 3:5]).all() and arr.close[0, 5] == 15.5
    assert np.array_equal(arr.close[1], 10.5 + np.arange(10))
    assert np.isnan(arr.close[2]).all()
    assert arr.close.dtype == np.float64


async def test_read_bars_loads_chosen_fields_as_float32(ts: ClickHouseTimeSeries,
                                                        sym: str) -> None:
    await ts.write_bars(bars(sym, 12, skip=(2,)) + bars(sym + "F", 12))
    arr = await ts.read_bars([sym, sym + "F"], T0, T0 + 12 * MIN, fields=["close"],
                             dtype=np.float32)
    assert arr.close.dtype == np.float32 and list(arr.columns) == ["close"]
    assert arr.close[0, :2].tolist() == [10.5, 11.5] and np.isnan(arr.close[0, 2])
    assert arr.close[1].tolist() == (10.5 + np.arange(12)).tolist()
    with pytest.raises(StorageError, match="'open' was not loaded"):
        _ = arr.open
    five = await ts.read_bars([sym], T0, T0 + 12 * MIN, "5m", fields=["volume", "open"])
    assert list(five.columns) == ["volume", "open"]
    assert five.volume[0].tolist() == [400.0, 500.0, 200.0]
    assert five.open[0].tolist() == [10.0, 15.0, 20.0]


async def test_read_bars_refuses_unknown_fields_and_dtypes(ts: ClickHouseTimeSeries) -> None:
    with pytest.raises(StorageError, match="unknown bar fields"):
        await ts.read_bars(["X"], T0, T0 + MIN, fields=["close", "vwap"])
    with pytest.raises(StorageError, match="dtype"):
        await ts.read_bars(["X"], T0, T0 + MIN, dtype=np.int64)  # type: ignore[arg-type]
    with pytest.raises(StorageError, match="bad timeframe"):
        await ts.read_bars(["X"], T0, T0 + MIN, "3x")
    empty = await ts.read_bars([], T0, T0 + MIN)
    assert empty.close.shape == (0, 0)


async def test_many_sparse_symbols_match_the_long_frame(ts: ClickHouseTimeSeries,
                                                        sym: str) -> None:
    """Enough symbols for parallel reader groups; gaps, late listings, a symbol with no bars
    and a request order unlike the stored order."""
    rng = np.random.default_rng(7)
    names = [f"{sym}{i:02d}" for i in range(40)]
    rows = [Bar(n, "1m", T0 + m * MIN, 1.0, 2.0, 0.5, float(i * 1000 + m), 3.0, 4.0)
            for i, n in enumerate(names[:-1]) for m in range(i % 7, 60) if rng.random() < 0.8]
    await ts.write_bars(rows)
    order = list(rng.permutation(names))
    arr = await ts.read_bars(order, T0, T0 + 60 * MIN)
    frame = await ts.read_bars_df(order, T0, T0 + 60 * MIN)
    assert np.array_equal(arr.ts_ns, np.unique(frame["ts_ns"]))
    want = np.full((len(order), len(arr.ts_ns)), np.nan)
    pos = {n: i for i, n in enumerate(order)}
    want[[pos[n] for n in frame["symbol"]], np.searchsorted(arr.ts_ns, frame["ts_ns"])] = \
        frame["close"]
    assert np.array_equal(arr.close, want, equal_nan=True)
    assert np.isnan(arr.close[pos[names[-1]]]).all()
    assert np.array_equal(arr.volume, np.where(np.isnan(want), np.nan, 3.0), equal_nan=True)


async def test_the_server_read_path_on_the_embedded_engine(chdb_url: str, sym: str) -> None:
    """clickhouse-connect's Arrow stream (the ``clickhouse://`` path) gives the same arrays."""
    store = await open_timeseries(chdb_url)
    await store.write_bars(bars(sym, 10, skip=(4,)) + bars(sym + "B", 6))
    generic = ClickHouseTimeSeries(store.url, store._client, store.db)   # no native engine
    try:
        want = await store.read_bars([sym, sym + "B"], T0, T0 + 10 * MIN)
        got = await generic.read_bars([sym, sym + "B"], T0, T0 + 10 * MIN)
        assert np.array_equal(got.ts_ns, want.ts_ns)
        for f in ("open", "close", "value"):
            assert np.array_equal(got[f], want[f], equal_nan=True)
        assert np.isnan(got.close[0, 4]) and np.isnan(got.close[1, 6:]).all()
    finally:
        await generic.close()
        await store.close()


class WriteBetweenPasses(ClickHouseTimeSeries):
    """Writes a bar at a new time after the time-axis pass, once: the read must start over."""

    def __init__(self, base: ClickHouseTimeSeries, late: Bar) -> None:
        super().__init__(base.url, base._client, base.db, base._engine)
        self.late: Bar | None = late
        self.passes = 0

    def _blocks(self, sql: str, reader: int = 0):  # type: ignore[no-untyped-def]
        self.passes += 1
        if self.late is not None and "FINAL" in sql:
            b, self.late = self.late, None
            self._client.command(
                f"INSERT INTO {self.db}.bars VALUES ('{b.symbol}', '1m', "
                f"fromUnixTimestamp64Milli({b.ts_ns // 10**6}), 1, 1, 1, 42, 1, 1)")
        return super()._blocks(sql, reader)


async def test_a_write_between_the_passes_restarts_the_read(chdb_url: str, sym: str) -> None:
    store = await open_timeseries(chdb_url)
    await store.write_bars(bars(sym, 3))
    racer = WriteBetweenPasses(store, Bar(sym, "1m", T0 + 3 * MIN, 0, 0, 0, 0, 0, 0))
    try:
        arr = await racer.read_bars([sym], T0, T0 + 10 * MIN)
        assert arr.close[0].tolist() == [10.5, 11.5, 12.5, 42.0]
        assert racer.passes == 4
    finally:
        await racer.close()
        await store.close()


async def test_rewritten_bar_replaces_the_old_one(ts: ClickHouseTimeSeries, sym: str) -> None:
    await ts.write_bars(bars(sym, 3))
    await ts.write_bars([Bar(sym, "1m", T0 + MIN, 1, 1, 1, 99.0, 1, 1)])
    arr = await ts.read_bars([sym], T0, T0 + 3 * MIN)
    assert arr.close[0].tolist() == [10.5, 99.0, 12.5]


async def test_resample_minutes_to_5m_on_kst_boundaries(ts: ClickHouseTimeSeries,
                                                        sym: str) -> None:
    await ts.write_bars(bars(sym, 12))
    arr = await ts.read_bars([sym], T0, T0 + 12 * MIN, "5m")
    assert np.array_equal(arr.ts_ns, T0 + np.array([0, 5, 10]) * MIN)
    assert arr.open[0].tolist() == [10.0, 15.0, 20.0]
    assert arr.close[0].tolist() == [14.5, 19.5, 21.5]
    assert arr.high[0].tolist() == [15.0, 20.0, 22.0]
    assert arr.low[0].tolist() == [9.0, 14.0, 19.0]
    assert arr.volume[0].tolist() == [500.0, 500.0, 200.0]


async def test_resample_days_to_weeks(ts: ClickHouseTimeSeries, sym: str) -> None:
    day0 = T0 - 9 * 3600 * 10**9                    # 2024-01-02 00:00 KST (a Tuesday)
    daily = [Bar(sym, "1d", day0 + i * 86_400 * 10**9, i, i + 1, i - 1 / 2, i + 0.5, 1, 1)
             for i in range(10)]
    await ts.write_bars(daily)
    arr = await ts.read_bars([sym], day0, day0 + 10 * 86_400 * 10**9, "1w")
    assert arr.volume[0].tolist() == [6.0, 4.0]     # Tue..Sun, then Mon..Thu
    assert arr.close[0].tolist() == [5.5, 9.5]


async def test_ticks_round_trip_in_kst_millis(ts: ClickHouseTimeSeries, sym: str) -> None:
    ticks = [Tick("krx", sym, T0 + i * 10**6, T0 + i * 10**6 + 10**6, 100.0 + i, 2.0, i)
             for i in range(5)]
    assert await ts.write_ticks(ticks) == 5
    frame = await ts.read_ticks(sym, T0, T0 + 10**9)
    assert frame["ts_ns"].tolist() == [t.ts_ns for t in ticks]
    assert frame["price"].tolist() == [t.price for t in ticks]


async def test_list_series(ts: ClickHouseTimeSeries, sym: str) -> None:
    await ts.write_bars(bars(sym, 4))
    [info] = [s for s in await ts.list_series() if s.symbol == sym]
    assert (info.timeframe, info.first_ns, info.last_ns, info.rows) == ("1m", T0, T0 + 3 * MIN, 4)


async def test_bad_timeframes_are_refused(ts: ClickHouseTimeSeries, sym: str) -> None:
    with pytest.raises(StorageError, match="bad timeframe"):
        parse_timeframe("7x")
    with pytest.raises(StorageError, match="only"):
        await ts.write_bars(bars(sym, 1, tf="5m"))


async def test_second_chdb_path_is_refused(chdb_url: str, tmp_path: object) -> None:
    store = await open_timeseries(chdb_url)       # make sure the session engine is running
    await store.close()
    with pytest.raises(StorageError, match="one per process"):
        await open_timeseries(f"chdb:///{tmp_path}/other")


class ListSink:
    def __init__(self) -> None:
        self.batches: list[list[Tick]] = []

    async def write_ticks(self, ticks: list[Tick]) -> int:
        self.batches.append(list(ticks))
        return len(ticks)


async def test_tick_writer_never_blocks_and_counts_overload() -> None:
    sink, clock = ListSink(), FakeClock(T0)
    w = TickWriter(sink, clock, max_queue=5, batch_size=100, flush_interval=1.0, warn_every=1)
    results = [w.offer(Tick("krx", "A", T0 + i, T0 + i, 1.0, 1.0, i)) for i in range(8)]
    assert results == [True] * 5 + [False] * 3
    assert w.dropped == 3 and w.queued == 5
    task = asyncio.create_task(w.run())
    for _ in range(5):                         # let the writer start its flush timer
        await asyncio.sleep(0)
    assert clock.pending == 1
    await clock.run_for(1.0, step=1.0)
    assert [t.seq for t in sink.batches[0]] == [3, 4, 5, 6, 7]     # the oldest were dropped
    w.stop()
    await task
    assert w.written == 5


async def test_tick_writer_takes_batches_and_drops_the_oldest() -> None:
    sink, clock = ListSink(), FakeClock(T0)
    w = TickWriter(sink, clock, max_queue=5, batch_size=4, flush_interval=1.0, warn_every=3)
    ticks = [Tick("krx", "A", T0 + i, T0 + i, 1.0, 1.0, i) for i in range(9)]
    assert w.offer_many(ticks[:3]) == 3 and w.dropped == 0
    assert w.offer_many(ticks[3:]) == 6
    assert w.dropped == 4 and w.queued == 5
    await w.flush()
    assert [t.seq for b in sink.batches for t in b] == [4, 5, 6, 7, 8]
    assert w.offer_many([]) == 0


async def test_tick_writer_flushes_full_batches_and_on_stop() -> None:
    sink, clock = ListSink(), FakeClock(T0)
    w = TickWriter(sink, clock, max_queue=1000, batch_size=4, flush_interval=60.0)
    task = asyncio.create_task(w.run())
    await asyncio.sleep(0)
    for i in range(6):
        w.offer(Tick("krx", "A", T0 + i, T0 + i, 1.0, 1.0, i))
    for _ in range(10):
        await asyncio.sleep(0)
    assert [len(b) for b in sink.batches] == [4, 2] or [len(b) for b in sink.batches] == [6]
    w.offer(Tick("krx", "A", T0 + 9, T0 + 9, 1.0, 1.0, 9))
    w.stop()
    await task
    assert sum(len(b) for b in sink.batches) == 7


async def test_tick_writer_into_chdb(chdb_url: str, sym: str) -> None:
    store = await open_timeseries(chdb_url)
    clock = FakeClock(T0)
    w = TickWriter(store, clock, batch_size=1000, flush_interval=0.5)
    task = asyncio.create_task(w.run())
    for i in range(2500):
        w.offer(Tick("krx", sym, T0 + i * 10**6, T0 + i * 10**6, 1.0, 1.0, i))
    w.stop()
    await task
    frame = await store.read_ticks(sym, T0, T0 + 10**10)
    assert len(frame) == 2500 and w.dropped == 0
    await store.close()


async def test_bad_timeseries_urls() -> None:
    with pytest.raises(StorageError, match="timeseries store: unsupported URL"):
        await open_timeseries("influx://x")
    with pytest.raises(StorageError, match=r"timeseries store clickhouse://u:\*\*\*@127.0.0.1:1"):
        await open_timeseries("clickhouse://u:pw@127.0.0.1:1/db")


async def test_tick_writer_keeps_collector_batches_columnar() -> None:
    """Collector batches stay TickBatches through the queue: dropped from the oldest end
    and cut at batch_size mid-batch exactly like single ticks would be."""
    sink, clock = ListSink(), FakeClock(T0)
    index = {"A": 0, "B": 1}
    w = TickWriter(sink, clock, max_queue=7, batch_size=3, flush_interval=1.0)
    ticks = [Tick("krx", "AB"[i % 2], T0 + i, T0 + i, 1.0 + i, 1.0, i + 1) for i in range(10)]
    w.offer_many(TickBatch.of(ticks[:4], index))
    w.offer(ticks[4])
    w.offer_many(TickBatch.of(ticks[5:], index))
    assert w.dropped == 3 and w.queued == 7
    seen: list[Any] = []

    class Spy(ListSink):
        async def write_ticks(self, batch: list[Tick]) -> int:
            seen.append(type(batch).__name__)
            return await super().write_ticks(batch)

    w._sink = Spy()
    await w.flush()
    assert [t.seq for b in w._sink.batches for t in b] == [4, 5, 6, 7, 8, 9, 10]
    assert [len(b) for b in w._sink.batches] == [3, 3, 1]
    assert seen == ["list", "TickBatch", "TickBatch"]    # a mixed cut falls back to a list


async def test_columnar_batches_into_chdb(chdb_url: str, sym: str) -> None:
    store = await open_timeseries(chdb_url)
    ticks = [Tick("krx", sym, T0 + i * 10**6, T0 + 5, 100.0 + i, 2.0, i + 1) for i in range(50)]
    assert await store.write_ticks(TickBatch.of(ticks, {sym: 0})) == 50
    frame = await store.read_ticks(sym, T0, T0 + 10**10)
    assert frame["price"].tolist() == [t.price for t in ticks]
    assert frame["seq"].tolist() == list(range(1, 51))
    await store.close()
