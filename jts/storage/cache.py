"""The cache port: short-lived values with TTL, account locks with fencing tokens, pub/sub of
ticks and fills to other processes, and rate-limit window counters.

Backends: :class:`MemoryCache` (``memory://``, in-process, expiry on the injected clock) and
:class:`jts.storage.cache_redis.RedisCache` (``redis://host:port/db?prefix=jts:``), chosen by
:func:`open_cache`.

Locks: ``acquire_lock`` returns a *fencing token* — a number that only ever grows per lock
name — or None when another owner holds an unexpired lock. A holder renews before expiry;
whoever acts on the account passes its token to ``check_fence``, which fails as soon as anyone
else has taken the lock, so a paused daemon that lost its lock cannot trade on.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

import msgspec

from jts.clock import NS, Clock, LiveClock
from jts.storage.urls import scheme_of
from jts.types import Fill, Tick

TICKS = "ticks"
FILLS = "fills"


class Cache(Protocol):
    url: str

    async def close(self) -> None: ...

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def acquire_lock(self, name: str, owner: str, ttl: float) -> int | None: ...

    async def renew_lock(self, name: str, owner: str, token: int, ttl: float) -> bool: ...

    async def release_lock(self, name: str, owner: str, token: int) -> bool: ...

    async def check_fence(self, name: str, token: int) -> bool:
        """True while ``token`` is the current holder's token for lock ``name``."""
        ...

    async def incr_window(self, key: str, window_id: int, amount: int = 1,
                          ttl: float = 120.0) -> int:
        """Add ``amount`` to the counter of rate-limit window ``window_id``; return the total."""
        ...

    async def publish(self, channel: str, message: bytes) -> int: ...

    def subscribe(self, *channels: str) -> Subscription: ...


class Subscription(Protocol):
    async def __aenter__(self) -> Subscription: ...

    async def __aexit__(self, *exc: object) -> None: ...

    def __aiter__(self) -> AsyncIterator[tuple[str, bytes]]: ...


# ---- typed helpers over any backend -------------------------------------------------------
_enc = msgspec.msgpack.Encoder()
_tick_dec = msgspec.msgpack.Decoder(Tick)
_fill_dec = msgspec.msgpack.Decoder(Fill)


async def set_last_price(cache: Cache, tick: Tick, ttl: float | None = 86_400.0) -> None:
    await cache.set(f"last:{tick.venue}:{tick.symbol}", _enc.encode(tick), ttl)


async def last_price(cache: Cache, venue: str, symbol: str) -> Tick | None:
    raw = await cache.get(f"last:{venue}:{symbol}")
    return None if raw is None else _tick_dec.decode(raw)


async def publish_tick(cache: Cache, tick: Tick) -> int:
    return await cache.publish(TICKS, _enc.encode(tick))


async def publish_fill(cache: Cache, fill: Fill) -> int:
    return await cache.publish(FILLS, _enc.encode(fill))


def decode_tick(raw: bytes) -> Tick:
    return _tick_dec.decode(raw)


def decode_fill(raw: bytes) -> Fill:
    return _fill_dec.decode(raw)


# ---- in-process backend --------------------------------------------------------------------
class MemoryCache:
    """In-process cache; expiry follows the injected clock (a FakeClock in tests). Pub/sub
    reaches subscribers in this process only; each subscriber has a bounded queue that drops
    its oldest message when full (counted in ``dropped``)."""

    def __init__(self, clock: Clock | None = None, queue_size: int = 10_000) -> None:
        self.url = "memory://"
        self.clock = clock or LiveClock()
        self._data: dict[str, tuple[bytes, int | None]] = {}
        self._fences: dict[str, int] = defaultdict(int)
        self._subs: dict[str, set[asyncio.Queue[tuple[str, bytes]]]] = defaultdict(set)
        self._queue_size = queue_size
        self.dropped = 0

    def _deadline(self, ttl: float | None) -> int | None:
        return None if ttl is None else self.clock.now_ns() + int(ttl * NS)

    def _live(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] is not None and item[1] <= self.clock.now_ns():
            del self._data[key]
            return None
        return item[0]

    async def close(self) -> None:
        self._data.clear()

    async def get(self, key: str) -> bytes | None:
        return self._live(key)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self._data[key] = (bytes(value), self._deadline(ttl))

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def acquire_lock(self, name: str, owner: str, ttl: float) -> int | None:
        held = self._live(f"lock:{name}")
        if held is not None and held.split(b"|")[0] != owner.encode():
            return None
        self._fences[name] += 1
        token = self._fences[name]
        self._data[f"lock:{name}"] = (f"{owner}|{token}".encode(), self._deadline(ttl))
        return token

    async def renew_lock(self, name: str, owner: str, token: int, ttl: float) -> bool:
        if self._live(f"lock:{name}") != f"{owner}|{token}".encode():
            return False
        self._data[f"lock:{name}"] = (f"{owner}|{token}".encode(), self._deadline(ttl))
        return True

    async def release_lock(self, name: str, owner: str, token: int) -> bool:
        if self._live(f"lock:{name}") != f"{owner}|{token}".encode():
            return False
        del self._data[f"lock:{name}"]
        return True

    async def check_fence(self, name: str, token: int) -> bool:
        held = self._live(f"lock:{name}")
        return held is not None and held.split(b"|")[1] == str(token).encode()

    async def incr_window(self, key: str, window_id: int, amount: int = 1,
                          ttl: float = 120.0) -> int:
        k = f"rl:{key}:{window_id}"
        total = int(self._live(k) or b"0") + amount
        old = self._data.get(k)
        self._data[k] = (str(total).encode(), old[1] if old else self._deadline(ttl))
        return total

    async def publish(self, channel: str, message: bytes) -> int:
        subs = self._subs.get(channel, set())
        for q in subs:
            if q.full():
                q.get_nowait()
                self.dropped += 1
            q.put_nowait((channel, bytes(message)))
        return len(subs)

    def subscribe(self, *channels: str) -> Subscription:
        return _MemorySubscription(self, channels)


class _MemorySubscription:
    def __init__(self, cache: MemoryCache, channels: tuple[str, ...]) -> None:
        self._cache = cache
        self._channels = channels
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(cache._queue_size)

    async def __aenter__(self) -> _MemorySubscription:
        for ch in self._channels:
            self._cache._subs[ch].add(self._queue)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for ch in self._channels:
            self._cache._subs[ch].discard(self._queue)

    async def __aiter__(self) -> AsyncIterator[tuple[str, bytes]]:
        while True:
            yield await self._queue.get()


@asynccontextmanager
async def cache_session(url: str, clock: Clock | None = None) -> AsyncIterator[Cache]:
    cache = await open_cache(url, clock=clock)
    try:
        yield cache
    finally:
        await cache.close()


async def open_cache(url: str, *, clock: Clock | None = None) -> Cache:
    """Open the cache named by ``url`` (``memory://`` or ``redis://…``)."""
    scheme = scheme_of(url, "cache", ("memory", "redis", "rediss"))
    if scheme == "memory":
        return MemoryCache(clock)
    from jts.storage.cache_redis import RedisCache
    return await RedisCache.open(url)
