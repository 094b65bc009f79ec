"""Live mode pieces against the simulator: build_live, REST warm-up, polling beyond the
WebSocket cap, stream gaps filled from minute bars, token and order memory in the cache."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from brokers.kis import wire
from brokers.kis.config import KisConfig
from brokers.kis.daemon import LiveKisBroker, build_live
from brokers.kis.feed import MINUTE, KisFeed, bar_prints
from brokers.kis.memory import CacheTokenStore, LazyCache, OrderMemory, Remembered
from brokers.kis.simulator import SimSettings
from brokers.kis.ws import StreamGap
from jts.bars import BarBuilder
from jts.clock import NS, FakeClock
from jts.config import BrokersConfig, Config, DaemonConfig, MarketConfig
from jts.errors import ConfigError
from jts.storage.cache import MemoryCache
from jts.types import Bar, OrderRequest, OrderStatus, OrderType, Side, Tick
from tests.brokers.kis.conftest import ACCOUNT, APP_KEY, APP_SECRET, HTS, START, Env, make_env

WATCH = ["005930", "000660", "035420"]
SECRETS = {"KIS_APP_KEY": APP_KEY, "KIS_APP_SECRET": APP_SECRET, "KIS_ACCOUNT": ACCOUNT,
           "KIS_HTS_ID": HTS}


def config(env: Env, **market: object) -> Config:
    kis = KisConfig({"main": env.cfg})
    return Config(daemon=DaemonConfig(mode="live"),
                  market=MarketConfig(**{"feed": "kis", "watchlist": WATCH,  # type: ignore[arg-type]
                                         "history_bars": 30, **market}),
                  brokers=BrokersConfig(kis=kis))


async def settle(pred: object, n: int = 3000) -> None:
    assert callable(pred)
    for _ in range(n):
        if pred():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


@pytest.fixture
async def live(env: Env) -> AsyncIterator[tuple[LiveKisBroker, KisFeed]]:
    broker, feed = build_live(config(env), env.clock, env=SECRETS)
    await broker.connect()
    yield broker, feed
    await broker.close()


async def test_build_live_warms_up_from_rest_minute_bars(
        live: tuple[LiveKisBroker, KisFeed], env: Env) -> None:
    broker, feed = live
    assert broker.account == "main" and feed.symbols == WATCH
    hist = feed.history(30, env.clock.now_ns(), "1m")
    assert set(hist) == set(WATCH)
    for bars in hist.values():
        assert len(bars) == 30
        assert bars[-1].ts_ns + MINUTE <= env.clock.now_ns()
        assert all(b.ts_ns - a.ts_ns == MINUTE for a, b in itertools.pairwise(bars))
    assert feed.prev_close("005930") == env.sim.venue.market.quotes["005930"].prev_close
    assert broker.limiter.stats().lanes["background"].granted >= 3
    with pytest.raises(ConfigError, match="1m"):
        feed.history(5, env.clock.now_ns(), "5m")


@pytest.mark.parametrize(("market", "key"), [({"feed": "sim"}, "market.feed"),
                                             ({"watchlist": []}, "market.watchlist")])
async def test_build_live_config_errors(env: Env, market: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_live(config(env, **market), env.clock, env=SECRETS)
    assert info.value.key == key


async def test_build_live_names_a_missing_secret(env: Env) -> None:
    with pytest.raises(ConfigError, match="KIS_APP_SECRET is not set"):
        build_live(config(env), env.clock, env={**SECRETS, "KIS_APP_SECRET": ""})


async def test_symbols_beyond_the_cap_are_polled() -> None:
    env = await make_env(SimSettings(domain="virtual", rate_limit=1000, auto_step=False,
                                     ping_interval=0), ws_max_subscriptions=2)
    broker, feed = build_live(config(env), env.clock, env=SECRETS)
    await broker.connect()
    it = feed.stream(env.clock).__aiter__()
    task = asyncio.ensure_future(it.__anext__())
    try:
        await settle(lambda: feed.polled)
        assert feed.streamed == ["005930"] and feed.polled == ["000660", "035420"]
        assert feed.status()["polled"] == ["000660", "035420"]
        await settle(lambda: feed.counters["polls"] >= 1)
        # a second feed without a running stream, so no background poll races this one
        quiet = KisFeed(broker, WATCH)
        polled = ["000660", "035420"]
        assert await quiet.poll_once(polled, env.clock.now_ns()) == []   # the baseline
        quotes = env.sim.venue.market.quotes
        before = {s: quotes[s].volume for s in polled}
        for _ in range(60):
            env.sim.step()
        ticks = await quiet.poll_once(polled, env.clock.now_ns())
        moved = {s for s in polled if quotes[s].volume > before[s]}
        assert moved and {t.symbol for t in ticks} == moved
        for t in ticks:
            assert t.price == quotes[t.symbol].price
            assert t.volume == quotes[t.symbol].volume - before[t.symbol]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await it.aclose()                  # type: ignore[attr-defined]
        await broker.close()
        await env.server.close()


def rebuild(ticks: list[Tick]) -> list[Bar]:
    bb = BarBuilder("1m")
    return bb.add(ticks) + bb.close_until(ticks[-1].ts_ns + 10 * MINUTE)


async def test_gap_is_filled_with_prints_that_rebuild_the_missing_bars(
        live: tuple[LiveKisBroker, KisFeed], env: Env) -> None:
    broker, feed = live
    now = env.clock.now_ns()
    last_seen = now - 20 * MINUTE + 30 * NS           # a print at 09:40:30, then silence
    feed._put([Tick("krx", "005930", last_seen, last_seen, 70_000.0, 1.0)])
    gap = StreamGap(last_seen + NS, now - 5 * MINUTE + 10 * NS,
                    ((wire.WS_TRADE, "005930"), (wire.WS_NOTICE_VIRTUAL, HTS)))
    prints = await feed.fill_gap(gap)
    rest = [b for b in await broker.minute_bars("005930", "100000")
            if last_seen - last_seen % MINUTE < b.ts_ns < now - 5 * MINUTE]
    assert len(rest) == 14                            # 09:41 .. 09:54
    assert _same(rebuild(prints), rest)
    assert feed.counters["gap_bars"] == 14


def _same(a: list[Bar], b: list[Bar]) -> bool:
    return [(x.ts_ns, x.open, x.high, x.low, x.close, x.volume) for x in a] == \
           [(x.ts_ns, x.open, x.high, x.low, x.close, x.volume) for x in b]


async def test_stream_yields_gap_prints_in_order(live: tuple[LiveKisBroker, KisFeed],
                                                 env: Env) -> None:
    broker, feed = live
    assert broker.stream is not None
    it = feed.stream(env.clock).__aiter__()
    now = env.clock.now_ns()
    broker.stream.market.put_nowait(StreamGap(now - 4 * MINUTE, now,
                                              ((wire.WS_TRADE, "000660"),)))
    batch = await asyncio.wait_for(it.__anext__(), 5)
    assert {t.symbol for t in batch} == {"000660"} and len(batch) == 4 * 3
    assert [t.ts_ns for t in batch] == sorted(t.ts_ns for t in batch)
    await it.aclose()                      # type: ignore[attr-defined]


def test_bar_prints_rebuild_a_falling_bar() -> None:
    bar = Bar("X", "1m", 60 * NS * 1000, 100.0, 104.0, 95.0, 96.0, 40.0, 3960.0)
    assert _same(rebuild(bar_prints(bar, 0)), [bar])


async def test_token_store_over_the_cache() -> None:
    clock = FakeClock(START)
    cache = LazyCache("memory://", clock=clock)
    store = CacheTokenStore(cache, clock=clock)
    assert await store.get("k") is None
    await store.set("k", "tok|with|bars", START + 100 * NS)
    assert await store.get("k") == ("tok|with|bars", START + 100 * NS)
    clock.advance(101)
    assert await store.get("k") is None                   # expired with the token
    raw = await cache.get()
    await raw.set("k", b"garbage")
    assert await store.get("k") is None
    await store.set("k", "x", START + 10_000 * NS)
    await store.delete("k")
    assert await store.get("k") is None
    await cache.close()


async def test_order_memory_prunes_and_survives_garbage() -> None:
    clock = FakeClock(START)
    shared = MemoryCache(clock)

    async def opener(_url: str) -> MemoryCache:
        return shared
    mem = OrderMemory(LazyCache("memory://", clock=clock, opener=opener), "kis:o", clock=clock)
    o = OrderRequest("c1", "kis", "main", "005930", Side.BUY, Decimal(2))
    await mem.save([Remembered("c1", "0000000001", "91252", o, Decimal(1), START),
                    Remembered("c0", "0000000000", "91252", o, Decimal(0), START - 3 * 86_400 * NS),
                    Remembered("cx", "", "", o, Decimal(0), START)])
    assert [r.client_order_id for r in await mem.load()] == ["c1"]
    await shared.set("kis:o", b"{not json")
    assert await mem.load() == [] and mem.errors == 1


class KeptCache(MemoryCache):
    """An in-process cache that outlives its users (as a Redis server does)."""

    async def close(self) -> None:
        pass


async def test_restarted_broker_remembers_orders(env: Env) -> None:
    clock = env.clock
    cache = KeptCache(clock)

    async def opener(_url: str) -> MemoryCache:
        return cache

    def make() -> LiveKisBroker:
        lazy = LazyCache("memory://", clock=clock, opener=opener)
        return LiveKisBroker(env.cfg, env.creds, cache=lazy, account="main", clock=clock,
                             token_store=CacheTokenStore(lazy, clock=clock),
                             memory=OrderMemory(lazy, "kis:orders", clock=clock))

    first = make()
    await first.connect()
    req = OrderRequest("r1", "kis", "main", "005930", Side.BUY, Decimal(2), OrderType.LIMIT,
                       Decimal(60_000))
    ack = await first.submit(req)
    await first.close()
    second = make()                                   # a restart with the same cache
    await second.connect()
    assert second.auth.issued == 0                     # the token came from the cache
    ev = await second.query_order("r1")
    assert ev is not None and ev.broker_order_id == ack.broker_order_id
    assert (await second.cancel("r1")).status is OrderStatus.CANCELLED
    await second.close()
