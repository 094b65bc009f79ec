"""The time-series port: ticks and bars in ClickHouse SQL, embedded (``chdb:///dir``, the real
ClickHouse engine in-process) or on a server (``clickhouse://host:8123/db``), both driven by
clickhouse-connect's synchronous client — except bulk bar reads on the embedded engine, which
stream Native blocks through chdb's own API (same SQL text; see :meth:`_blocks`).

Calls run on one dedicated worker thread (chdb has no async client); the event loop never
waits on ClickHouse. Aligned reads of many symbols split them into groups read in parallel
on reader threads, each with its own chdb handle. chdb allows one engine per process, so
clients are shared per path and a second, different path is refused.

Reads return :class:`BarArrays` — (symbols × time) matrices on the union of bar times, NaN
where a symbol has no bar, float64 or float32, all fields or a chosen few (alignment in
:mod:`jts.storage.ts_align`) — or a long DataFrame. Stored timeframes are ``1m`` and
``1d``; ``Nm``/``Nh`` are resampled from ``1m`` and ``1w``/``1mo`` from ``1d`` in SQL (KST
boundaries).
"""
from __future__ import annotations

import asyncio
import itertools
import os
import threading
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import numpy as np
import numpy.typing as npt
import pandas as pd
import structlog

from jts.errors import StorageError
from jts.storage.ts_align import AxisMiss, BarArrays, FloatArray, TimeAxis, align, allocate
from jts.storage.ts_cache import ArrayCache, Draft, cache_key, parts_version
from jts.storage.ts_native import native_blocks
from jts.storage.ts_sql import (
    BAR_FIELDS,
    BARS_DDL,
    STORED,
    TICKS_DDL,
    TZ,
    bars_sql,
    base_timeframe,
    estimate_bytes,
    parse_timeframe,
    quote,
    years_touched,
)
from jts.storage.urls import file_path, redact, scheme_of
from jts.tick_batch import TickBatch
from jts.types import Bar, Tick

__all__ = ["BAR_FIELDS", "TZ", "BarArrays", "ClickHouseTimeSeries", "SeriesInfo",
           "open_timeseries", "parse_timeframe"]
log = structlog.get_logger(__name__)
T = TypeVar("T")
# parallel per-symbol-group readers on the embedded engine (each streams and aligns its own
# rows on its own core); a server parallelizes one query itself
READERS = max(1, min(2, os.cpu_count() or 1))
MIN_GROUP = 16                    # symbols per reader before splitting pays
_CHDB: dict[str, _Engine] = {}
_CHDB_LOCK = threading.Lock()
BACKGROUND_NICE = 10


