"""Storage benchmarks: ledger fills/s (SQLite, PostgreSQL; durable, group-committed), tick
rows/s into the embedded ClickHouse engine, and seconds to load a year of 1-minute bars for
100 and 500 symbols into (symbols × time) arrays. Prints a markdown table.

Bar loads are timed ``--repeat`` times in one process, for all six fields as float64 and for
close only as float32: uncached (the store itself; the first read — numba kernels loaded from
their cache, nothing warm — and the median), then through the read cache (the miss that fills
it, hits, and hits plus a first pass over every matrix). Each uncached read also reports the
process's CPU seconds (user + system, every thread): on the shared 2-core VMs wall time
swings 2× with the other tenants' load, CPU time much less.

    .venv/bin/python bench/bench_storage.py [--pg postgresql://postgres@127.0.0.1/test]
        [--symbols 100,500] [--repeat 5] [--only bars|ticks|ledger]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jts.storage.ledger import open_ledger
from jts.storage.timeseries import TZ, BarArrays, ClickHouseTimeSeries, open_timeseries
from jts.types import Fill, Side, Tick

T0 = 1_704_153_600 * 10**9
rows: list[tuple[str, str, str]] = []


def fills(n: int) -> list[Fill]:
    return [Fill("paper", "a1", f"t{i}", f"c{i % 50}", f"S{i % 20:03d}",
                 Side.BUY if i % 3 else Side.SELL, Decimal(1 + i % 5), Decimal(1000 + i % 17),
                 Decimal("1.5"), Decimal(0), T0 + i) for i in range(n)]


async def bench_ledger(url: str, label: str, n: int, batch: int) -> None:
    led = await open_ledger(url, auto_migrate=True)
    await led.set_cash("paper", "a1", Decimal(10**9))
    fs = fills(n)
    t = time.perf_counter()
    for i in range(0, n, batch):          # a consumer draining the fills channel in batches
        await led.apply_fills([(f, None) for f in fs[i:i + batch]])
    dt = time.perf_counter() - t
    rows.append((f"ledger fills/s, {label}, apply_fills batch {batch}", f"{n / dt:,.0f}",
                 f"{n} fills, durable commit per batch"))
    fs2 = [Fill(f.broker, f.account, "g" + f.trade_id, f.client_order_id, f.symbol, f.side,
                f.quantity, f.price, f.commission, f.tax, f.ts_ns) for f in fs[:n // 2]]
    t = time.perf_counter()
    await asyncio.gather(*(led.apply_fill(f) for f in fs2))
    dt = time.perf_counter() - t
    rows.append((f"ledger fills/s, {label}, concurrent apply_fill (group commit)",
                 f"{len(fs2) / dt:,.0f}", f"{len(fs2)} fills"))
    report = await led.verify()
    assert report.ok, report.problems
    await led.close()


async def bench_ticks(ts_url: str, n: int) -> None:
    ts = await open_timeseries(ts_url)
    frame = pd.DataFrame({
        "venue": "krx", "symbol": np.array([f"S{i:04d}" for i in range(1000)])[np.arange(n) % 1000],
        "ts": pd.to_datetime(T0 + np.arange(n) * 1_000_000, unit="ns", utc=True).tz_convert(TZ),
        "recv": pd.to_datetime(T0 + np.arange(n) * 1_000_000, unit="ns", utc=True).tz_convert(TZ),
        "price": np.random.default_rng(1).random(n) * 1e5, "volume": 1.0,
        "seq": np.arange(n, dtype=np.uint64)})
    t = time.perf_counter()
    await ts.write_ticks_df(frame)
    dt = time.perf_counter() - t
    rows.append(("tick rows/s into chdb (write_ticks_df)", f"{n / dt:,.0f}", f"{n:,} rows"))
    ticks = [Tick("krx", f"S{i % 1000:04d}", T0 + i * 10**6, T0 + i * 10**6 + 5,
                  100.0 + i % 7, 1.0, i) for i in range(n // 4)]
    t = time.perf_counter()
    for i in range(0, len(ticks), 50_000):      # TickWriter's default batch
        await ts.write_ticks(ticks[i:i + 50_000])
    dt = time.perf_counter() - t
    rows.append(("tick rows/s into chdb (write_ticks, Tick structs, 50k batches)",
                 f"{len(ticks) / dt:,.0f}", f"{len(ticks):,} rows"))
    await ts.close()


def krx_minutes(days: int) -> np.ndarray:
    day = np.arange(days) * 86_400 * 10**9
    minute = np.arange(390) * 60 * 10**9
    return (T0 + day[:, None] + minute[None, :]).ravel()


async def write_bench_bars(ts: ClickHouseTimeSeries, n_symbols: int, times: np.ndarray) -> None:
    have = {s.symbol for s in await ts.list_series()}
    rng = np.random.default_rng(2)
    for s in range(n_symbols):
        name = f"B{s:04d}"
        close = 1000 + rng.standard_normal(len(times)).cumsum()
        if name in have:
            continue
        await ts.write_bars(pd.DataFrame({
            "symbol": name, "timeframe": "1m", "ts_ns": times, "open": close, "high": close + 1,
            "low": close - 1, "close": close, "volume": 10.0, "value": close * 10}))


def cpu_s() -> float:
    """This process's CPU seconds so far (user + system, all threads)."""
    t = os.times()
    return t.user + t.system


