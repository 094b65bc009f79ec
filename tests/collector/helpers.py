"""Hand-made feeds and recorders for the collector tests (no sleeps, no mocks)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from jts.clock import NS
from jts.types import Tick

T0 = 1_750_000_000 * NS      # an arbitrary instant; tests pick calendars explicitly


def tick(symbol: str = "005930", ts: int = T0, price: float = 70_000.0, volume: float = 10.0,
         seq: int = 0, venue: str = "krx") -> Tick:
    return Tick(venue, symbol, ts, 0, price, volume, seq)


class QueueFeed:
    """A feed the test drives: ``push`` a batch, ``end`` it, or ``fail`` it."""

    def __init__(self) -> None:
        self.q: asyncio.Queue[Any] = asyncio.Queue()

    def push(self, batch: Any) -> None:
        self.q.put_nowait(("batch", batch))

    def end(self) -> None:
        self.q.put_nowait(("end", None))

    def fail(self, exc: BaseException) -> None:
        self.q.put_nowait(("fail", exc))

    async def __aiter__(self) -> AsyncIterator[Any]:
        while True:
            kind, item = await self.q.get()
            if kind == "end":
                return
            if kind == "fail":
                raise item
            yield item


class Recorder:
    """Collects published batches and alerts."""

    def __init__(self) -> None:
        self.batches: list[list[Tick]] = []
        self.alerts: list[tuple[str, str, dict[str, Any]]] = []

    def publish(self, batch: list[Tick]) -> None:
        self.batches.append(batch)

    def alert(self, kind: str, message: str, **fields: Any) -> None:
        self.alerts.append((kind, message, fields))

    def kinds(self) -> list[str]:
        return [a[0] for a in self.alerts]

    @property
    def ticks(self) -> list[Tick]:
        return [t for b in self.batches for t in b]


async def settle(n: int = 10) -> None:
    """Let woken tasks run (zero-length yields only)."""
    for _ in range(n):
        await asyncio.sleep(0)
