"""Fixtures: a KIS simulator on loopback (aiohttp TestServer) sharing a FakeClock with the
adapter, so token throttles, expiry, rate windows and reconnect backoff run on fake time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from brokers.kis.broker import KisBroker
from brokers.kis.config import KisAccountConfig, KisCredentials
from brokers.kis.simulator import KisSimulator, SimSettings
from jts.clock import KST, NS, FakeClock, from_datetime

START = from_datetime(datetime(2026, 3, 10, 10, 0, 0, tzinfo=KST))
APP_KEY, APP_SECRET, ACCOUNT, HTS = "PSappkey0001", "secret0001", "50000000-01", "tester"


@dataclass
class Env:
    clock: FakeClock
    sim: KisSimulator
    server: TestServer
    cfg: KisAccountConfig
    creds: KisCredentials

    def broker(self, **kw: Any) -> KisBroker:
        return KisBroker(self.cfg, self.creds, clock=self.clock, account="main", **kw)


async def make_env(settings: SimSettings, *, cash: int = 50_000_000,
                   positions: dict[str, tuple[int, int]] | None = None,
                   **cfg: Any) -> Env:
    clock = FakeClock(START)
    sim = KisSimulator(settings, clock=clock)
    sim.add_app(APP_KEY, APP_SECRET, domain=cfg.pop("app_domain", None), account=ACCOUNT,
                hts_id=HTS, cash=Decimal(cash), positions=positions)
    server = TestServer(sim.app())
    await server.start_server()
    base = str(server.make_url("/")).rstrip("/")
    opts: dict[str, Any] = {"domain": settings.domain, "rest_url": base,
                            "ws_url": base.replace("http://", "ws://") + "/tryitout",
                            "rate_limit": 1000, "request_timeout": 5.0, **cfg}
    return Env(clock, sim, server, KisAccountConfig(**opts),
               KisCredentials(APP_KEY, APP_SECRET, "50000000", "01", HTS))


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    e = await make_env(SimSettings(domain="virtual", rate_limit=1000, auto_step=False,
                                   ping_interval=0),
                       positions={"005930": (10, 70_000)})
    yield e
    await e.server.close()


async def drive(clock: FakeClock, until: Callable[[], bool] | asyncio.Future[Any] | None,
                seconds: float = 120.0, step: float = 0.5) -> None:
    """Advance fake time until ``until`` holds (a predicate or a finished future/task),
    yielding to the loop so loopback I/O makes progress between steps."""
    end = clock.now_ns() + int(seconds * NS)

    def done() -> bool:
        if until is None:
            return False
        return until.done() if isinstance(until, asyncio.Future) else until()

    while not done():
        for _ in range(20):
            await asyncio.sleep(0)
            if done():
                return
        if clock.now_ns() >= end:
            if until is None:
                return
            raise AssertionError("condition not reached within fake time budget")
        clock.set(min(end, clock.now_ns() + int(step * NS)))


async def run(clock: FakeClock, coro: Awaitable[Any], seconds: float = 300.0) -> Any:
    """Run ``coro`` while fake time advances as needed."""
    task = asyncio.ensure_future(coro)
    await drive(clock, task, seconds)
    return task.result()


async def next_of(queue: asyncio.Queue[Any], limit: float = 5.0) -> Any:
    return await asyncio.wait_for(queue.get(), limit)
