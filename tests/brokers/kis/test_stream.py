"""KIS WebSocket client against the simulator: ticks, notices, cap, reconnect, PINGPONG."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest

from brokers.kis import parse, wire
from brokers.kis.broker import KisBroker
from brokers.kis.simulator import SimSettings
from brokers.kis.ws import KisStream, StreamGap
from jts.types import Fill, OrderEvent, OrderRequest, OrderStatus, OrderType, Side, Tick
from tests.brokers.kis.conftest import Env, drive, make_env, next_of


async def settle(pred: Callable[[], bool], n: int = 5000) -> None:
    """Yield to the loop (loopback I/O included) until ``pred`` holds."""
    for _ in range(n):
        if pred():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


async def connected(env: Env, **settings: object) -> AsyncIterator[tuple[Env, KisBroker]]:
    b = env.broker()
    await b.connect()
    assert b.stream is not None
    await asyncio.wait_for(b.stream.connected.wait(), 5)
    await settle(lambda: bool(b.stream and b.stream.active))       # notice registration
    yield env, b
    await b.close()


@pytest.fixture
async def live(env: Env) -> AsyncIterator[tuple[Env, KisBroker]]:
    async for pair in connected(env):
        yield pair


async def ticks_for(env: Env, stream: KisStream, n: int) -> list[Tick]:
    got: list[Tick] = []
    for _ in range(50):
        env.sim.step()
        for _ in range(200):
            await asyncio.sleep(0)
        while not stream.market.empty():
            ev = stream.market.get_nowait()
            if isinstance(ev, Tick):
                got.append(ev)
        if len(got) >= n:
            return got
    raise AssertionError(f"only {len(got)} ticks")


async def test_trade_ticks_stream_and_unsubscribe(live: tuple[Env, KisBroker]) -> None:
    env, b = live
    s = b.stream
    assert s is not None
    for code in ("005930", "000660", "035420"):
        assert await s.subscribe(wire.WS_TRADE, code)
    await settle(lambda: len(s.active) == 4)
    ticks = await ticks_for(env, s, 10)
    assert {t.symbol for t in ticks} <= {"005930", "000660", "035420"}
    assert all(t.price > 0 and t.volume > 0 and t.venue == "krx" for t in ticks)
    assert env.sim.hub.frames_sent > 0
    await s.unsubscribe(wire.WS_TRADE, "000660")
    await settle(lambda: len(s.active) == 3)
    assert (wire.WS_TRADE, "000660") not in s.wanted


async def test_order_book_frames(live: tuple[Env, KisBroker]) -> None:
    env, b = live
    s = b.stream
    assert s is not None
    await s.subscribe(wire.WS_BOOK, "005930")
    await settle(lambda: (wire.WS_BOOK, "005930") in s.active)
    for _ in range(30):
        env.sim.step()
        for _ in range(100):
            await asyncio.sleep(0)
        books = [e for e in list(s.market._queue) if isinstance(e, parse.Book)]
        if books:
            assert books[0].asks[0][0] > books[0].bids[0][0]
            assert len(books[0].asks) == 10
            return
    raise AssertionError("no book frame")


def buy(coid: str, qty: int) -> OrderRequest:
    return OrderRequest(coid, "kis", "main", "005930", Side.BUY, Decimal(qty),
                        OrderType.MARKET)


async def collect(b: KisBroker, n: int) -> list[Fill | OrderEvent]:
    out: list[Fill | OrderEvent] = []
    it = b.events()
    while len(out) < n:
        out.append(await asyncio.wait_for(it.__anext__(), 5))
    return out


async def test_encrypted_fill_notices_become_fills(live: tuple[Env, KisBroker]) -> None:
    env, b = live
    ack = await b.submit(buy("f1", 250))                # fills 100 now, then 100 + 50
    assert ack.status is OrderStatus.ACCEPTED
    first = await collect(b, 2)
    env.sim.step()
    env.sim.step()
    rest = await collect(b, 4)
    fills = [e for e in first + rest if isinstance(e, Fill)]
    assert [f.quantity for f in fills] == [100, 100, 50]
    assert [f.trade_id for f in fills] == [f"{ack.broker_order_id}:{q}" for q in (100, 200, 250)]
    events = [e for e in first + rest if isinstance(e, OrderEvent)]
    assert [e.status for e in events] == [OrderStatus.PARTIALLY_FILLED] * 2 + [OrderStatus.FILLED]
    assert all(f.client_order_id == "f1" and f.side is Side.BUY for f in fills)


async def test_cancel_notice(live: tuple[Env, KisBroker]) -> None:
    _env, b = live
    req = OrderRequest("c1", "kis", "main", "005930", Side.BUY, Decimal(2), OrderType.LIMIT,
                       Decimal(60_000))
    await b.submit(req)
    await b.cancel("c1")
    (ev,) = await collect(b, 1)
    assert isinstance(ev, OrderEvent) and ev.status is OrderStatus.CANCELLED


async def test_subscription_cap_reported() -> None:
    env = await make_env(SimSettings(domain="virtual", rate_limit=1000, auto_step=False,
                                     ping_interval=0, max_subscriptions=3),
                         ws_max_subscriptions=4)
    try:
        async for _, b in connected(env):
            s = b.stream
            assert s is not None
            results = [await s.subscribe(wire.WS_TRADE, c)
                       for c in ("005930", "000660", "035420", "035720")]
            assert results == [True, True, True, False]       # client cap 4 incl. notices
            await settle(lambda c=s.counters: c["refused"] == 1)  # server cap 3 refused one
            assert s.unstreamed == {(wire.WS_TRADE, "035420"), (wire.WS_TRADE, "035720")}
            assert b.stats()["unstreamed"] == sorted(s.unstreamed)
    finally:
        await env.server.close()


async def test_reconnect_resubscribes_and_reports_gap(live: tuple[Env, KisBroker]) -> None:
    env, b = live
    s = b.stream
    assert s is not None
    await s.subscribe(wire.WS_TRADE, "005930")
    await settle(lambda: len(s.active) == 2)
    await env.sim.hub.close_all()
    await settle(lambda: not s.connected.is_set())
    await drive(env.clock, lambda: s.connected.is_set() and len(s.active) == 2, 30, 0.5)
    assert s.counters["reconnects"] == 1
    gap = await next_of(s.market)
    assert isinstance(gap, StreamGap) and gap.until_ns > gap.since_ns
    assert (wire.WS_TRADE, "005930") in gap.keys
    assert (await ticks_for(env, s, 1))[0].symbol == "005930"


async def test_pingpong_echo_keeps_session(live: tuple[Env, KisBroker]) -> None:
    env, b = live
    s = b.stream
    assert s is not None
    env.sim.ping()
    await settle(lambda: not env.sim.hub.sessions[0].ping_pending)
    env.sim.ping()
    await settle(lambda: s.counters["pings"] == 2)
    assert len(env.sim.hub.sessions) == 1 and s.counters["reconnects"] == 0


async def test_bad_frames_counted_not_fatal(live: tuple[Env, KisBroker]) -> None:
    env, b = live
    s = b.stream
    assert s is not None
    session = env.sim.hub.sessions[0]
    for junk in ("garbage", "0|H0STCNT0|002|a^b", "1|H0STCNI9|001|@@notbase64@@",
                 "0|H9XXXXX0|001|x", "{not json"):
        session.push(junk)
    await settle(lambda: s.counters["bad_frames"] == 5)
    assert s.counters["undecryptable"] == 1
    await s.subscribe(wire.WS_TRADE, "005930")
    await settle(lambda: len(s.active) == 2)
    assert await ticks_for(env, s, 1)
