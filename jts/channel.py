"""Typed, bounded in-process channels and fan-out topics.

Each channel has an overflow policy fixed at creation:

* ``Overflow.DROP_OLDEST`` — market data: a full channel discards its oldest item, counts it
  in ``stats.dropped`` and logs a rate-limited ``channel_overflow`` warning. Senders never wait.
* ``Overflow.BLOCK`` — order intents, order events, fills: never dropped. ``send`` waits for
  room (back-pressure); ``send_nowait`` on a full channel raises :class:`ChannelFull` rather
  than lose the item.

A :class:`Topic` fans one publisher out to several subscriber channels, each with its own
capacity and policy (a slow dashboard must not stall the strategy engine).
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

import structlog

from jts.errors import JTSError

T = TypeVar("T")
log = structlog.get_logger(__name__)


class Overflow(enum.Enum):
    DROP_OLDEST = "drop_oldest"
    BLOCK = "block"


class ChannelFull(JTSError):
    """A never-drop channel is full and the sender would not wait."""


class ChannelClosed(JTSError):
    """The channel was closed and is empty."""


@dataclass
class ChannelStats:
    sent: int = 0
    received: int = 0
    dropped: int = 0
    high_water: int = 0


class Channel(Generic[T]):
    def __init__(self, name: str, capacity: int, overflow: Overflow,
                 warn_interval: float = 5.0) -> None:
        if capacity < 1:
            raise ValueError("capacity must be ≥ 1")
        self.name = name
        self.capacity = capacity
        self.overflow = overflow
        self.stats = ChannelStats()
        self._items: deque[T] = deque()
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._empty = asyncio.Event()
        self._empty.set()
        self._closed = False
        self._warn_interval = warn_interval
        self._last_warn = float("-inf")
        self._dropped_since_warn = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    def _put(self, item: T) -> None:
        self._items.append(item)
        self.stats.sent += 1
        n = len(self._items)
        if n > self.stats.high_water:
            self.stats.high_water = n
        if n >= self.capacity:
            self._writable.clear()
        self._empty.clear()
        self._readable.set()

    def send_nowait(self, item: T) -> None:
        if self._closed:
            raise ChannelClosed(f"channel {self.name} is closed")
        if len(self._items) >= self.capacity:
            if self.overflow is Overflow.BLOCK:
                raise ChannelFull(f"channel {self.name} is full ({self.capacity})")
            self._items.popleft()
            self.stats.dropped += 1
            self._dropped_since_warn += 1
            now = time.monotonic()
            if now - self._last_warn >= self._warn_interval:
                log.warning("channel_overflow", channel=self.name, dropped=self._dropped_since_warn,
                            dropped_total=self.stats.dropped, capacity=self.capacity)
                self._last_warn = now
                self._dropped_since_warn = 0
        self._put(item)

    async def send(self, item: T) -> None:
        if self.overflow is Overflow.DROP_OLDEST:
            self.send_nowait(item)
            return
        while len(self._items) >= self.capacity:
            if self._closed:
                raise ChannelClosed(f"channel {self.name} is closed")
            await self._writable.wait()
        self.send_nowait(item)

    def _after_take(self) -> None:
        if not self._items:
            self._readable.clear()
            self._empty.set()
        if len(self._items) < self.capacity:
            self._writable.set()

    def receive_nowait(self) -> T:
        if not self._items:
            raise ChannelClosed(self.name) if self._closed else IndexError(self.name)
        item = self._items.popleft()
        self.stats.received += 1
        self._after_take()
        return item

    async def receive(self) -> T:
        while not self._items:
            if self._closed:
                raise ChannelClosed(f"channel {self.name} is closed")
            await self._readable.wait()
        return self.receive_nowait()

    def drain(self, max_items: int | None = None) -> list[T]:
        """Take everything pending (up to ``max_items``) without waiting."""
        n = len(self._items) if max_items is None else min(max_items, len(self._items))
        out = [self._items.popleft() for _ in range(n)]
        self.stats.received += n
        self._after_take()
        return out

    async def receive_batch(self, max_items: int | None = None) -> list[T]:
        """Wait for at least one item, then take all pending ones: the batching idiom."""
        while not self._items:
            if self._closed:
                raise ChannelClosed(f"channel {self.name} is closed")
            await self._readable.wait()
        return self.drain(max_items)

    def close(self) -> None:
        """No more sends; receivers get what is left, then ChannelClosed."""
        self._closed = True
        self._readable.set()
        self._writable.set()

    async def join(self) -> None:
        """Wait until every pending item has been taken."""
        await self._empty.wait()

    def __aiter__(self) -> Channel[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.receive()
        except ChannelClosed:
            raise StopAsyncIteration from None


class Topic(Generic[T]):
    """One publisher, many subscriber channels."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._subs: list[Channel[T]] = []
        self.published = 0

    def subscribe(self, consumer: str, capacity: int, overflow: Overflow) -> Channel[T]:
        ch: Channel[T] = Channel(f"{self.name}->{consumer}", capacity, overflow)
        self._subs.append(ch)
        return ch

    @property
    def subscribers(self) -> list[Channel[T]]:
        return list(self._subs)

    def publish_nowait(self, item: T) -> None:
        """For drop-oldest topics (market data): never waits."""
        self.published += 1
        for ch in self._subs:
            ch.send_nowait(item)

    async def publish(self, item: T) -> None:
        """For never-drop topics: waits for room in every subscriber."""
        self.published += 1
        for ch in self._subs:
            await ch.send(item)

    def close(self) -> None:
        for ch in self._subs:
            ch.close()
