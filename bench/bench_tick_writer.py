"""Tick recording cost: 1,800-symbol collector batches (``TickBatch`` with columns over the
symbol index) pushed through a :class:`~jts.storage.ts_writer.TickWriter` into the embedded
ClickHouse engine. Reports CPU microseconds per tick on the event-loop thread (offers plus the
flush scheduling) and for the whole process (every thread: frame building, the insert, chdb's
own threads), and wall time. Prints a markdown table.

The batches are built before the clock starts (the collector builds them anyway); the writer
is paced only by its own queue (the producer yields while more than half of ``max_queue`` is
waiting), so no tick is dropped.

    .venv/bin/python bench/bench_tick_writer.py [--ticks 1000000] [--batches 500,5000]
        [--repeat 3] [--plain] [--insert 50000,200000]
    # --plain: list[Tick] without columns (the per-Tick path); --insert: rows per insert
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jts.clock import LiveClock
from jts.storage.timeseries import ClickHouseTimeSeries, open_timeseries
from jts.storage.ts_writer import TickWriter
from jts.tick_batch import TickBatch
from jts.types import Tick

T0 = 1_704_153_600 * 10**9
SYMBOLS = [f"{i:06d}" for i in range(1800)]
INDEX = {s: i for i, s in enumerate(SYMBOLS)}


def batches(size: int, count: int, plain: bool) -> list[list[Tick]]:
    """``count`` distinct batches of ``size`` ticks (random symbols, one recv time a batch)."""
    rng = np.random.default_rng(size)
    out: list[list[Tick]] = []
    for b in range(count):
        recv = T0 + b * 10**7
        syms = rng.integers(0, len(SYMBOLS), size)
        prices = np.round(rng.uniform(1000, 90000, size), 0)
        vols = rng.integers(1, 500, size).astype(float)
        ticks = [Tick("krx", SYMBOLS[s], recv - 5 * 10**6 + i, recv, float(p), float(v),
                      b * size + i + 1)
                 for i, (s, p, v) in enumerate(zip(syms.tolist(), prices.tolist(),
                                                  vols.tolist(), strict=True))]
        out.append(ticks if plain else TickBatch.of(ticks, INDEX))
    return out


async def run_once(store: ClickHouseTimeSeries, size: int, total: int,
                   plain: bool, insert: int) -> tuple[float, float, float, TickWriter]:
    pool = batches(size, max(4, min(64, 200_000 // size)), plain)
    writer = TickWriter(store, LiveClock(), batch_size=insert, max_queue=max(200_000,
                                                                             4 * insert))
    task = asyncio.create_task(writer.run())
    await asyncio.sleep(0)
    half = writer.max_queue // 2
    gc.collect()
    wall, cpu, loop = time.perf_counter(), time.process_time(), time.thread_time()
    sent = 0
    while sent < total:
        writer.offer_many(pool[(sent // size) % len(pool)])
        sent += size
        await asyncio.sleep(0)
        # back-pressure as a producer sees it: the writer exposes a depth, not an event
        while writer.queued > half:  # noqa: ASYNC110
            await asyncio.sleep(0.002)
    writer.stop()
    await task
    return (time.thread_time() - loop, time.process_time() - cpu,
            time.perf_counter() - wall, writer)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=1_000_000)
    ap.add_argument("--batches", default="500,5000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--plain", action="store_true", help="list[Tick] without columns")
    ap.add_argument("--insert", default="50000",
                    help="the writer's rows per insert (comma-separated: one table row each)")
    args = ap.parse_args()
    where = tempfile.mkdtemp(prefix="jts_bench_tw_")
    store = await open_timeseries(f"chdb:///{where}?cache=off")
    print(f"load average {os.getloadavg()[0]:.2f}, {args.ticks:,} ticks a run, "
          f"{'list[Tick]' if args.plain else 'TickBatch with columns'}\n")
    print("| batch | rows per insert | loop µs/tick | process µs/tick | wall s | written "
          "| dropped |")
    print("|---|---|---|---|---|---|---|")
    try:
        for insert in (int(s) for s in args.insert.split(",")):
            for size in (int(s) for s in args.batches.split(",")):
                runs = [await run_once(store, size, args.ticks, args.plain, insert)
                        for _ in range(args.repeat)]
                for loop, cpu, wall, w in runs:
                    print(f"| {size} | {insert:,} | {loop / w.written * 1e6:.3f} "
                          f"| {cpu / w.written * 1e6:.3f} | {wall:.2f} | {w.written:,} "
                          f"| {w.dropped} |")
                med = [statistics.median(r[k] for r in runs) / runs[0][3].written * 1e6
                       for k in (0, 1)]
                print(f"| {size} median | {insert:,} | **{med[0]:.3f}** | **{med[1]:.3f}** "
                      "| | | |")
    finally:
        await store.close()
        shutil.rmtree(where, ignore_errors=True)
    print(f"\nload average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
