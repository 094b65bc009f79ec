"""Rate-limiter utilization under saturation, against the KIS simulator on loopback.

Many concurrent workers hammer ``inquire-price`` through ``KisBroker`` (real aiohttp, real
sockets, the live clock) for a few seconds; the simulator counts what it accepted in each of
its fixed one-second windows per app key. Utilization = accepted / (limit × full windows);
``EGW00201`` must stay at zero. Also reports the bare limiter on a FakeClock (no I/O).

    .venv/bin/python bench/bench_ratelimit.py
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from decimal import Decimal

from aiohttp.test_utils import TestServer

from brokers.kis.auth import MemoryTokenStore
from brokers.kis.broker import KisBroker
from brokers.kis.config import KisAccountConfig, KisCredentials
from brokers.kis.simulator import KisSimulator, SimSettings
from jts.clock import NS, FakeClock, LiveClock
from jts.ratelimit import Lane, RateLimiter

SECONDS = 4.0


async def against_sim(domain: str, limit: int, margin: float, workers: int) -> list[str]:
    clock = LiveClock()
    sim = KisSimulator(SimSettings(domain=domain, auto_step=False, ping_interval=0),  # type: ignore[arg-type]
                       clock=clock)
    sim.add_app("BENCHKEY", "BENCHSECRET", cash=Decimal(1))
    server = TestServer(sim.app())
    await server.start_server()
    base = str(server.make_url("/")).rstrip("/")
    cfg = KisAccountConfig(domain=domain, rest_url=base, rate_limit=limit,  # type: ignore[arg-type]
                           rate_margin=margin)
    b = KisBroker(cfg, KisCredentials("BENCHKEY", "BENCHSECRET", "50000000", "01"),
                  clock=clock, stream=False, token_store=MemoryTokenStore())
    await b.connect()
    stop = time.monotonic() + SECONDS

    async def worker() -> None:
        while time.monotonic() < stop:
            await b.quote("005930", Lane.BACKGROUND)

    await asyncio.gather(*(worker() for _ in range(workers)))
    counts = {w: n for (_, w), n in sim.venue.stats.per_window.items()}
    per = [(w, counts.get(w, 0)) for w in range(min(counts), max(counts) + 1)]
    full = per[1:-1]                                  # drop the partial first/last windows
    accepted = sum(min(n, limit) for _, n in full)
    peak = max(n for _, n in per)
    util = accepted / (limit * len(full))
    await b.close()
    await server.close()
    return [f"simulator {domain}", str(limit), f"{margin:.2f}", str(workers), str(len(full)),
            f"{accepted / len(full):.2f}", str(peak), str(sim.venue.stats.rate_rejected),
            f"{util:.1%}"]


async def fake_clock(limit: int, margin: float, aligned: bool) -> list[str]:
    clock = FakeClock(start_ns=1_000 * NS + 1)
    rl = RateLimiter(limit, clock=clock, margin=margin, aligned=aligned)
    grants: list[int] = []

    async def worker() -> None:
        while True:
            await rl.acquire(Lane.BACKGROUND)
            grants.append(clock.now_ns())

    tasks = [asyncio.ensure_future(worker()) for _ in range(3 * limit)]
    for _ in range(6000):                                 # 60 s in 10 ms steps
        clock.advance(0.01)
        for _ in range(3):
            await asyncio.sleep(0)
    for t in tasks:
        t.cancel()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await t
    await rl.aclose()
    per: dict[int, int] = {}
    for g in grants:
        per[g // NS] = per.get(g // NS, 0) + 1
    windows = list(range(min(per) + 1, max(per)))     # every full window, empty ones too
    rate = sum(per.get(w, 0) for w in windows) / len(windows)
    kind = "aligned" if aligned else "phase-safe"
    return [f"FakeClock {kind}", str(limit), f"{margin:.2f}", str(3 * limit), str(len(windows)),
            f"{rate:.2f}", str(max(per.values())), "n/a", f"{rate / limit:.1%}"]


async def main() -> None:
    rows = [await fake_clock(20, 0.0, True), await fake_clock(20, 0.05, False),
            await fake_clock(2, 0.05, False),
            await against_sim("real", 20, 0.05, 40), await against_sim("virtual", 2, 0.05, 8)]
    head = ["setup", "limit/s", "margin s", "workers", "full windows", "accepted/window",
            "peak/window", "EGW00201", "utilization"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    asyncio.run(main())
