"""Redis cache backend: keys under a prefix (``?prefix=`` in the URL, default ``jts:``), locks
and fencing tokens as small Lua scripts (atomic on the server), rate-limit windows as
``INCRBY`` + ``EXPIRE`` (so they survive a daemon restart), pub/sub on prefixed channels."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from jts.errors import StorageError
from jts.storage.urls import redact

log = structlog.get_logger(__name__)

_ACQUIRE = """
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, string.len(ARGV[1]) + 1) ~= ARGV[1] .. '|' then return nil end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. token, 'PX', ARGV[2])
return token
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_INCR_WINDOW = """
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return n
"""


class RedisCache:
    """Cache on a Redis server."""

    def __init__(self, url: str, client: Any, prefix: str) -> None:
        self.url = url
        self._r = client
        self.prefix = prefix
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._incr = client.register_script(_INCR_WINDOW)

    @classmethod
    async def open(cls, url: str) -> RedisCache:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        prefix = query.pop("prefix", ["jts:"])[0]
        clean = urlunsplit(parts._replace(query="&".join(f"{k}={v[0]}" for k, v in query.items())))
        client: Any = aioredis.from_url(clean, socket_connect_timeout=5)
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise StorageError(f"cache store {redact(url)}: cannot connect: "
                               f"{type(exc).__name__}: {exc}") from None
        log.info("cache_opened", backend="redis", url=redact(url), prefix=prefix)
        return cls(url, client, prefix)

    def _k(self, key: str) -> str:
        return self.prefix + key

    async def _do(self, coro: Any) -> Any:
        try:
            return await coro
        except (RedisError, OSError) as exc:
            raise StorageError(f"cache store {redact(self.url)}: {type(exc).__name__}: "
                               f"{exc}") from exc

    async def close(self) -> None:
        await self._r.aclose()

    async def get(self, key: str) -> bytes | None:
        out: bytes | None = await self._do(self._r.get(self._k(key)))
        return out

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        px = None if ttl is None else max(1, int(ttl * 1000))
        await self._do(self._r.set(self._k(key), value, px=px))

    async def delete(self, key: str) -> None:
        await self._do(self._r.delete(self._k(key)))

    async def acquire_lock(self, name: str, owner: str, ttl: float) -> int | None:
        token = await self._do(self._acquire(
            keys=[self._k(f"lock:{name}"), self._k(f"fence:{name}")],
            args=[owner, max(1, int(ttl * 1000))]))
        return None if token is None else int(token)

    async def renew_lock(self, name: str, owner: str, token: int, ttl: float) -> bool:
        return bool(await self._do(self._renew(keys=[self._k(f"lock:{name}")],
                                               args=[f"{owner}|{token}",
                                                     max(1, int(ttl * 1000))])))

    async def release_lock(self, name: str, owner: str, token: int) -> bool:
        return bool(await self._do(self._release(keys=[self._k(f"lock:{name}")],
                                                 args=[f"{owner}|{token}"])))

    async def check_fence(self, name: str, token: int) -> bool:
        held = await self._do(self._r.get(self._k(f"lock:{name}")))
        return held is not None and bytes(held).rsplit(b"|", 1)[1] == str(token).encode()

    async def incr_window(self, key: str, window_id: int, amount: int = 1,
                          ttl: float = 120.0) -> int:
        return int(await self._do(self._incr(keys=[self._k(f"rl:{key}:{window_id}")],
                                             args=[amount, max(1, int(ttl * 1000))])))

    async def publish(self, channel: str, message: bytes) -> int:
        return int(await self._do(self._r.publish(self._k(channel), message)))

    def subscribe(self, *channels: str) -> _RedisSubscription:
        return _RedisSubscription(self, channels)


class _RedisSubscription:
    def __init__(self, cache: RedisCache, channels: tuple[str, ...]) -> None:
        self._cache = cache
        self._channels = [cache._k(c) for c in channels]
        self._ps: Any = None

    async def __aenter__(self) -> _RedisSubscription:
        self._ps = self._cache._r.pubsub()
        await self._cache._do(self._ps.subscribe(*self._channels))
        confirmed = 0                    # wait for the server's confirmations: after this,
        while confirmed < len(self._channels):   # nothing published can be missed
            msg = await self._cache._do(self._ps.get_message(timeout=5.0))
            if msg is None:
                raise StorageError(f"cache store {redact(self._cache.url)}: subscribe "
                                   "was not confirmed")
            confirmed += msg.get("type") == "subscribe"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._ps.unsubscribe()
        await self._ps.aclose()

    async def __aiter__(self) -> AsyncIterator[tuple[str, bytes]]:
        n = len(self._cache.prefix)
        async for msg in self._ps.listen():
            if msg.get("type") == "message":
                yield bytes(msg["channel"])[n:].decode(), bytes(msg["data"])
