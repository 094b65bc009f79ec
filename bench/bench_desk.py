"""Intent → submit through the real desk: ``Desk.handle_many`` with the real PaperBroker and
a real ledger, timed from the start of a burst to each ``broker.submit`` call.

Run: .venv/bin/python bench/bench_desk.py [--pg postgresql://postgres@127.0.0.1:5432/postgres]

Two write-aheads, same code otherwise: "ledger" (the orders committed to the ledger before
the first send — the desk without an order journal) and "journal" (the orders appended to
the order journal, one fdatasync in the calling thread; the ledger gets orders and acks in
one transaction after the sends). SQLite runs with ``synchronous=full``; ``--pg`` adds the
same rows on a scratch PostgreSQL database (created and dropped). Between bursts the paper
broker fills every order at the next print and the fills reach the ledger, so each burst
starts from a quiet loop: floors, not figures under market load. The "+ hog" rows add one
more task that keeps the loop half busy: ``--hog-ms`` of CPU (a tick batch's worth of work),
then as long idle, again and again — an ``await`` before the sends then can cost a slice,
and the ledger's executor thread competes with the loop for the GIL. ("handle_many CPU" is
the loop thread's CPU during the call, so in those rows it includes the hog's.)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from brokers.paper import PaperBroker
from jts.clock import LiveClock
from jts.config import RiskConfig
from jts.desk import Desk
from jts.portfolio import Portfolio
from jts.risk import RiskGate
from jts.storage.ledger import Ledger, open_ledger
from jts.storage.order_wal import OrderWal
from jts.types import OrderEvent, OrderIntent, OrderRequest, Side, Tick

REPO = Path(__file__).resolve().parents[1]
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
RISK = RiskConfig(max_position_notional=1e12, max_total_exposure=1e15,
                  max_open_positions=100_000, max_orders_per_minute=10**9,
                  max_daily_loss=1e14, price_band_pct=30)
SYMBOLS = [f"{i:06d}" for i in range(1, 401)]
CASH = Decimal(10**12)
ROUNDS = {1: 400, 10: 150, 400: 12}
HOG_ROUNDS = {1: 300, 10: 100, 400: 8}
WARMUP = 2


class TimedBroker(PaperBroker):
    """The paper broker, stamping each submit call on arrival."""

    stamps: list[int]

    async def submit(self, order: OrderRequest) -> OrderEvent:
        self.stamps.append(time.perf_counter_ns())
        return await super().submit(order)


def ticks(now: int) -> list[Tick]:
    return [Tick("krx", s, now, now, 10_000.0, 1.0) for s in SYMBOLS]


async def hog(slice_ns: int) -> None:
    """Other work on the loop: ``slice_ns`` of CPU, then as long idle, for ever."""
    while True:
        end = time.perf_counter_ns() + slice_ns
        while time.perf_counter_ns() < end:
            pass
        await asyncio.sleep(slice_ns / 1e9)


async def run(url: str, journal: bool, size: int, rounds: int, tmp: Path,
              hog_ms: float = 0.0) -> dict[str, Any]:
    clock = LiveClock()
    ledger: Ledger = await open_ledger(url, clock=clock, auto_migrate=True)
    wal = OrderWal.open(tmp / f"wal-{secrets.token_hex(4)}") if journal else None
    broker = TimedBroker(clock=clock, symbols=SYMBOLS, initial_cash=CASH)
    broker.stamps = []
    broker.on_ticks(ticks(clock.now_ns()))
    await ledger.set_cash(broker.name, broker.account, CASH)
    desk = Desk(broker, RiskGate(RISK), Portfolio(cash=CASH), clock, lambda s: 10_000.0,
                journal=ledger, wal=wal)

    async def router() -> None:
        async for ev in broker.events():
            await desk.on_report(ev)

    routing = asyncio.create_task(router())
    busy = asyncio.create_task(hog(int(hog_ms * 1e6))) if hog_ms else None
    first: list[float] = []
    every: list[float] = []
    cpu: list[float] = []
    try:
        for r in range(rounds + WARMUP):
            side = Side.BUY if r % 2 == 0 else Side.SELL
            now = clock.now_ns()
            burst = [OrderIntent("bench", s, side, Decimal(1), now) for s in SYMBOLS[:size]]
            broker.stamps = []
            c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
            decisions = await desk.handle_many(burst)
            c1 = time.thread_time_ns()
            assert all(d.approved for d in decisions), [d for d in decisions if not d.approved]
            if r >= WARMUP:
                lat = [(t - t0) / 1e6 for t in broker.stamps]
                first.append(lat[0])
                every += lat
                cpu.append((c1 - c0) / 1e6)
            broker.on_ticks(ticks(clock.now_ns()))       # fills every order of the burst
            while desk.open_orders():  # noqa: ASYNC110 - the router task settles them
                await asyncio.sleep(0.0005)
    finally:
        if busy is not None:
            busy.cancel()
        await broker.close()
        await routing
        if wal is not None:
            wal.close()
        await ledger.close()
    return {"first": np.array(first), "every": np.array(every), "cpu": np.array(cpu)}


def row(name: str, mode: str, size: int, got: dict[str, Any]) -> str:
    f, e = got["first"], got["every"]

    def p(a: Any, q: float) -> str:
        return f"{np.percentile(a, q):.3f}"
    return (f"| {name} | {mode} | {size} | {len(f)} | {p(f, 50)} / {p(f, 99)} | "
            f"{p(e, 50)} / {p(e, 99)} / {p(e, 99.9)} / {e.max():.3f} | "
            f"{np.median(got['cpu']):.2f} |")


async def scratch_pg(admin: str) -> tuple[str, Any]:
    import asyncpg

    name = f"jts_bench_{secrets.token_hex(4)}"

    async def sql(stmt: str) -> None:
        conn = await asyncpg.connect(admin, timeout=5)
        try:
            await conn.execute(stmt)
        finally:
            await conn.close()
    await sql(f"CREATE DATABASE {name}")
    return admin.rsplit("/", 1)[0] + "/" + name, lambda: sql(
        f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pg", help="an admin URL of PostgreSQL: adds PostgreSQL-ledger rows")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the bursts per row")
    ap.add_argument("--hog-ms", type=float, default=2.0,
                    help="the + hog rows' loop slice (0: no such rows)")
    args = ap.parse_args()
    print(f"Desk.handle_many, burst start → each submit (ms); load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores\n")
    print("| ledger | write-ahead | burst | bursts | first submit p50 / p99 "
          "| every submit p50 / p99 / p99.9 / max | handle_many CPU p50 |")
    print("|---|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(dir=REPO) as d:     # on the daemon's disk, not tmpfs
        tmp = Path(d)
        def sqlite() -> str:
            return f"sqlite:///{tmp / secrets.token_hex(4)}.db"
        ledgers: list[tuple[str, Any, float]] = [("sqlite full", sqlite, 0.0)]
        if args.hog_ms:
            ledgers.append((f"sqlite full + {args.hog_ms:g} ms hog", sqlite, args.hog_ms))
        drop = None
        if args.pg:
            pg_url, drop = await scratch_pg(args.pg)
            ledgers.append(("postgresql", lambda: pg_url, 0.0))
        try:
            for name, make_url, hog_ms in ledgers:
                for size, rounds in (HOG_ROUNDS if hog_ms else ROUNDS).items():
                    n = max(3, int(rounds * args.scale))
                    for mode in ("ledger", "journal"):
                        url = make_url()
                        if url.startswith("postgresql"):   # a fresh schema per row
                            url = await fresh_schema(url)
                        got = await run(url, mode == "journal", size, n, tmp, hog_ms)
                        print(row(name, mode, size, got), flush=True)
        finally:
            if drop is not None:
                await drop()
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


async def fresh_schema(url: str) -> str:
    import asyncpg

    schema = f"b_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
    finally:
        await conn.close()
    return f"{url}?search_path={schema}"


if __name__ == "__main__":
    asyncio.run(main())
