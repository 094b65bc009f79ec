"""KisBroker against the simulator over loopback: auth, quotes, charts, paging, orders."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal

import pytest

from brokers.kis import wire
from brokers.kis.auth import MemoryTokenStore
from brokers.kis.broker import KisBroker
from brokers.kis.simulator import SimSettings
from jts.calendar import KrxCalendar
from jts.clock import NS
from jts.errors import AuthError, OrderOutcomeUnknown
from jts.types import OrderRequest, OrderStatus, OrderType, Side
from tests.brokers.kis.conftest import Env, make_env, run


def order(coid: str, qty: int, *, side: Side = Side.BUY, price: int | None = None,
          symbol: str = "005930") -> OrderRequest:
    return OrderRequest(coid, "kis", "main", symbol, side, Decimal(qty),
                        OrderType.LIMIT if price else OrderType.MARKET,
                        Decimal(price) if price else None)


@pytest.fixture
async def broker(env: Env) -> KisBroker:
    b = env.broker(stream=False)
    await b.connect()
    yield b
    await b.close()


async def test_token_cached_across_restart_and_never_twice_a_minute(env: Env) -> None:
    store = MemoryTokenStore()
    a = env.broker(stream=False, token_store=store)
    await a.connect()
    await a.close()
    b = env.broker(stream=False, token_store=store)      # a restart: same cache
    await b.connect()
    assert env.sim.venue.stats.tokens_issued == 1 and b.auth.issued == 0
    token = (await store.get(next(k for k in store.data if not k.endswith(":issued"))))
    assert token is not None
    env.sim.venue.revoke(token[0])                       # revoked mid-session
    q = await run(env.clock, b.quote("005930"))
    assert q.price > 0
    assert env.sim.venue.stats.tokens_issued == 2
    assert env.sim.venue.stats.token_throttled == 0      # it waited out the minute
    assert b.rest.counters["token_refreshed"] == 1
    await b.close()


async def test_expired_token_refreshed_on_egw00123(env: Env) -> None:
    store = MemoryTokenStore()
    b = env.broker(stream=False, token_store=store)
    await b.connect()
    key = next(k for k in store.data if not k.endswith(":issued"))
    value, _ = store.data[key]
    env.clock.advance(86_400 + 120)                      # KIS expired it ...
    store.data[key] = (value, env.clock.now_ns() + 10 * 86_400 * NS)   # ... our cache did not
    assert (await run(env.clock, b.quote("005930"))).price > 0
    assert b.rest.counters["token_refreshed"] == 1
    await b.close()


async def test_quotes_and_ranks(broker: KisBroker, env: Env) -> None:
    q = await broker.quote("005930")
    assert q.symbol == "005930" and q.price > 0 and q.upper_limit > q.price > q.lower_limit
    symbols = list(broker.rest.cfg and ["005930", "000660", "035420", "035720"])
    qs = await broker.quotes(symbols)
    assert [x.symbol for x in qs] == symbols
    for _ in range(5):
        env.sim.step()
    by_volume = await broker.ranking("volume")
    assert len(by_volume) == 10 and by_volume[0].volume > 0
    assert [q.volume for q in by_volume] == sorted((q.volume for q in by_volume), reverse=True)
    by_change = await broker.ranking("change")
    assert [q.change_pct for q in by_change] == sorted((q.change_pct for q in by_change),
                                                       reverse=True)


async def test_daily_chart_pages_back(broker: KisBroker) -> None:
    bars = await broker.daily_bars("005930", date(2025, 6, 2), date(2026, 3, 9))
    cal = KrxCalendar()
    sessions = sum(1 for n in range(date(2025, 6, 2).toordinal(), date(2026, 3, 9).toordinal()
                                    + 1) if cal.session_bounds(date.fromordinal(n)))
    assert len(bars) == sessions > 100                    # needed several 100-row pages
    assert all(a.ts_ns < b.ts_ns for a, b in itertools.pairwise(bars))
    assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in bars)


async def test_minute_chart_pages_back(broker: KisBroker) -> None:
    bars = await broker.minute_bars("005930", "100000")
    assert len(bars) == 60                                # 09:00..09:59, 30 per call
    assert all(b.ts_ns - a.ts_ns == 60 * NS for a, b in itertools.pairwise(bars))


async def test_balance_follows_tr_cont_pages() -> None:
    held = {code: (i + 1, 10_000) for i, code in enumerate(
        ["005930", "000660", "035420", "035720", "005380", "068270", "105560"])}
    env = await make_env(SimSettings(domain="virtual", rate_limit=1000, balance_rows=3,
                                     auto_step=False, ping_interval=0), positions=held)
    try:
        b = env.broker(stream=False)
        await b.connect()
        pos = await b.positions()
        assert {p.symbol: p.quantity for p in pos} == {k: Decimal(v[0]) for k, v in held.items()}
        assert (await b.balance()).cash == Decimal(50_000_000)
        assert b.rest.counters["requests"] == 6           # 3 pages each
        await b.close()
    finally:
        await env.server.close()


async def test_market_order_accepted_and_queryable(broker: KisBroker, env: Env) -> None:
    ack = await broker.submit(order("c1", 5))
    assert ack.status is OrderStatus.ACCEPTED and len(ack.broker_order_id) == 10
    ev = await broker.query_order("c1")
    assert ev is not None and ev.status is OrderStatus.FILLED and ev.filled_quantity == 5
    pos = {p.symbol: p.quantity for p in await broker.positions()}
    assert pos["005930"] == 15
    assert await broker.query_order("never-sent") is None


async def test_limit_order_rests_then_cancel(broker: KisBroker) -> None:
    ack = await broker.submit(order("c2", 3, price=60_000))
    assert ack.status is OrderStatus.ACCEPTED
    assert [o.client_order_id for o in await broker.open_orders()] == ["c2"]
    cancelled = await broker.cancel("c2")
    assert cancelled.status is OrderStatus.CANCELLED
    ev = await broker.query_order("c2")
    assert ev is not None and ev.status is OrderStatus.CANCELLED
    assert await broker.open_orders() == []


@pytest.mark.parametrize(("req", "why"), [
    (order("r1", 10_000), "insufficient cash"),
    (order("r2", 1, price=70_001), "tick size"),
    (order("r3", 1, price=10_000), "daily limits"),
    (order("r4", 11, side=Side.SELL), "insufficient qty"),
])
async def test_rejections_are_values(broker: KisBroker, req: OrderRequest, why: str) -> None:
    ev = await broker.submit(req)
    assert ev.status is OrderStatus.REJECTED and why in ev.reason


async def test_lost_answer_is_unknown_then_resolved(env: Env) -> None:
    b = KisBroker(env.cfg.__class__(**{**_fields(env), "request_timeout": 0.2}), env.creds,
                  clock=env.clock, account="main", stream=False)
    await b.connect()
    env.sim.inject(wire.ORDER_CASH, "hang1")
    with pytest.raises(OrderOutcomeUnknown):
        await b.submit(order("u1", 2))
    ev = await b.query_order("u1")                       # asks, never resubmits
    assert ev is not None and ev.status is OrderStatus.FILLED
    assert sum(len(a.orders) for a in env.sim.venue.book.accounts.values()) == 1
    await b.close()


async def test_html_error_page_on_read_is_retried(broker: KisBroker, env: Env) -> None:
    env.sim.inject(wire.PRICE, "html502", "html502")
    q = await run(env.clock, broker.quote("005930"))
    assert q.price > 0 and broker.rest.counters["transient"] == 2


async def test_domain_mixup_reported_clearly() -> None:
    env = await make_env(SimSettings(domain="real", auto_step=False, ping_interval=0),
                         app_domain="virtual")
    try:
        b = env.broker(stream=False)
        with pytest.raises(AuthError, match="real/virtual mix-up") as info:
            await b.connect()
        assert info.value.code == wire.DOMAIN_MISMATCH
        await b.close()
    finally:
        await env.server.close()


async def test_rate_limit_respected_and_egw00201_backed_off() -> None:
    env = await make_env(SimSettings(domain="virtual", auto_step=False, ping_interval=0),
                         rate_limit=2)
    try:
        store = MemoryTokenStore()
        b = env.broker(stream=False, token_store=store)
        await b.connect()
        qs = await run(env.clock, _many_quotes(b, 8))
        assert len(qs) == 8 and env.sim.venue.stats.rate_rejected == 0
        await b.close()
        greedy = KisBroker(env.cfg.__class__(**{**_fields(env), "rate_limit": 6}), env.creds,
                           clock=env.clock, account="main", stream=False, token_store=store)
        await greedy.connect()
        qs = await run(env.clock, _many_quotes(greedy, 12))
        assert len(qs) == 12                              # every read eventually answered
        assert greedy.limiter.stats().venue_limited > 0
        assert greedy.rest.counters["rate_limited"] == env.sim.venue.stats.rate_rejected
        await greedy.close()
    finally:
        await env.server.close()


async def _many_quotes(b: KisBroker, n: int) -> list[object]:
    import asyncio
    return list(await asyncio.gather(*(b.quote("005930") for _ in range(n))))


def _fields(env: Env) -> dict[str, object]:
    return {f: getattr(env.cfg, f) for f in env.cfg.__struct_fields__}
