"""ClickHouse SQL for the time-series port: table DDL, timeframes, and the bar queries shared
by the embedded engine and a server (the same text on both)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from jts.errors import StorageError

TZ = "Asia/Seoul"
STORED = ("1m", "1d")
BAR_FIELDS = ("open", "high", "low", "close", "volume", "value")
_TF = re.compile(r"^(\d+)(m|h|d|w|mo)$")
RESAMPLE = {"open": "argMin(open, ts)", "high": "max(high)", "low": "min(low)",
            "close": "argMax(close, ts)", "volume": "sum(volume)", "value": "sum(value)"}
# duplicates of a (timeframe, symbol, ts) key always share a partition: FINAL need not merge
# across partitions. Default block sizes (~1 MB): 16 MB blocks saved ~0.2 CPU-s of streaming
# but cost 1-4 s of wall time per 500-symbol read on the VMs — every large chunk is fresh
# memory whose page faults the hypervisor serves (docs/storage.md).
SETTINGS = " SETTINGS do_not_merge_across_partitions_select_final = 1"
TICKS_DDL = f"""CREATE TABLE IF NOT EXISTS {{db}}.ticks (
    venue LowCardinality(String), symbol LowCardinality(String),
    ts DateTime64(3, '{TZ}'), recv DateTime64(3, '{TZ}'), price Float64, volume Float64,
    seq UInt64) ENGINE = MergeTree PARTITION BY toYYYYMM(ts) ORDER BY (symbol, ts)"""
# Bars are read far more than written: ts is delta-coded (minute steps compress to almost
# nothing and decode fast); prices are stored raw — LZ4 barely shrinks float64 prices and
# decoding it was the largest cost of a bulk read (docs/storage.md, "Time series").
_RAW = "Float64 CODEC(NONE)"
BARS_DDL = f"""CREATE TABLE IF NOT EXISTS {{db}}.bars (
    symbol LowCardinality(String), timeframe LowCardinality(String),
    ts DateTime64(3, '{TZ}') CODEC(Delta, LZ4), open {_RAW}, high {_RAW}, low {_RAW},
    close {_RAW}, volume {_RAW}, value {_RAW})
    ENGINE = ReplacingMergeTree PARTITION BY (timeframe, toYear(ts))
    ORDER BY (timeframe, symbol, ts)"""


def parse_timeframe(tf: str) -> tuple[int, str]:
    m = _TF.match(tf)
    if not m or int(m.group(1)) <= 0:
        raise StorageError(f"timeseries: bad timeframe {tf!r} (use e.g. 1m, 5m, 1h, 1d, 1w, 1mo)")
    return int(m.group(1)), m.group(2)


def base_timeframe(tf: str) -> str:
    """The stored timeframe ``tf`` is read from (and resampled from when they differ)."""
    return "1d" if parse_timeframe(tf)[1] in ("d", "w", "mo") else "1m"


def bars_sql(db: str, symbols: Sequence[str], start_ns: int, end_ns: int, tf: str, *,
             fields: Sequence[str] = BAR_FIELDS, row_index: bool = False,
             float32: bool = False, ordered: bool = True, times_only: bool = False) -> str:
    """SQL for bars (the same text on both backends).

    ``row_index``: the first column is the symbol's position in ``symbols`` (a hash lookup
    on the symbol dictionary: far cheaper to move than 10⁷ strings). ``ordered`` sorts by
    (symbol, time); the aligned read does not need it and skips the ordered merge.
    ``times_only``: just the bar time of every row (the first pass of an aligned read;
    no FINAL needed — a replaced bar has the same time)."""
    n, unit = parse_timeframe(tf)
    names = ", ".join(quote(s) for s in symbols)
    base = base_timeframe(tf)
    where = (f"timeframe = '{base}' AND symbol IN ({names}) "
             f"AND ts >= fromUnixTimestamp64Milli({start_ns // 1_000_000}) "
             f"AND ts < fromUnixTimestamp64Milli({-(-end_ns // 1_000_000)})")
    if tf == base:
        t = "toUnixTimestamp64Milli(ts)"
    else:
        interval = {"m": "MINUTE", "h": "HOUR", "d": "DAY", "w": "WEEK", "mo": "MONTH"}[unit]
        bucket = (f"toStartOfInterval(ts, INTERVAL {n} {interval}, '{TZ}')" if unit != "w"
                  else f"toStartOfWeek(ts, 1, '{TZ}')")
        t = f"toUnixTimestamp64Milli(toDateTime64({bucket}, 3, '{TZ}'))"
    if times_only:
        return f"SELECT {t} AS t FROM {db}.bars WHERE {where}"
    key = (f"CAST(transform(symbol, [{names}], CAST(range({len(symbols)}) AS Array(UInt32)),"
           f" toUInt32({len(symbols)})) AS UInt32)" if row_index else "symbol")
    order = " ORDER BY symbol, t" if ordered else ""
    cast = "toFloat32({})" if float32 else "{}"
    if tf == base:
        cols = ", ".join(cast.format(f) for f in fields)
        return (f"SELECT {key} AS k, {t} AS t, {cols} FROM {db}.bars FINAL "
                f"WHERE {where}{order}{SETTINGS}")
    cols = ", ".join(cast.format(RESAMPLE[f]) for f in fields)
    return (f"SELECT {key} AS k, {t} AS t, {cols} FROM {db}.bars FINAL "
            f"WHERE {where} GROUP BY symbol, t{order}{SETTINGS}")


def estimate_bytes(n_symbols: int, start_ns: int, end_ns: int, timeframe: str, n_fields: int,
                    dtype: np.dtype[Any]) -> int:
    """An upper bound of a read's output size (every step of the range present)."""
    n, unit = parse_timeframe(timeframe)
    step = n * {"m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400, "mo": 28 * 86_400}[unit]
    times = max(0, -(-(end_ns - start_ns) // (step * 10**9)))
    return n_symbols * times * n_fields * dtype.itemsize


def years_touched(start_ns: int, end_ns: int) -> range:
    """The calendar years (partition keys) a [start, end) read may touch, a day's margin
    either side (partitions are by KST year)."""
    def year(ns: int) -> int:
        sec = min(max(ns // 10**9, -62_000_000_000), 253_000_000_000)
        return datetime.fromtimestamp(sec, UTC).year
    day = 86_400 * 10**9
    return range(year(start_ns - day), year(end_ns + day) + 1)


def quote(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"
