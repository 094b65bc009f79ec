"""The paper broker: fills, rejections, cancels, events, and cash/position reconciliation."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brokers.base import Broker
from brokers.paper import PaperBroker
from jts.clock import FakeClock, from_datetime
from jts.costs import CostModel
from jts.errors import BrokerUnavailable, OrderRejected
from jts.tick_batch import TickBatch
from jts.types import Fill, OrderEvent, OrderRequest, OrderStatus, OrderType, Side, Tick

T0 = from_datetime(datetime(2025, 6, 10, 10, 0))     # a Tuesday, KST; 2025 tax 0.15 %
SAMSUNG, KOSDAQ_SYM = "005930", "247540"


def tick(sym: str, price: float, dt_s: float = 0.0, vol: float = 10) -> Tick:
    ts = T0 + int(dt_s * 1e9)
    return Tick("krx", sym, ts, ts, price, vol)


def req(coid: str, side: Side, qty: int, sym: str = SAMSUNG, limit: int | None = None
        ) -> OrderRequest:
    return OrderRequest(coid, "paper", "paper-1", sym, side, D(qty),
                        OrderType.LIMIT if limit is not None else OrderType.MARKET,
                        D(limit) if limit is not None else None, strategy="t")


def broker(**kw: object) -> PaperBroker:
    kw.setdefault("initial_cash", D(10_000_000))
    return PaperBroker(clock=FakeClock(T0), **kw)  # type: ignore[arg-type]


def drain(b: PaperBroker) -> list[OrderEvent | Fill]:
    out: list[OrderEvent | Fill] = []
    while not b._events.empty():
        ev = b._events.get_nowait()
        assert ev is not None
        out.append(ev)
    return out


async def test_implements_the_broker_protocol() -> None:
    assert isinstance(broker(), Broker)


async def test_market_buy_fills_at_next_tick_with_slippage_and_costs() -> None:
    b = broker()
    b.on_tick(tick(SAMSUNG, 72000))
    ack = await b.submit(req("c1", Side.BUY, 10))
    assert ack.status is OrderStatus.ACCEPTED and ack.broker_order_id
    assert await b.positions() == []                     # nothing until the next print
    b.on_tick(tick(SAMSUNG, 72100, 1))
    evs = drain(b)
    assert [type(e).__name__ for e in evs] == ["OrderEvent", "Fill", "OrderEvent"]
    fill = evs[1]
    assert isinstance(fill, Fill)
    # 72100 * 1.0005 = 72136.05 -> tick 100, adverse (up) -> 72200
    assert fill.price == D(72200) and fill.quantity == D(10)
    assert fill.commission == D(108) and fill.tax == D(0)          # 722000 * 0.015 % = 108.3
    assert evs[2].status is OrderStatus.FILLED                      # type: ignore[union-attr]
    assert (await b.balance()).cash == D(10_000_000) - D(722_000) - D(108)
    [pos] = await b.positions()
    assert pos.quantity == D(10) and pos.avg_price == D(72200)


async def test_sell_pays_commission_and_tax_by_market() -> None:
    b = broker(fill_on="last")
    b.on_ticks([tick(SAMSUNG, 72000), tick(KOSDAQ_SYM, 198000)])
    await b.submit(req("b1", Side.BUY, 10))
    await b.submit(req("b2", Side.BUY, 10, KOSDAQ_SYM))
    await b.submit(req("s1", Side.SELL, 10))
    await b.submit(req("s2", Side.SELL, 10, KOSDAQ_SYM))
    fills = [e for e in drain(b) if isinstance(e, Fill)]
    s1, s2 = fills[2], fills[3]
    assert s1.price == D(71900) and s1.tax == D(1078)              # 719000 * 0.15 %
    assert s2.price == D(197900) and s2.tax == D(2968)             # 1,979,000 * 0.15 %
    assert len({f.trade_id for f in fills}) == 4
    assert await b.positions() == []
    assert b.realized_pnl == D(-2000) + D(-2000)


async def test_limit_orders_rest_until_crossed_and_can_be_cancelled() -> None:
    b = broker()
    b.on_tick(tick(SAMSUNG, 72000))
    await b.submit(req("l1", Side.BUY, 5, limit=71500))
    await b.submit(req("l2", Side.BUY, 5, limit=71000))
    b.on_tick(tick(SAMSUNG, 71800, 1))
    assert len(await b.open_orders()) == 2
    b.on_tick(tick(SAMSUNG, 71400, 2))                # through l1's limit: fills at the print
    fills = [e for e in drain(b) if isinstance(e, Fill)]
    assert [(f.client_order_id, f.price) for f in fills] == [("l1", D(71400))]
    ev = await b.cancel("l2")
    assert ev.status is OrderStatus.CANCELLED
    assert (await b.cancel("l2")).status is OrderStatus.CANCELLED   # idempotent
    b.on_tick(tick(SAMSUNG, 70000, 3))
    assert not [e for e in drain(b) if isinstance(e, Fill)]
    assert await b.open_orders() == []
    with pytest.raises(OrderRejected, match="unknown order"):
        await b.cancel("nope")


@pytest.mark.parametrize(("order", "reason"), [
    (req("r1", Side.BUY, 1, sym="000000"), "unknown symbol"),
    (req("r2", Side.BUY, 1, sym="000660"), "no price yet"),
    (req("r3", Side.BUY, 1000), "insufficient cash"),
    (req("r4", Side.SELL, 1), "insufficient holdings"),
    (req("r5", Side.BUY, 1, limit=93700), "beyond the daily limits"),
    (req("r6", Side.BUY, 1, limit=50300), "beyond the daily limits"),
    (req("r7", Side.BUY, 1, limit=72050), "not on the KRX tick grid"),
    (req("r8", Side.BUY, 0), "positive whole number"),
])
async def test_rejections_carry_a_reason(order: OrderRequest, reason: str) -> None:
    b = broker(prev_close=lambda s: 72000.0)
    b.on_tick(tick(SAMSUNG, 72000))
    ack = await b.submit(order)
    assert ack.status is OrderStatus.REJECTED
    assert reason in ack.reason
    assert drain(b)[-1] == ack
    assert await b.query_order(order.client_order_id) == ack


async def test_open_orders_reserve_cash_and_holdings() -> None:
    b = broker(fill_on="last")
    b.on_tick(tick(SAMSUNG, 72000))
    await b.submit(req("b", Side.BUY, 10))
    await b.submit(req("s1", Side.SELL, 6, limit=80000))
    ack = await b.submit(req("s2", Side.SELL, 6, limit=80000))
    assert "already on sale" in ack.reason
    await b.submit(req("big", Side.BUY, 120, limit=72000))         # 8.64 M of ~9.28 M
    ack2 = await b.submit(req("big2", Side.BUY, 10, limit=72000))
    assert ack2.status is OrderStatus.REJECTED and "insufficient cash" in ack2.reason


async def test_short_selling_when_allowed() -> None:
    b = broker(allow_short=True, fill_on="last")
    b.on_tick(tick(SAMSUNG, 72000))
    await b.submit(req("s", Side.SELL, 3))
    [pos] = await b.positions()
    assert pos.quantity == D(-3) and pos.avg_price == D(71900)
    await b.submit(req("b", Side.BUY, 5))
    [pos] = await b.positions()
    assert pos.quantity == D(2) and pos.avg_price == D(72100)
    assert b.realized_pnl == D(-600)


async def test_duplicate_client_id_is_idempotent_and_closed_broker_refuses() -> None:
    b = broker()
    b.on_tick(tick(SAMSUNG, 72000))
    a1 = await b.submit(req("x", Side.BUY, 1))
    a2 = await b.submit(req("x", Side.BUY, 1))
    assert a1 == a2 and len(await b.open_orders()) == 1
    await b.close()
    with pytest.raises(BrokerUnavailable):
        await b.submit(req("y", Side.BUY, 1))


async def test_events_iterator_yields_in_order_and_ends_on_close() -> None:
    b = broker(fill_on="last")
    b.on_tick(tick(SAMSUNG, 72000))
    await b.submit(req("c", Side.BUY, 1))
    await b.close()
    kinds = [(type(e).__name__, getattr(e, "status", None)) async for e in b.events()]
    assert kinds == [("OrderEvent", OrderStatus.ACCEPTED), ("Fill", None),
                     ("OrderEvent", OrderStatus.FILLED)]


async def test_fill_clamped_to_upper_limit() -> None:
    b = broker(prev_close=lambda s: 72000.0, fill_on="last")
    b.on_tick(tick(SAMSUNG, 93600))                               # at the upper limit
    await b.submit(req("c", Side.BUY, 1))
    fill = next(e for e in drain(b) if isinstance(e, Fill))
    assert fill.price == D(93600)


async def test_crypto_venue_uses_taker_fee_and_no_tax() -> None:
    b = broker(symbols={"KRW-BTC"}, fill_on="last", initial_cash=D(200_000_000))
    b.on_tick(Tick("upbit", "KRW-BTC", T0, T0, 100_000_000.0, 0.1))
    r = OrderRequest("u", "paper", "paper-1", "KRW-BTC", Side.BUY, D(1), venue="upbit")
    await b.submit(r)
    fill = next(e for e in drain(b) if isinstance(e, Fill))
    assert fill.price == D("100050000.00000000") and fill.tax == 0
    assert fill.commission == D("50025.00000000")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([SAMSUNG, KOSDAQ_SYM]),
                          st.sampled_from(list(Side)), st.integers(1, 30),
                          st.integers(-20, 20)), min_size=1, max_size=40))
def test_cash_and_positions_reconcile_with_fills(
        ops: list[tuple[str, Side, int, int]]) -> None:
    import asyncio

    async def run() -> None:
        start = D(50_000_000)
        b = broker(initial_cash=start, prev_close=lambda s: 72000.0 if s == SAMSUNG else 198000.0)
        px = {SAMSUNG: 72000.0, KOSDAQ_SYM: 198000.0}
        b.on_ticks([tick(s, p) for s, p in px.items()])
        for i, (sym, side, qty, move) in enumerate(ops):
            await b.submit(req(f"o{i}", side, qty, sym))
            step = 100 if sym == SAMSUNG else 500
            px[sym] = px[sym] + move * step
            b.on_tick(tick(sym, px[sym], i + 1))
        fills = [e for e in drain(b) if isinstance(e, Fill)]
        cash = start
        qty: dict[str, D] = {}
        for f in fills:
            cash += -f.side.sign * f.notional - f.fees
            qty[f.symbol] = qty.get(f.symbol, D(0)) + f.side.sign * f.quantity
        assert (await b.balance()).cash == cash >= 0
        held = {p.symbol: p.quantity for p in await b.positions()}
        assert held == {s: q for s, q in qty.items() if q != 0}
        assert all(q > 0 for q in held.values())                   # cash account
        assert len({f.trade_id for f in fills}) == len(fills)

    asyncio.run(run())


async def test_deterministic_given_the_tick_sequence() -> None:
    async def run() -> list[tuple[str, D, D]]:
        b = broker()
        b.on_tick(tick(SAMSUNG, 72000))
        for i in range(5):
            await b.submit(req(f"o{i}", Side.BUY if i % 2 == 0 else Side.SELL, 3))
            b.on_tick(tick(SAMSUNG, 72000 + 100 * i, i + 1))
        return [(e.trade_id, e.price, e.quantity) for e in drain(b) if isinstance(e, Fill)]

    assert await run() == await run()


async def test_app_style_construction_from_floats() -> None:
    b = PaperBroker(name="paper", account="paper-1",
                    cost_model=CostModel.from_config({"slippage_bps": 0}),
                    initial_cash=100_000_000.0, clock=FakeClock(T0), allow_short=False)
    assert (await b.balance()).cash == D(100_000_000)


class _PerPrint(PaperBroker):
    """The reference: every print through ``on_tick``, in order."""

    def on_ticks(self, ticks: object) -> None:
        for t in ticks:  # type: ignore[attr-defined]
            self.on_tick(t)


_DAY_S = 86_400.0
_print = st.tuples(st.sampled_from([SAMSUNG, KOSDAQ_SYM, "000660"]),
                   st.sampled_from([0.0, 1.0, 3600.0 * 13, _DAY_S, _DAY_S + 5, 2 * _DAY_S]),
                   st.sampled_from([71000.0, 71100.0, 71900.0, 72000.0, 0.0, -5.0]))


@settings(max_examples=150, deadline=None)
@given(batches=st.lists(st.lists(_print, max_size=12), min_size=1, max_size=5),
       orders=st.lists(st.tuples(st.integers(0, 4), st.sampled_from([SAMSUNG, "000660"]),
                                 st.sampled_from([None, 71000, 71900])), max_size=4))
async def test_on_ticks_batch_path_equals_per_print_path(
        batches: list[list[tuple[str, float, float]]],
        orders: list[tuple[int, str, int | None]]) -> None:
    """Open orders, bad prices, KST day changes (also back and forth) inside one batch: the
    batched ``on_ticks`` leaves exactly the state and events of one ``on_tick`` per print."""
    fast = broker(initial_cash=D(10**9))
    cols = broker(initial_cash=D(10**9))         # columns over an index ("000660" outside)
    ref = _PerPrint(clock=FakeClock(T0), initial_cash=D(10**9))
    index = {KOSDAQ_SYM: 0, SAMSUNG: 1}
    for b in (fast, ref):
        b.on_ticks([tick(SAMSUNG, 71500), tick("000660", 71500)])
    cols.on_ticks(TickBatch.of([tick(SAMSUNG, 71500), tick("000660", 71500)], index))
    for i, batch in enumerate(batches):
        for n, (at, sym, limit) in enumerate(orders):
            if at == i:
                for b in (fast, cols, ref):
                    await b.submit(req(f"c{n}", Side.BUY, 1, sym, limit))
        ticks = [tick(s, p, dt) for s, dt, p in batch]
        fast.on_ticks(ticks)
        cols.on_ticks(TickBatch.of(ticks, index))
        ref.on_ticks(ticks)
        want = drain(ref)
        for b in (fast, cols):
            assert b.day_bases() == ref.day_bases()
            assert all(b.last_price(s) == ref.last_price(s)
                       for s in (SAMSUNG, KOSDAQ_SYM, "000660"))
            assert drain(b) == want
            assert b.cash == ref.cash and await b.positions() == await ref.positions()


def test_on_ticks_rejects_a_nan_print_like_on_tick() -> None:
    from jts.errors import DataError

    b = broker()
    with pytest.raises(DataError):
        b.on_ticks([tick(SAMSUNG, 72000), tick(SAMSUNG, float("nan"))])
    assert b.last_price(SAMSUNG) == D(72000)           # what came before was applied
