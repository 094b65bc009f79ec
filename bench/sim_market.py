"""Simulated market and paper broker throughput: ticks per wall second at speed 60 with the
CPU it costs, and the paper broker's tick-processing and order round-trip rates."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import structlog

from brokers.paper import PaperBroker
from jts.clock import FakeClock, ScaledClock
from jts.sim import SimMarket
from jts.types import OrderRequest, Side

structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))


async def live(speed: float, seconds: float, interval: float) -> tuple[float, float, int]:
    m = SimMarket(seed=42, tick_interval_s=interval)
    clock = ScaledClock(time.time_ns(), speed)
    n, batches = 0, 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    async for batch in m.stream(clock):
        n += len(batch)
        batches += 1
        if time.perf_counter() - wall0 >= seconds:
            break
    wall = time.perf_counter() - wall0
    return n / wall, (time.process_time() - cpu0) / wall * 100, batches


async def broker_rates() -> tuple[float, float]:
    m = SimMarket(seed=1)
    t0 = 1_749_517_200_000_000_000
    m.advance_to(t0)
    ticks = m.advance_to(t0 + 3_600 * 1_000_000_000)
    b = PaperBroker(initial_cash=Decimal(10**12), clock=FakeClock(t0))
    s = time.perf_counter()
    b.on_ticks(ticks)
    tick_rate = len(ticks) / (time.perf_counter() - s)
    sym = ticks[-1].symbol
    n = 5_000
    s = time.perf_counter()
    for i in range(n):
        await b.submit(OrderRequest(f"o{i}", "paper", "paper-1", sym,
                                    Side.BUY if i % 2 == 0 else Side.SELL, Decimal(1)))
        b.on_tick(ticks[-1])
    order_rate = n / (time.perf_counter() - s)
    return tick_rate, order_rate


async def main() -> None:
    print("| measurement | value |")
    print("|---|---|")
    for speed, interval in ((60.0, 0.1), (60.0, 0.25), (600.0, 0.25)):
        rate, cpu, batches = await live(speed, 3.0, interval)
        print(f"| sim stream, 85 symbols, speed {speed:g}, batch every {interval} s wall | "
              f"{rate:,.0f} ticks/s wall, {cpu:.1f} % of one core, {batches} batches |")
    tick_rate, order_rate = await broker_rates()
    print(f"| paper broker on_tick (no open orders) | {tick_rate:,.0f} ticks/s |")
    print(f"| paper broker market order submit + fill | {order_rate:,.0f} orders/s |")


if __name__ == "__main__":
    asyncio.run(main())
