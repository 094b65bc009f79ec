"""What a KIS account adapter keeps in the daemon's cache store across restarts.

* :class:`CacheTokenStore` — the :class:`brokers.kis.auth.TokenStore` over
  :mod:`jts.storage.cache` (``memory://`` or ``redis://``), so with Redis a restarted daemon
  reuses its access token instead of issuing a new one (KIS allows one a minute and sends
  the user a KakaoTalk message for each).
* :class:`OrderMemory` — client order id → ``ODNO`` (and the order's terms) for today's
  orders. KIS never sees our client order ids, so without it a fill notice for an order
  sent before a restart could not be attributed.

The cache is opened lazily (``build_live`` is synchronous) and shared by both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from decimal import Decimal

import msgspec
import structlog

from jts.clock import NS, Clock
from jts.errors import StorageError
from jts.storage.cache import Cache, open_cache
from jts.types import OrderRequest

log = structlog.get_logger(__name__)
Opener = Callable[[str], Awaitable[Cache]]


class LazyCache:
    """The daemon's cache store, opened on first use and closed once."""

    def __init__(self, url: str, *, clock: Clock, opener: Opener | None = None) -> None:
        self.url = url
        self._clock = clock
        self._opener = opener
        self._cache: Cache | None = None

    async def get(self) -> Cache:
        if self._cache is None:
            if self._opener is not None:
                self._cache = await self._opener(self.url)
            else:
                self._cache = await open_cache(self.url, clock=self._clock)
        return self._cache

    async def close(self) -> None:
        if self._cache is not None:
            cache, self._cache = self._cache, None
            await cache.close()


class CacheTokenStore:
    """``TokenStore`` over the cache: ``"<expires_ns>|<value>"`` with a matching TTL."""

    def __init__(self, cache: LazyCache, *, clock: Clock) -> None:
        self._cache = cache
        self._clock = clock

    async def get(self, key: str) -> tuple[str, int] | None:
        raw = await (await self._cache.get()).get(key)
        if raw is None:
            return None
        expires, sep, value = raw.decode(errors="replace").partition("|")
        if not sep or not expires.isdigit():
            log.warning("kis_token_cache_malformed", key=key)
            return None
        return value, int(expires)

    async def set(self, key: str, value: str, expires_ns: int) -> None:
        ttl = max(1.0, (expires_ns - self._clock.now_ns()) / NS)
        await (await self._cache.get()).set(key, f"{expires_ns}|{value}".encode(), ttl)

    async def delete(self, key: str) -> None:
        await (await self._cache.get()).delete(key)


class Remembered(msgspec.Struct, frozen=True):
    """One order the adapter has sent (and KIS accepted)."""

    client_order_id: str
    odno: str
    orgno: str
    order: OrderRequest
    filled: Decimal
    sent_ns: int


_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(list[Remembered])


class OrderMemory:
    """Today's orders of one account under one cache key (a JSON list, rewritten whole)."""

    def __init__(self, cache: LazyCache, key: str, *, clock: Clock,
                 keep_s: float = 2 * 86_400.0) -> None:
        self._cache = cache
        self.key = key
        self._clock = clock
        self._keep_ns = int(keep_s * NS)
        self.saves = 0
        self.errors = 0

    async def load(self) -> list[Remembered]:
        """The remembered orders still young enough to matter; [] when the store fails
        (logged and counted — the adapter then falls back to matching by terms)."""
        try:
            raw = await (await self._cache.get()).get(self.key)
        except StorageError as e:
            self.errors += 1
            log.warning("kis_order_memory_unavailable", error=str(e))
            return []
        if raw is None:
            return []
        try:
            items = _dec.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            self.errors += 1
            log.warning("kis_order_memory_malformed", key=self.key, error=str(e)[:200])
            return []
        cutoff = self._clock.now_ns() - self._keep_ns
        return [r for r in items if r.sent_ns >= cutoff]

    async def save(self, items: Iterable[Remembered]) -> None:
        cutoff = self._clock.now_ns() - self._keep_ns
        keep = [r for r in items if r.odno and r.sent_ns >= cutoff]
        try:
            await (await self._cache.get()).set(self.key, _enc.encode(keep),
                                                self._keep_ns / NS + 86_400.0)
        except StorageError as e:
            self.errors += 1
            log.warning("kis_order_memory_save_failed", error=str(e))
            return
        self.saves += 1
