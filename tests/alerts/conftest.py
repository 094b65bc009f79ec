"""Shared helpers: an in-process recording sink, a running-notifier fixture and a guarded
wait (the timeout only stops a broken test from hanging; nothing asserts on time)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from jts.alerts import AlertsConfig, Notifier
from jts.alerts.delivery import SinkStats
from jts.alerts.model import Alert
from jts.clock import FakeClock

START = 1_767_225_600 * 1_000_000_000   # 2026-01-01T00:00:00Z


class RecordingSink:
    def __init__(self, name: str = "fake") -> None:
        self.name = name
        self.sent: list[tuple[Alert, int]] = []
        self.failures: deque[BaseException] = deque()
        self.gate: asyncio.Event | None = None
        self.attempts = 0
        self.opened = self.closed = False

    async def open(self) -> None:
        self.opened = True

    async def close(self) -> None:
        self.closed = True

    async def send(self, alert: Alert, suppressed: int) -> None:
        self.attempts += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.failures:
            raise self.failures.popleft()
        self.sent.append((alert, suppressed))

    @property
    def messages(self) -> list[str]:
        return [a.message for a, _ in self.sent]


async def guarded(aw: Awaitable[Any], seconds: float = 10.0) -> Any:
    return await asyncio.wait_for(aw, seconds)


async def until(notifier: Notifier, sink: str, pred: Callable[[SinkStats], bool]) -> None:
    await guarded(notifier.workers[sink].wait_until(pred))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def running() -> AsyncIterator[Callable[[Notifier], Awaitable[None]]]:
    tasks: list[asyncio.Task[None]] = []

    async def start(n: Notifier) -> None:
        tasks.append(asyncio.create_task(n.run()))
        await asyncio.sleep(0)

    yield start
    for t in tasks:
        t.cancel()
    for t in tasks:
        try:
            await t
        except asyncio.CancelledError:
            pass


def config(**sections: Any) -> AlertsConfig:
    import msgspec

    return msgspec.convert(sections, AlertsConfig)