def background_priority() -> None:
    """Lower the calling thread's CPU priority (Linux: per thread, inherited by the threads
    it starts): storage work yields a contended core to the event loop's thread."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
    except (AttributeError, OSError):        # not Linux, or not allowed: run as is
        pass


@dataclass(frozen=True)
class SeriesInfo:
    symbol: str
    timeframe: str
    first_ns: int
    last_ns: int
    rows: int


@dataclass
class _Engine:
    """The process's embedded engine: the clickhouse-connect client (writes, small reads) and
    native chdb handles for streaming bulk reads (Native blocks decoded in place), one per
    parallel reader; each handle has its lock (a query on a handle with an open stream
    silently returns nothing)."""

    client: Any
    handles: list[tuple[Any, threading.Lock]]


def _chdb_engine(url: str) -> _Engine:
    import chdb
    import clickhouse_connect
    path = str(file_path(url, "timeseries").resolve())
    with _CHDB_LOCK:
        if path in _CHDB:
            return _CHDB[path]
        if _CHDB:
            raise StorageError(f"timeseries store {url}: this process already runs the embedded "
                               f"ClickHouse engine on {next(iter(_CHDB))} (one per process)")
        try:
            client = clickhouse_connect.get_client(dsn=f"chdb://{path}")
            handles = [(chdb.connect(path), threading.Lock())  # type: ignore[no-untyped-call]
                       for _ in range(READERS)]
        except Exception as exc:
            raise StorageError(f"timeseries store {url}: cannot start the embedded engine: "
                               f"{type(exc).__name__}: {exc}") from None
        engine = _CHDB[path] = _Engine(client, handles)
        return engine


class ClickHouseTimeSeries:
    """Time series on ClickHouse (embedded chdb or a server)."""

    def __init__(self, url: str, client: Any, database: str,
                 engine: _Engine | None = None, cache: ArrayCache | None = None) -> None:
        self.url = url
        self._client = client
        self._engine = engine
        self.db = database
        self.cache = cache
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="jts-tsdb",
                                        initializer=background_priority)
        self._readers = ThreadPoolExecutor(READERS, thread_name_prefix="jts-tsread",
                                           initializer=background_priority)

    @classmethod
    async def open(cls, url: str) -> ClickHouseTimeSeries:
        scheme = scheme_of(url, "timeseries", ("chdb", "clickhouse", "clickhouses"))
        loop = asyncio.get_running_loop()
        engine = None
        if scheme == "chdb":
            # started from a background-priority thread: the engine's own pools (inserts,
            # merges) inherit it, so they never take a core from the event loop's thread
            with ThreadPoolExecutor(1, initializer=background_priority) as starter:
                engine = await loop.run_in_executor(starter, _chdb_engine, url)
            client, db = engine.client, "jts"
        else:
            import clickhouse_connect
            parts = urlsplit(url)
            db = parts.path.strip("/") or "default"
            try:
                client = await loop.run_in_executor(None, lambda: clickhouse_connect.get_client(
                    host=parts.hostname or "localhost", port=parts.port or 8123,
                    username=parts.username or "default", password=parts.password or "",
                    secure=scheme == "clickhouses", connect_timeout=5))
            except Exception as exc:
                raise StorageError(f"timeseries store {redact(url)}: cannot connect: "
                                   f"{type(exc).__name__}: {exc}") from None
        ts = cls(url, client, db, engine, _array_cache(url, scheme))
        await ts.migrate()
        log.info("timeseries_opened", url=redact(url), database=db)
        return ts

    async def _run(self, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn)
        except StorageError:
            raise
        except Exception as exc:
            raise StorageError(f"timeseries store {redact(self.url)}: "
                               f"{type(exc).__name__}: {exc}") from exc

    async def migrate(self) -> None:
        def run() -> None:
            self._client.command(f"CREATE DATABASE IF NOT EXISTS {self.db}")
            self._client.command(TICKS_DDL.format(db=self.db))
            self._client.command(BARS_DDL.format(db=self.db))
        await self._run(run)

    async def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._readers.shutdown(wait=True)

    # ---- writes -------------------------------------------------------------------------
    async def write_ticks(self, ticks: Sequence[Tick]) -> int:
        if not ticks:
            return 0
        if isinstance(ticks, TickBatch):      # columns → Arrow: no per-tick Python at all
            await self._run(lambda: self._client.insert_arrow(
                f"{self.db}.ticks", _arrow_ticks(ticks), settings=_ONE_THREAD))
            return len(ticks)

        def frame() -> pd.DataFrame:    # in the writer thread, off the loop
            return pd.DataFrame({
                "venue": [t.venue for t in ticks], "symbol": [t.symbol for t in ticks],
                "ts": _to_dt([t.ts_ns for t in ticks]),
                "recv": _to_dt([t.recv_ns for t in ticks]),
                "price": np.fromiter((t.price for t in ticks), np.float64, len(ticks)),
                "volume": np.fromiter((t.volume for t in ticks), np.float64, len(ticks)),
                "seq": np.fromiter((t.seq for t in ticks), np.uint64, len(ticks))})
        await self._run(lambda: self._client.insert_df(f"{self.db}.ticks", frame()))
        return len(ticks)

    async def write_ticks_df(self, frame: pd.DataFrame) -> int:
        await self._run(lambda: self._client.insert_df(f"{self.db}.ticks", frame))
        return len(frame)

    async def write_bars(self, bars: Sequence[Bar] | pd.DataFrame) -> int:
        """Insert bars (Bar structs, or a frame with symbol, timeframe, ts_ns|ts and fields).
        Re-writing a (symbol, timeframe, ts) replaces the earlier bar."""
        if isinstance(bars, pd.DataFrame):
            frame = bars.copy()
            if "ts_ns" in frame:
                frame["ts"] = _to_dt(frame.pop("ts_ns").to_numpy(np.int64))
        else:
            if not bars:
                return 0
            frame = pd.DataFrame({"symbol": [b.symbol for b in bars],
                                  "timeframe": [b.timeframe for b in bars],
                                  "ts": _to_dt([b.ts_ns for b in bars]),
                                  **{f: [getattr(b, f) for b in bars] for f in BAR_FIELDS}})
        for tf in frame["timeframe"].unique():
            if tf not in STORED:
                raise StorageError(f"timeseries: only {STORED} bars are stored, got {tf!r}")
        frame = frame[["symbol", "timeframe", "ts", *BAR_FIELDS]]
        await self._run(lambda: self._client.insert_df(f"{self.db}.bars", frame))
        return len(frame)

    # ---- reads --------------------------------------------------------------------------
    def _blocks(self, sql: str, reader: int = 0) -> Generator[list[npt.NDArray[Any]], None, None]:
        """The result of ``sql`` as column arrays, block by block as the engine produces them
        (worker threads only). Embedded: chdb's streaming API in Native format on handle
        ``reader``, decoded in place; server: clickhouse-connect's Arrow stream. The consumer
        drops a block before the next arrives, so memory stays at a few blocks."""
        engine = self._engine
        if engine is None:
            with self._client.query_arrow_stream(sql) as stream:
                for batch in stream:
                    yield [c.to_numpy(zero_copy_only=False) for c in batch.columns]
            return
        handle, lock = engine.handles[reader]
        with lock:
            result = handle.send_query(sql, "Native")
            try:
                for chunk in result:
                    yield from native_blocks(chunk.get_memview().view())
            finally:
                result.close()

    async def read_bars_df(self, symbols: Sequence[str], start_ns: int, end_ns: int,
                           timeframe: str = "1m") -> pd.DataFrame:
        """Long frame: symbol, ts_ns, open, high, low, close, volume, value (sorted)."""
        sql = bars_sql(self.db, symbols, start_ns, end_ns, timeframe)
        table = await self._run(lambda: self._client.query_arrow(sql))
        cols = [_np(c) for c in table.columns]
        return pd.DataFrame({"symbol": cols[0].astype(str),
                             "ts_ns": cols[1].astype(np.int64) * 1_000_000,
                             **{f: cols[i + 2].astype(np.float64)
                                for i, f in enumerate(BAR_FIELDS)}})

    async def read_bars(self, symbols: Sequence[str], start_ns: int, end_ns: int,
                        timeframe: str = "1m", *, fields: Sequence[str] = BAR_FIELDS,
                        dtype: type[np.float32] | type[np.float64] = np.float64) -> BarArrays:
        """Bars in [start_ns, end_ns) aligned as (symbols × time) matrices; row i is
        ``symbols[i]`` (in the order given), NaN where that symbol has no bar.

        ``fields`` picks the matrices to load (others raise on access) and ``dtype=np.float32``
        halves transfer and memory: 500 symbol-years of 1m bars are 0.39 GB per float64 field
        (2.3 GB for all six), 0.19 GB per float32 field."""
        symbols = list(dict.fromkeys(symbols))
        fields = list(dict.fromkeys(fields))
        bad = [f for f in fields if f not in BAR_FIELDS]
        if bad or not fields:
            raise StorageError(f"timeseries: unknown bar fields {bad} (choose from {BAR_FIELDS})")
        if dtype not in (np.float32, np.float64):
            raise StorageError(f"timeseries: dtype must be numpy float32 or float64, not {dtype}")
        parse_timeframe(timeframe)
        if not symbols:
            return BarArrays([], timeframe, np.empty(0, np.int64),
                             {f: np.empty((0, 0), dtype) for f in fields})
        readers = len(self._engine.handles) if self._engine else 1
        n_groups = max(1, min(readers, len(symbols) // MIN_GROUP))
        cuts = [len(symbols) * g // n_groups for g in range(n_groups + 1)]
        groups = [symbols[a:b] for a, b in itertools.pairwise(cuts)]
        times_sqls = [bars_sql(self.db, g, start_ns, end_ns, timeframe, times_only=True)
                      for g in groups]
        sqls = [bars_sql(self.db, g, start_ns, end_ns, timeframe, fields=fields, row_index=True,
                               float32=dtype is np.float32, ordered=False) for g in groups]

        def axis_part(g: int) -> TimeAxis:
            axis = TimeAxis()
            with closing(self._blocks(times_sqls[g], g)) as blocks:
                for cols in blocks:
                    axis.add(cols[0])
            return axis

        def data_part(g: int, *, axis: TimeAxis, out: dict[str, FloatArray]) -> None:
            rows = {f: m[cuts[g]:cuts[g + 1]] for f, m in out.items()}
            with closing(self._blocks(sqls[g], g)) as blocks:
                align(blocks, axis, rows)

        query_key = None
        if self.cache is not None and self.cache.min_bytes <= estimate_bytes(
                len(symbols), start_ns, end_ns, timeframe, len(fields), np.dtype(dtype)):
            query_key = [self._identity, symbols, start_ns, end_ns, timeframe, fields,
                         np.dtype(dtype).str]

        def run() -> BarArrays:
            key, version = None, None
            if query_key is not None and self.cache is not None:
                version = self._data_version(start_ns, end_ns, timeframe)
                key = cache_key([*query_key, version])
                hit = self.cache.get(key)
                if hit is not None:
                    return BarArrays(symbols, timeframe, hit[0], hit[1])
            for _ in range(3):
                axes = self._on_readers(n_groups, axis_part)
                axis = axes[0]
                for other in axes[1:]:
                    axis.merge(other)
                times = axis.finish()
                draft = (self.cache.create(key, times * 1_000_000, len(symbols), fields,
                                           np.dtype(dtype)) if key and self.cache else None)
                try:
                    out = draft.columns if draft else allocate(len(symbols), len(times), fields,
                                                               dtype)
                    self._on_readers(n_groups, partial(data_part, axis=axis, out=out))
                except AxisMiss:        # bars were written between the two passes: again
                    _discard(draft)
                    continue
                except BaseException:
                    _discard(draft)
                    raise
                if draft:
                    del out
                    same = self._data_version(start_ns, end_ns, timeframe) == version
                    out = draft.finish(keep=same)
                return BarArrays(symbols, timeframe, times * 1_000_000, out)
            raise StorageError("timeseries: bars kept changing while being read (3 attempts)")
        return await self._run(run)

    @property
    def _identity(self) -> str:
        """The store a cache entry belongs to (engine path or server and database)."""
        if self._engine is not None:
            return f"chdb:{file_path(self.url, 'timeseries').resolve()}/{self.db}"
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}:{parts.port}/{self.db}"

    def _data_version(self, start_ns: int, end_ns: int, timeframe: str) -> list[Any]:
        """Table identity and the active parts of the partitions a read touches (worker
        thread). Any write, mutation or dropped part changes it."""
        uuid = self._client.query(f"SELECT toString(uuid) FROM system.tables WHERE database = "
                                  f"{quote(self.db)} AND name = 'bars'").result_rows
        rows = self._client.query(f"SELECT partition, name FROM system.parts WHERE database = "
                                  f"{quote(self.db)} AND table = 'bars' AND active").result_rows
        return [uuid, parts_version(rows, base_timeframe(timeframe),
                                    years_touched(start_ns, end_ns))]

    def _on_readers(self, n: int, fn: Callable[[int], T]) -> list[T]:
        """``fn(0)`` here and ``fn(1..n-1)`` on the reader threads; all finish before any
        error propagates."""
        others = [self._readers.submit(fn, g) for g in range(1, n)]
        try:
            first = fn(0)
        finally:
            for fut in others:
                fut.exception()
        return [first, *(fut.result() for fut in others)]

    async def read_ticks(self, symbol: str, start_ns: int, end_ns: int) -> pd.DataFrame:
        sql = (f"SELECT venue, symbol, toUnixTimestamp64Milli(ts) AS t, "
               f"toUnixTimestamp64Milli(recv) AS r, price, volume, seq FROM {self.db}.ticks "
               f"WHERE symbol = {quote(symbol)} AND ts >= fromUnixTimestamp64Milli("
               f"{start_ns // 1_000_000}) AND ts < fromUnixTimestamp64Milli({-(-end_ns // 10**6)})"
               " ORDER BY ts, seq")
        frame: pd.DataFrame = await self._run(lambda: self._client.query_df(sql))
        frame["t"] = frame["t"].astype(np.int64) * 1_000_000
        frame["r"] = frame["r"].astype(np.int64) * 1_000_000
        return frame.rename(columns={"t": "ts_ns", "r": "recv_ns"})

    async def list_series(self) -> list[SeriesInfo]:
        sql = (f"SELECT symbol, timeframe, toUnixTimestamp64Milli(min(ts)), "
               f"toUnixTimestamp64Milli(max(ts)), count() FROM {self.db}.bars FINAL "
               "GROUP BY symbol, timeframe ORDER BY symbol, timeframe")
        rows = await self._run(lambda: self._client.query(sql).result_rows)
        return [SeriesInfo(r[0], r[1], int(r[2]) * 1_000_000, int(r[3]) * 1_000_000, int(r[4]))
                for r in rows]


def _discard(draft: Draft | None) -> None:
    if draft is not None:
        draft.discard()


def _array_cache(url: str, scheme: str) -> ArrayCache | None:
    """The URL's read cache: ``?cache=DIR|off`` and ``cache_gb=N`` (default 8). On by default
    for the embedded store (``DIR/jts_cache``); a server store caches only with ``cache=``."""
    query = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
    where = query.get("cache", "")
    if where.lower() in ("off", "0", "false", "no") or (not where and scheme != "chdb"):
        return None
    try:
        max_bytes = int(float(query.get("cache_gb", "8")) * (1 << 30))
        directory = (Path(where) if where
                     else file_path(url, "timeseries").resolve() / "jts_cache")
        return ArrayCache(directory, max_bytes) if max_bytes > 0 else None
    except (ValueError, OSError) as exc:
        raise StorageError(f"timeseries store {redact(url)}: bad read cache: {exc}") from None


def _np(column: Any) -> npt.NDArray[Any]:
    import pyarrow as pa
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        column = column.cast(pa.string())
    return column.to_numpy(zero_copy_only=False)  # type: ignore[no-any-return]


# an insert that may take every core stalls the event loop's own thread on a small machine
_ONE_THREAD = {"max_threads": 1, "max_insert_threads": 1}


def _arrow_ticks(b: TickBatch) -> Any:
    """A columnar batch as an Arrow table of the ticks table's columns: venue and symbol
    dictionary-encoded over the symbol table (LowCardinality on arrival), times in ms."""
    import pyarrow as pa

    venues, vidx, symbols, sidx = b.table.dictionaries()
    row = b.row
    stamp = pa.timestamp("ms", tz=TZ)
    return pa.table({
        "venue": pa.DictionaryArray.from_arrays(pa.array(vidx[row].astype(np.int32)),
                                                pa.array(venues, pa.string())),
        "symbol": pa.DictionaryArray.from_arrays(pa.array(sidx[row].astype(np.int32)),
                                                 pa.array(symbols, pa.string())),
        "ts": pa.array(b.ts // 1_000_000, stamp), "recv": pa.array(b.recv // 1_000_000, stamp),
        "price": pa.array(b.px), "volume": pa.array(b.vol),
        "seq": pa.array(b.seq.astype(np.uint64))})


def _to_dt(ns: Sequence[int] | npt.NDArray[np.int64]) -> pd.DatetimeIndex:
    return pd.to_datetime(np.asarray(ns, dtype=np.int64), unit="ns", utc=True).tz_convert(TZ)


async def open_timeseries(url: str) -> ClickHouseTimeSeries:
    """Open the time-series store named by ``url`` (creates its tables if missing)."""
    return await ClickHouseTimeSeries.open(url)
