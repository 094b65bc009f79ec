"""Cache contract on the in-process backend and on a real Redis server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from jts.clock import FakeClock
from jts.errors import StorageError
from jts.storage.cache import (
    FILLS,
    TICKS,
    Cache,
    MemoryCache,
    decode_fill,
    decode_tick,
    last_price,
    open_cache,
    publish_fill,
    publish_tick,
    set_last_price,
)
from jts.types import Fill, Side, Tick

CLOCK_T0 = 1_700_000_000_000_000_000


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    if request.param == "memory":
        c: Cache = MemoryCache(FakeClock(CLOCK_T0))
    else:
        c = await open_cache(request.getfixturevalue("redis_url"))
    yield c
    await c.close()


def tick(price: float = 70000.0) -> Tick:
    return Tick("krx", "005930", CLOCK_T0, CLOCK_T0 + 5, price, 10.0, 1)


async def test_get_set_delete(cache: Cache) -> None:
    assert await cache.get("k") is None
    await cache.set("k", b"v1")
    assert await cache.get("k") == b"v1"
    await cache.delete("k")
    assert await cache.get("k") is None


async def test_last_price_round_trip(cache: Cache) -> None:
    await set_last_price(cache, tick(70100.0))
    got = await last_price(cache, "krx", "005930")
    assert got == tick(70100.0)
    assert await last_price(cache, "krx", "000660") is None


async def test_lock_excludes_second_owner_and_fences_grow(cache: Cache) -> None:
    t1 = await cache.acquire_lock("acct:paper:1", "daemon-a", ttl=30)
    assert t1 is not None
    assert await cache.acquire_lock("acct:paper:1", "daemon-b", ttl=30) is None
    assert await cache.check_fence("acct:paper:1", t1)
    assert await cache.renew_lock("acct:paper:1", "daemon-a", t1, ttl=30)
    assert not await cache.renew_lock("acct:paper:1", "daemon-b", t1, ttl=30)
    assert not await cache.release_lock("acct:paper:1", "daemon-b", t1)
    assert await cache.release_lock("acct:paper:1", "daemon-a", t1)
    t2 = await cache.acquire_lock("acct:paper:1", "daemon-b", ttl=30)
    assert t2 is not None and t2 > t1
    assert not await cache.check_fence("acct:paper:1", t1)      # a's old token is dead
    assert not await cache.renew_lock("acct:paper:1", "daemon-a", t1, ttl=30)


async def test_rate_limit_windows_count_separately(cache: Cache) -> None:
    assert await cache.incr_window("kis:app1", 100) == 1
    assert await cache.incr_window("kis:app1", 100, 4) == 5
    assert await cache.incr_window("kis:app1", 101) == 1


async def test_pubsub_ticks_and_fills(cache: Cache) -> None:
    f = Fill("paper", "a", "t1", "c1", "005930", Side.BUY, Decimal(1), Decimal("70000"),
             Decimal(0), Decimal(0), CLOCK_T0)
    async with cache.subscribe(TICKS, FILLS) as sub:
        assert await publish_tick(cache, tick()) == 1
        assert await publish_fill(cache, f) == 1
        got: list[tuple[str, bytes]] = []

        async def take() -> None:
            async for item in sub:
                got.append(item)
                if len(got) == 2:
                    return
        await asyncio.wait_for(take(), timeout=10)
    assert [ch for ch, _ in got] == [TICKS, FILLS]
    assert decode_tick(got[0][1]) == tick() and decode_fill(got[1][1]) == f


async def test_memory_expiry_follows_the_clock() -> None:
    clock = FakeClock(CLOCK_T0)
    c = MemoryCache(clock)
    await c.set("tok", b"x", ttl=10)
    token = await c.acquire_lock("acct", "a", ttl=5)
    assert token is not None
    clock.advance(6)
    assert await c.acquire_lock("acct", "b", ttl=5) == token + 1   # a's lock expired
    assert not await c.check_fence("acct", token)
    assert await c.get("tok") == b"x"
    clock.advance(5)
    assert await c.get("tok") is None


async def test_redis_ttls_are_set_on_the_server(redis_url: str, redis_prefix: str) -> None:
    import redis.asyncio as aioredis
    c = await open_cache(redis_url)
    raw = aioredis.from_url(redis_url.split("?")[0])
    try:
        await c.set("tok", b"x", ttl=10)
        await c.acquire_lock("acct", "a", ttl=5)
        await c.incr_window("w", 7, ttl=2)
        assert 0 < await raw.pttl(redis_prefix + "tok") <= 10_000
        assert 0 < await raw.pttl(redis_prefix + "lock:acct") <= 5_000
        assert 0 < await raw.pttl(redis_prefix + "rl:w:7") <= 2_000
        await raw.delete(redis_prefix + "lock:acct")        # what expiry does on the server
        assert await c.acquire_lock("acct", "b", ttl=5) == 2
    finally:
        await raw.aclose()
        await c.close()


async def test_rate_limit_state_survives_reconnect(redis_url: str) -> None:
    c = await open_cache(redis_url)
    await c.incr_window("binance:ip", 42, 10)
    await c.close()
    c = await open_cache(redis_url)                    # a restarted daemon
    try:
        assert await c.incr_window("binance:ip", 42) == 11
    finally:
        await c.close()


async def test_bad_cache_urls() -> None:
    with pytest.raises(StorageError, match="cache store: unsupported URL"):
        await open_cache("memcached://x")
    with pytest.raises(StorageError, match=r"cache store redis://:\*\*\*@127.0.0.1:1/0: cannot"):
        await open_cache("redis://:hunter2@127.0.0.1:1/0")
