"""Batched asynchronous tick writer: the hot path calls :meth:`TickWriter.offer` (never blocks,
never awaits); a background task flushes batches to the time-series store.

The queue is bounded. When it is full the *oldest* tick is dropped (market data may drop
oldest; orders and fills never go through here), ``dropped`` is incremented and a warning is
logged (at most once per ``warn_every`` drops). A failed flush is logged and its batch counted
in ``failed``; the writer keeps going.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Protocol

import structlog

from jts.clock import Clock
from jts.tick_batch import TickBatch
from jts.types import Tick

log = structlog.get_logger(__name__)


class TickSink(Protocol):
    async def write_ticks(self, ticks: Sequence[Tick]) -> int: ...


class TickWriter:
    """The queue holds the offered batches as they are (a collector's
    :class:`~jts.tick_batch.TickBatch` stays columnar all the way to the store); single
    ticks from :meth:`offer` gather in a list chunk."""

    def __init__(self, sink: TickSink, clock: Clock, *, max_queue: int = 200_000,
                 batch_size: int = 50_000, flush_interval: float = 1.0,
                 warn_every: int = 10_000) -> None:
        self._sink = sink
        self._clock = clock
        self._chunks: deque[Sequence[Tick]] = deque()
        self._loose: list[Tick] | None = None     # the list chunk offer() appends to
        self._queued = 0
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.warn_every = warn_every
        self.dropped = 0
        self.written = 0
        self.failed = 0
        self._wake = asyncio.Event()
        self._closing = False

    @property
    def queued(self) -> int:
        return self._queued

    def offer(self, tick: Tick) -> bool:
        """Queue ``tick``; returns False when an older tick had to be dropped to make room."""
        ok = True
        if self._queued >= self.max_queue:
            self._drop(1)
            self.dropped += 1
            ok = False
            if self.dropped % self.warn_every == 1 or self.warn_every == 1:
                log.warning("tick_writer_overloaded", dropped=self.dropped,
                            max_queue=self.max_queue)
        loose = self._loose
        if loose is None or not self._chunks or self._chunks[-1] is not loose:
            loose = self._loose = []
            self._chunks.append(loose)
        loose.append(tick)
        self._queued += 1
        if self._queued >= self.batch_size:
            self._wake.set()
        return ok

    def offer_many(self, ticks: Sequence[Tick]) -> int:
        """Queue a batch in one call (the collector's fast path); the oldest ticks are dropped
        past ``max_queue`` exactly as :meth:`offer` would. Returns how many were queued."""
        n = len(ticks)
        if not n:
            return 0
        self._chunks.append(ticks if isinstance(ticks, TickBatch) else list(ticks))
        self._queued += n
        over = self._queued - self.max_queue
        if over > 0:
            self._drop(over)
            before, self.dropped = self.dropped, self.dropped + over
            if (self.dropped - 1) // self.warn_every != (before - 1) // self.warn_every:
                log.warning("tick_writer_overloaded", dropped=self.dropped,
                            max_queue=self.max_queue)
        if self._queued >= self.batch_size:
            self._wake.set()
        return n

    def _drop(self, k: int) -> None:
        """Forget the ``k`` oldest queued ticks."""
        self._queued -= k
        chunks = self._chunks
        while k:
            c = chunks[0]
            if len(c) <= k:
                chunks.popleft()
                k -= len(c)
            else:
                chunks[0] = _part(c, k, len(c))
                k = 0

    def _take(self, n: int) -> Sequence[Tick]:
        """The ``n`` oldest queued ticks as one batch (columnar when they all are)."""
        self._queued -= n
        parts: list[Sequence[Tick]] = []
        chunks = self._chunks
        while n:
            c = chunks[0]
            if len(c) <= n:
                parts.append(chunks.popleft())
                n -= len(c)
            else:
                parts.append(_part(c, 0, n))
                chunks[0] = _part(c, n, len(c))
                n = 0
        return TickBatch.join(parts)

    async def flush(self) -> int:
        """Write everything queued now (in batches); returns rows written."""
        total = 0
        while self._queued:
            batch = self._take(min(self.batch_size, self._queued))
            try:
                total += await self._sink.write_ticks(batch)
            except Exception as exc:
                self.failed += len(batch)
                log.error("tick_write_failed", rows=len(batch), error=str(exc))
        self.written += total
        return total

    async def run(self) -> None:
        """Flush every ``flush_interval`` (clock time) or whenever a batch is full; on
        cancellation or :meth:`stop`, flush what is left and return."""
        try:
            while not self._closing:
                sleeper = asyncio.ensure_future(self._clock.sleep(self.flush_interval))
                waker = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
                sleeper.cancel()
                waker.cancel()
                self._wake.clear()
                await self.flush()
        finally:
            await asyncio.shield(self.flush())

    def stop(self) -> None:
        self._closing = True
        self._wake.set()


def _part(chunk: Sequence[Tick], start: int, stop: int) -> Sequence[Tick]:
    if isinstance(chunk, TickBatch):
        return chunk.part(start, stop)
    return list(chunk[start:stop])