def touch(arr: BarArrays) -> float:
    """One pass over every loaded matrix (what a backtest does first)."""
    return sum(float(np.nansum(m)) for m in arr.columns.values())


async def bench_bars(ts_url: str, n_symbols: int, repeat: int, days: int = 248) -> None:
    """Uncached reads (``cache=off``: the store itself) against the read cache: the miss
    that fills it, then hits (the read, and the read plus a first pass over the arrays)."""
    cache_dir = Path(tempfile.mkdtemp(prefix="jts-bench-cache-"))
    ts = await open_timeseries(f"{ts_url}?cache=off")
    cached = await open_timeseries(f"{ts_url}?cache={cache_dir}&cache_gb=16")
    assert cached.cache is not None
    times = krx_minutes(days)
    await write_bench_bars(ts, n_symbols, times)
    symbols = [f"B{s:04d}" for s in range(n_symbols)]
    bars = f"{n_symbols * len(times):,} bars ({days} KRX days × 390 min)"
    span = (int(times[0]), int(times[-1]) + 1)
    what = f"load 1y of 1m bars, {n_symbols} symbols → arrays (chdb)"

    cpu: list[float] = []

    async def load(store: ClickHouseTimeSeries, kw: dict[str, Any], first_pass: bool = False
                   ) -> float:
        c = cpu_s()
        t = time.perf_counter()
        arr = await store.read_bars(symbols, *span, "1m", **kw)
        if first_pass:
            touch(arr)
        took = time.perf_counter() - t
        cpu.append(cpu_s() - c)
        assert arr.close.shape == (n_symbols, len(times)), arr.close.shape
        assert not np.isnan(arr.close).any()
        return took

    for label, kw in (("all 6 fields float64", {}),
                      ("close only float32", {"fields": ["close"], "dtype": np.float32})):
        load_avg = " ".join(f"{x:.2f}" for x in os.getloadavg())
        cpu.clear()
        took = [await load(ts, kw) for _ in range(repeat)]
        rows.append((f"{what}, {label}, uncached",
                     f"{statistics.median(took):.2f} s median (first {took[0]:.2f} s); "
                     f"CPU {statistics.median(cpu):.2f} s median (first {cpu[0]:.2f} s)",
                     f"{bars}; {repeat} reads: {' '.join(f'{x:.2f}' for x in took)} s, CPU "
                     f"{' '.join(f'{x:.2f}' for x in cpu)} s; load avg {load_avg} before, "
                     f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} after"))
        miss = await load(cached, kw)
        miss_cpu = cpu[-1]
        t = time.perf_counter()
        cached.cache.wait()
        publish = time.perf_counter() - t
        before = cached.cache.hits
        hits = [await load(cached, kw) for _ in range(repeat)]
        if cached.cache.hits == before:
            rows.append((f"{what}, {label}, read cache", "not cached",
                         f"below the cache's {cached.cache.min_bytes >> 20} MB minimum"))
            continue
        touched = [await load(cached, kw, first_pass=True) for _ in range(repeat)]
        rows.append((f"{what}, {label}, read cache",
                     f"hit {statistics.median(hits):.3f} s; hit + first pass "
                     f"{statistics.median(touched):.2f} s (medians)",
                     f"miss (fills the cache) {miss:.2f} s (CPU {miss_cpu:.2f} s), then "
                     f"{publish:.2f} s more until durable; hits "
                     f"{' '.join(f'{x:.3f}' for x in hits)}; hit + pass "
                     f"{' '.join(f'{x:.2f}' for x in touched)}"))
    await ts.close()
    await cached.close()
    shutil.rmtree(cache_dir, ignore_errors=True)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pg", default=os.environ.get("JTS_BENCH_POSTGRES_URL",
                                                   "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--fills", type=int, default=20_000)
    ap.add_argument("--ticks", type=int, default=2_000_000)
    ap.add_argument("--symbols", default="100,500")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", choices=["ledger", "ticks", "bars"])
    ap.add_argument("--chdb", help="reuse this embedded store directory (kept)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="jts-bench-"))
    try:
        if args.only in (None, "ledger"):
            await bench_ledger(f"sqlite:///{tmp}/ledger.sqlite3", "SQLite (synchronous=FULL)",
                               args.fills, 500)
            import asyncpg
            schema = f"bench_{secrets.token_hex(3)}"
            admin = await asyncpg.connect(args.pg)
            await admin.execute(f"CREATE SCHEMA {schema}")
            try:
                await bench_ledger(f"{args.pg}?search_path={schema}", "PostgreSQL",
                                   args.fills, 500)
            finally:
                await admin.execute(f"DROP SCHEMA {schema} CASCADE")
                await admin.close()
        ts_url = f"chdb:///{args.chdb or tmp / 'chdb'}"
        if args.only in (None, "ticks"):
            await bench_ticks(ts_url, args.ticks)
        if args.only in (None, "bars"):
            for n in (int(x) for x in args.symbols.split(",")):
                await bench_bars(ts_url, n, args.repeat)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("| measure | result | notes |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")


if __name__ == "__main__":
    import logging

    import structlog
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    asyncio.run(main())
