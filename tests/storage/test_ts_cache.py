"""The on-disk cache of aligned bar reads: entries round-trip exactly, callers cannot change
them, damaged entries are dropped, eviction keeps the size bound, and through the store any
write, mutation or replaced bar in the partitions a read touches makes the next read miss."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from jts.storage.timeseries import ClickHouseTimeSeries, open_timeseries
from jts.storage.ts_cache import ArrayCache, cache_key, parts_version
from jts.types import Bar

MIN = 60 * 10**9
T0 = 1_704_153_600 * 10**9          # 2024-01-02 09:00 KST
REMOTE = os.environ.get("JTS_TEST_CLICKHOUSE_URL")
BACKENDS = ["chdb"] + (["clickhouse"] if REMOTE else [])
F64 = np.dtype(np.float64)


def fill(cache: ArrayCache, key: str, n_rows: int = 3, n_times: int = 5,
         fields: tuple[str, ...] = ("open", "close")) -> dict[str, np.ndarray]:
    ts_ns = T0 + np.arange(n_times, dtype=np.int64) * MIN
    draft = cache.create(key, ts_ns, n_rows, fields, F64)
    assert draft is not None
    for i, m in enumerate(draft.columns.values()):
        m[...] = np.arange(n_rows * n_times).reshape(n_rows, n_times) + 100 * i
    m[1, 2] = np.nan
    out = draft.finish(keep=True)
    assert cache.wait(timeout=60)
    return out


@pytest.fixture(params=["staged", "direct"])
def stage(request: pytest.FixtureRequest, tmp_path: Path) -> Path | None:
    """A miss filled in a staging directory (RAM-backed in production) then copied to the
    cache, or filled in the cache directory itself."""
    if request.param == "direct":
        return None
    path = tmp_path / "stage"
    path.mkdir()
    return path


def test_an_entry_round_trips_exactly_and_callers_cannot_change_it(
        tmp_path: Path, stage: Path | None) -> None:
    cache = ArrayCache(tmp_path / "c", max_bytes=1 << 30, min_bytes=0, stage=stage)
    assert cache.stage == stage
    first = fill(cache, "k1")
    assert stage is None or list(stage.iterdir()) == []     # staging file gone once published
    assert first["open"][2, 4] == 14.0       # the caller's view outlives the staging file
    first["close"][0, 0] = -5.0              # the caller's copy-on-write page only
    hit = cache.get("k1")
    assert hit is not None and cache.hits == 1
    ts_ns, cols = hit
    assert ts_ns.tolist() == (T0 + np.arange(5) * MIN).tolist()
    assert list(cols) == ["open", "close"] and cols["close"].shape == (3, 5)
    assert cols["open"].tolist() == np.arange(15.0).reshape(3, 5).tolist()
    assert cols["close"][0, 0] == 100.0 and np.isnan(cols["close"][1, 2])
    cols["open"][:] = 0.0
    again = cache.get("k1")
    assert again is not None and again[1]["open"][2, 4] == 14.0
    assert cache.get("other") is None and cache.misses == 1


def test_a_discarded_or_unkept_draft_leaves_nothing(tmp_path: Path, stage: Path | None) -> None:
    where = tmp_path / "c"
    cache = ArrayCache(where, max_bytes=1 << 30, min_bytes=0, stage=stage)
    draft = cache.create("gone", np.arange(4, dtype=np.int64), 2, ["close"], F64)
    assert draft is not None
    draft.columns["close"][...] = 1.0
    out = draft.finish(keep=False)
    assert out["close"].tolist() == [[1.0] * 4] * 2
    other = cache.create("gone2", np.arange(4, dtype=np.int64), 2, ["close"], F64)
    assert other is not None
    other.discard()
    assert list(where.iterdir()) == [] and cache.get("gone") is None
    assert stage is None or list(stage.iterdir()) == []


def test_too_small_or_too_large_results_are_not_cached(tmp_path: Path) -> None:
    cache = ArrayCache(tmp_path, max_bytes=64 << 10, min_bytes=1024)
    t = np.arange(10, dtype=np.int64)
    assert cache.create("small", t, 1, ["close"], F64) is None          # 80 bytes
    assert cache.create("large", t, 1000, ["close"], F64) is None       # over 64 KiB


@pytest.mark.parametrize("damage", ["magic", "truncate", "key"])
def test_a_damaged_entry_is_dropped_and_missed(tmp_path: Path, damage: str) -> None:
    cache = ArrayCache(tmp_path, max_bytes=1 << 30, min_bytes=0)
    fill(cache, "dmg")
    (path,) = tmp_path.glob("*.bars")
    data = bytearray(path.read_bytes())
    if damage == "magic":
        data[:8] = b"XXXXXXXX"
    elif damage == "truncate":
        data = data[:-4096]
    else:
        data = data.replace(b'"key": "dmg"', b'"key": "dmx"')
    path.write_bytes(bytes(data))
    assert cache.get("dmg") is None
    assert not path.exists()


def test_eviction_keeps_the_bound_dropping_the_least_recently_used(tmp_path: Path) -> None:
    one = 4096 * 2 + 3 * 5 * 8 * 2 + 4096 * 2      # header, ts page, two padded matrices
    cache = ArrayCache(tmp_path, max_bytes=3 * one, min_bytes=0)
    for key in ("a", "b", "c"):
        fill(cache, key)
    os.utime(tmp_path / "b.bars", (1, 1))
    os.utime(tmp_path / "c.bars", (2, 2))
    assert cache.get("b") is not None              # used: now the newest
    fill(cache, "d")
    assert sorted(p.name for p in tmp_path.glob("*.bars")) == ["a.bars", "b.bars", "d.bars"]


def test_temporary_files_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stage = tmp_path / "stage"
    stage.mkdir()
    pid = dead.stdout.strip()
    stale = [tmp_path / f"k.{pid}.1.tmp", stage / f"jts-bars-k.{pid}.1.tmp"]
    mine = [tmp_path / f"k.{os.getpid()}.1.tmp", stage / f"jts-bars-k.{os.getpid()}.1.tmp"]
    other = stage / f"someone-else.{pid}.1.tmp"         # not ours: left alone
    for path in (*stale, *mine, other):
        path.write_bytes(b"x")
    ArrayCache(tmp_path, max_bytes=1 << 30, stage=stage)
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in mine) and other.exists()


def test_data_version_counts_only_the_partitions_read() -> None:
    rows = [("('1m',2024)", "p_a"), ("('1m',2023)", "p_b"), ("('1d',2024)", "p_c"),
            ("weird", "p_d"), ("('1m',2025)", "p_e")]
    assert parts_version(rows, "1m", range(2024, 2025)) == ["p_a", "p_d"]
    assert parts_version(rows, "1d", range(2023, 2026)) == ["p_c", "p_d"]
    assert cache_key(["x", 1]) != cache_key(["x", 2]) and cache_key([1]) == cache_key([1])


# ---- through the store ---------------------------------------------------------------------
def with_query(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


@pytest.fixture(params=BACKENDS)
async def cached(request: pytest.FixtureRequest, chdb_url: str,
                 tmp_path: Path) -> AsyncIterator[ClickHouseTimeSeries]:
    base = chdb_url if request.param == "chdb" else str(REMOTE)
    store = await open_timeseries(with_query(base, f"cache={tmp_path}&cache_gb=1"))
    assert store.cache is not None
    store.cache.min_bytes = 0                      # cache even these tiny reads
    yield store
    await store.close()


def bars(symbol: str, n: int, price: float = 10.0, tf: str = "1m", t0: int = T0) -> list[Bar]:
    step = MIN if tf == "1m" else 1440 * MIN
    return [Bar(symbol, tf, t0 + i * step, price + i, price + i + 1, price + i - 1,
                price + i + 0.5, 100.0, 1000.0) for i in range(n)]


async def read(store: ClickHouseTimeSeries, syms: list[str], n: int = 10) -> np.ndarray:
    arr = await store.read_bars(syms, T0, T0 + n * MIN)
    assert store.cache is not None and store.cache.wait(timeout=60)
    return arr.close


async def test_a_repeated_read_is_a_hit_with_the_same_values(cached: ClickHouseTimeSeries,
                                                             sym: str) -> None:
    cache = cached.cache
    assert cache is not None
    await cached.write_bars(bars(sym + "A", 10) + bars(sym + "B", 8))
    first = await read(cached, [sym + "A", sym + "B"])
    assert cache.misses == 1 and cache.hits == 0
    second = await read(cached, [sym + "A", sym + "B"])
    assert cache.hits == 1
    assert np.array_equal(first, second, equal_nan=True)
    assert np.isnan(second[1, 8:]).all() and second[0, 9] == 19.5
    await read(cached, [sym + "B", sym + "A"])          # another query: another entry
    assert cache.misses == 2


async def test_writes_in_the_partitions_read_invalidate(cached: ClickHouseTimeSeries,
                                                        sym: str) -> None:
    cache = cached.cache
    assert cache is not None
    await cached.write_bars(bars(sym, 10))
    await read(cached, [sym])
    await cached.write_bars(bars(sym + "X", 3, tf="1d"))             # another timeframe
    await cached.write_bars(bars(sym, 3, t0=T0 - 400 * 1440 * MIN))  # another year
    await read(cached, [sym])
    assert cache.hits == 1
    await cached.write_bars(bars(sym, 1, price=50.0))               # replaces the first bar
    close = await read(cached, [sym])
    assert cache.hits == 1 and close[0, 0] == 50.5 and close[0, 1] == 11.5
    await cached.write_bars(bars(sym + "Z", 1))                     # any write counts
    await read(cached, [sym])
    assert cache.hits == 1


async def test_a_mutation_invalidates(cached: ClickHouseTimeSeries, sym: str) -> None:
    await cached.write_bars(bars(sym, 10))
    await read(cached, [sym])
    cached._client.command(f"ALTER TABLE {cached.db}.bars DELETE WHERE symbol = '{sym}' "
                           "AND ts >= fromUnixTimestamp64Milli("
                           f"{(T0 + 5 * MIN) // 10**6}) SETTINGS mutations_sync = 2")
    close = await read(cached, [sym])
    assert cached.cache is not None and cached.cache.hits == 0
    assert close[0, 4] == 14.5 and np.isnan(close[0, 5:]).all()


async def test_cache_is_configured_by_url(chdb_url: str, tmp_path: Path) -> None:
    off = await open_timeseries(with_query(chdb_url, "cache=off"))
    assert off.cache is None
    default = await open_timeseries(chdb_url)
    assert default.cache is not None and default.cache.max_bytes == 8 << 30
    assert default.cache.directory.name == "jts_cache"
    sized = await open_timeseries(with_query(chdb_url, f"cache={tmp_path}&cache_gb=0.5"))
    assert sized.cache is not None and sized.cache.max_bytes == 1 << 29
    for store in (off, default, sized):
        await store.close()
