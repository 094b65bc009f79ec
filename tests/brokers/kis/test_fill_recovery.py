"""Fills whose WebSocket notices were lost are recovered from today's orders (REST).

The simulator, like KIS, pushes notices only to sessions connected at that moment; these
tests lose notices on purpose (a dropped session, a dropped subscription) and check that
the adapter emits exactly the missing quantity, at the exact value, with the notice-style
trade id, and that a late notice for a recovered quantity is not counted twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from brokers.kis import parse, wire
from brokers.kis.broker import KisBroker
from brokers.kis.catchup import Tracked, recover
from brokers.kis.simulator import SimSettings
from jts.types import Fill, OrderEvent, OrderRequest, OrderStatus, OrderType, Side
from tests.brokers.kis.conftest import Env, drive, make_env
from tests.brokers.kis.test_stream import buy, collect, connected, settle


@pytest.fixture
async def live() -> AsyncIterator[tuple[Env, KisBroker]]:
    env = await make_env(SimSettings(domain="virtual", rate_limit=1000, auto_step=False,
                                     ping_interval=0), fill_poll_interval=5.0)
    async for pair in connected(env):
        yield pair
    await env.server.close()


def _sim_order(env: Env, odno: str) -> object:
    for acct in env.sim.venue.book.accounts.values():
        if odno in acct.orders:
            return acct.orders[odno]
    raise AssertionError(f"simulator has no order {odno}")


async def test_fills_lost_while_the_session_was_down_are_recovered(
        live: tuple[Env, KisBroker]) -> None:
    env, b = live
    ack = await b.submit(buy("r1", 250))                # 100 now, then 100 + 50 on steps
    first = await collect(b, 2)
    assert [type(e) for e in first] == [Fill, OrderEvent]
    s = b.stream
    assert s is not None
    await env.sim.hub.close_all()
    await settle(lambda: not s.connected.is_set())
    env.sim.step()
    env.sim.step()                                      # both fills happen with nobody listening
    sim_order = _sim_order(env, ack.broker_order_id)
    assert sim_order.filled == 250                      # type: ignore[attr-defined]
    await drive(env.clock, lambda: b.recovered_fills == 1, 30, 0.5)
    fill, done = await collect(b, 2)
    assert isinstance(fill, Fill) and isinstance(done, OrderEvent)
    assert fill.quantity == 150 and fill.trade_id == f"{ack.broker_order_id}:250"
    first_fill = first[0]
    assert isinstance(first_fill, Fill)
    total = first_fill.quantity * first_fill.price + fill.quantity * fill.price
    assert total == sim_order.filled_value               # type: ignore[attr-defined]
    assert done.status is OrderStatus.FILLED and done.filled_quantity == 250
    assert b.stats()["recovered_fills"] == 1
    # nothing more to recover: a second pass emits nothing, and the order is closed
    assert await b.catch_up() == 0


async def test_a_quiet_open_order_is_polled(live: tuple[Env, KisBroker]) -> None:
    env, b = live
    ack = await b.submit(buy("q1", 30))
    assert ack.status is OrderStatus.ACCEPTED
    fill0, ev0 = await collect(b, 2)                     # a market order fills at once
    assert isinstance(fill0, Fill) and fill0.quantity == 30
    assert isinstance(ev0, OrderEvent) and ev0.status is OrderStatus.FILLED
    # the notice subscription silently went away: the next fill is heard of by nobody
    session = env.sim.hub.sessions[0]
    session.subs.discard((wire.WS_NOTICE_VIRTUAL, "tester"))
    sell = await b.submit(OrderRequest("q2", "kis", "main", "005930", Side.SELL,
                                       Decimal(30), OrderType.MARKET))
    assert sell.status is OrderStatus.ACCEPTED
    order = _sim_order(env, sell.broker_order_id)
    assert order.filled == 30                            # type: ignore[attr-defined]
    calls = b.catch_ups
    await drive(env.clock, lambda: b.recovered_fills == 1, 30, 0.5)
    assert b.catch_ups > calls
    fill, done = await collect(b, 2)
    assert isinstance(fill, Fill) and fill.side is Side.SELL and fill.quantity == 30
    assert fill.price * 30 == order.filled_value         # type: ignore[attr-defined]
    assert isinstance(done, OrderEvent) and done.status is OrderStatus.FILLED
    # with nothing open, the loop stops asking
    calls = b.catch_ups
    await drive(env.clock, None, 30, 1.0)
    assert b.catch_ups == calls


def _row(filled: int, amount: int, *, cancelled: int = 0, qty: int = 10) -> parse.OrderRow:
    return parse.OrderRow("0000001", "", "005930", Side.BUY, Decimal(qty), Decimal(0),
                          Decimal(filled), Decimal(amount // filled if filled else 0),
                          Decimal(qty - filled - cancelled), Decimal(cancelled), "100000",
                          Decimal(amount))


def test_recover_emits_only_the_shortfall_at_its_exact_price() -> None:
    t = Tracked(OrderRequest("c", "kis", "main", "005930", Side.BUY, Decimal(10),
                             OrderType.MARKET), odno="0000001")
    t.add_fill(Decimal(4), Decimal(70_000))             # heard by notice
    evs = recover(t, "c", _row(10, 4 * 70_000 + 6 * 70_100), "main", 1)
    fill, ev = evs
    assert isinstance(fill, Fill) and fill.quantity == 6 and fill.price == 70_100
    assert fill.trade_id == "0000001:10"
    assert isinstance(ev, OrderEvent) and ev.status is OrderStatus.FILLED and t.closed
    assert recover(t, "c", _row(10, 4 * 70_000 + 6 * 70_100), "main", 2) == []


def test_recover_reports_a_cancellation_the_notices_missed() -> None:
    t = Tracked(OrderRequest("c", "kis", "main", "005930", Side.BUY, Decimal(10),
                             OrderType.LIMIT, Decimal(69_000)), odno="0000001")
    (fill, part, cancel) = recover(t, "c", _row(3, 3 * 69_000, cancelled=7), "main", 1)
    assert isinstance(fill, Fill) and fill.quantity == 3
    assert isinstance(part, OrderEvent) and part.status is OrderStatus.PARTIALLY_FILLED
    assert isinstance(cancel, OrderEvent) and cancel.status is OrderStatus.CANCELLED
    assert cancel.filled_quantity == 3 and t.closed


async def test_a_late_notice_for_a_recovered_fill_is_not_counted_twice(
        live: tuple[Env, KisBroker]) -> None:
    env, b = live
    ack = await b.submit(buy("l1", 50))
    session = env.sim.hub.sessions[0]
    assert ack.status is OrderStatus.ACCEPTED
    fill, _ = await collect(b, 2)                        # the notice arrived normally
    assert isinstance(fill, Fill)
    t = b._orders["l1"]
    # pretend the poll got there first: the same quantity counted as recovered
    t.recovered = Decimal(50)
    late = parse.Notice("5000000001", ack.broker_order_id, "", Side.BUY, "0", "005930",
                        Decimal(50), fill.price, "100000", False, True, Decimal(50))
    b._apply(late)
    assert t.filled == 50 and t.recovered == 0 and b._events.empty()
    assert session.subs                                  # the session itself was untouched
