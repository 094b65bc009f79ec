"""Clocks: live, accelerated (simulated market) and fake (tests, replay), plus KST helpers.

Every component that needs time takes a :class:`Clock`; nothing calls ``time.time()`` or
``asyncio.sleep`` for trading logic directly. ``now_ns`` is wall/market time in Unix
nanoseconds; ``sleep`` waits in that same clock's time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Protocol

KST = timezone(timedelta(hours=9), "KST")
NS = 1_000_000_000


class Clock(Protocol):
    def now_ns(self) -> int: ...

    async def sleep(self, seconds: float) -> None: ...


class LiveClock:
    """The real wall clock."""

    def now_ns(self) -> int:
        return time.time_ns()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ScaledClock:
    """Simulated time that runs ``speed`` times faster than the wall clock from ``start_ns``.

    Used by the bundled simulated market so that a trading day can be watched in minutes.
    """

    def __init__(self, start_ns: int, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.start_ns = start_ns
        self.speed = speed
        self._wall0 = time.monotonic_ns()

    def now_ns(self) -> int:
        return self.start_ns + int((time.monotonic_ns() - self._wall0) * self.speed)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds / self.speed))


class FakeClock:
    """A clock that moves only when told to: ``advance`` wakes every sleeper whose deadline
    has passed, in deadline order. Deterministic; no wall-clock waiting in tests."""

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns
        self._sleepers: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now_ns(self) -> int:
        return self._now

    async def sleep(self, seconds: float) -> None:
        deadline = self._now + max(0, int(seconds * NS))
        if deadline <= self._now:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._seq), fut))
        await fut

    @property
    def pending(self) -> int:
        return sum(1 for _, _, f in self._sleepers if not f.done())

    def set(self, now_ns: int) -> None:
        """Jump to ``now_ns`` (never backwards) and wake due sleepers."""
        if now_ns < self._now:
            raise ValueError("FakeClock cannot go backwards")
        self._now = now_ns
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    def advance(self, seconds: float) -> None:
        self.set(self._now + int(seconds * NS))

    async def run_for(self, seconds: float, step: float = 1.0) -> None:
        """Advance in ``step`` increments, yielding to the loop between steps so woken
        tasks run; a deterministic stand-in for letting time pass."""
        end = self._now + int(seconds * NS)
        while self._now < end:
            self.set(min(end, self._now + int(step * NS)))
            for _ in range(5):
                await asyncio.sleep(0)


def to_kst(ts_ns: int) -> datetime:
    return datetime.fromtimestamp(ts_ns / NS, tz=KST)


def from_datetime(dt: datetime) -> int:
    """Unix ns from an aware datetime (naive datetimes are taken as KST)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=KST)
    delta = dt.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NS + delta.microseconds * 1000


def iso_utc(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / NS, tz=UTC).isoformat(timespec="milliseconds")
