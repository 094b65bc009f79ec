"""The desk: write-ahead, UNKNOWN outcomes resolved by asking (never resubmitting), resting
orders expired, fills deduplicated — with a fake broker injected and a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from brokers.base import BrokerEvent
from jts.clock import NS, FakeClock
from jts.config import RiskConfig
from jts.desk import Desk
from jts.errors import OrderOutcomeUnknown
from jts.portfolio import Portfolio
from jts.risk import RiskGate
from jts.types import (
    Balance,
    Fill,
    OrderEvent,
    OrderIntent,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
)

T0 = 1_764_000_000 * NS


class TimeoutBroker:
    """Every submit times out after sending; queries answer what ``truth`` says."""

    name, account = "fake", "acct"

    def __init__(self) -> None:
        self.submits: list[OrderRequest] = []
        self.truth: OrderEvent | None = None
        self.cancels: list[str] = []

    async def connect(self) -> None: ...
    async def close(self) -> None: ...

    async def submit(self, order: OrderRequest) -> OrderEvent:
        self.submits.append(order)
        raise OrderOutcomeUnknown("timeout after send")

    async def cancel(self, client_order_id: str) -> OrderEvent:
        self.cancels.append(client_order_id)
        return OrderEvent(client_order_id, OrderStatus.CANCELLED, T0)

    async def query_order(self, client_order_id: str) -> OrderEvent | None:
        return self.truth

    async def open_orders(self) -> list[OrderEvent]:
        return []

    async def positions(self) -> list[Position]:
        return []

    async def balance(self) -> Balance:
        return Balance("fake", "acct", Decimal(0))

    async def events(self) -> AsyncIterator[BrokerEvent]:  # pragma: no cover - unused
        if False:
            yield  # type: ignore[misc]


class Journal:
    def __init__(self) -> None:
        self.recorded: list[str] = []
        self.events: list[OrderStatus] = []

    async def record_order(self, order: OrderRequest) -> None:
        self.recorded.append(order.client_order_id)

    async def record_orders(self, orders: list[OrderRequest]) -> None:
        self.recorded.extend(o.client_order_id for o in orders)

    async def apply_event(self, event: OrderEvent) -> None:
        self.events.append(event.status)

    async def apply_events(self, events: list[OrderEvent]) -> None:
        self.events.extend(e.status for e in events)

    async def apply_fill(self, fill: Fill, event: OrderEvent | None) -> bool:
        return True


def make(broker: TimeoutBroker) -> tuple[Desk, FakeClock, Journal]:
    clock = FakeClock(T0)
    journal = Journal()
    desk = Desk(broker, RiskGate(RiskConfig()), Portfolio(cash=Decimal(10**9)), clock,
                lambda s: 1000.0, journal=journal)
    return desk, clock, journal


INTENT = OrderIntent("s", "005930", Side.BUY, Decimal(10), T0)


async def test_unknown_outcome_is_asked_about_never_resubmitted() -> None:
    broker = TimeoutBroker()
    desk, clock, journal = make(broker)
    await desk.handle(INTENT)
    (rec,) = desk.orders.values()
    coid = rec.request.client_order_id
    assert journal.recorded == [coid]                   # written ahead, before the send
    assert rec.status is OrderStatus.UNKNOWN and desk.stats.unknown == 1
    assert await desk.housekeeping(unknown_deadline_s=60, limit_ttl_s=0) == []
    clock.advance(61)
    assert await desk.housekeeping(unknown_deadline_s=60, limit_ttl_s=0) == [coid]
    broker.truth = OrderEvent(coid, OrderStatus.ACCEPTED, clock.now_ns(), "B1")
    assert await desk.housekeeping(unknown_deadline_s=60, limit_ttl_s=0) == []
    assert rec.status is OrderStatus.ACCEPTED and rec.broker_order_id == "B1"
    assert len(broker.submits) == 1                      # never resubmitted
    # a second intent for the same symbol is a duplicate while the first is open
    assert (await desk.handle(INTENT)).check == "duplicate"


async def test_resting_orders_expire_after_ttl() -> None:
    broker = TimeoutBroker()
    desk, clock, _ = make(broker)
    await desk.handle(INTENT)
    (rec,) = desk.orders.values()
    broker.truth = OrderEvent(rec.request.client_order_id, OrderStatus.ACCEPTED, T0)
    await desk.housekeeping(unknown_deadline_s=60, limit_ttl_s=30)
    assert rec.status is OrderStatus.ACCEPTED and broker.cancels == []
    clock.advance(31)
    await desk.housekeeping(unknown_deadline_s=60, limit_ttl_s=30)
    assert rec.status is OrderStatus.CANCELLED
    assert broker.cancels == [rec.request.client_order_id]


async def test_fills_are_deduplicated_by_trade_id() -> None:
    broker = TimeoutBroker()
    desk, _, _ = make(broker)
    await desk.handle(OrderIntent("s", "005930", Side.BUY, Decimal(10), T0,
                                  OrderType.LIMIT, Decimal(1000)))
    (rec,) = desk.orders.values()
    fill = Fill("fake", "acct", "T1", rec.request.client_order_id, "005930", Side.BUY,
                Decimal(10), Decimal(1000), Decimal(1), Decimal(0), T0, "s")
    await desk.on_report(fill)
    await desk.on_report(fill)
    assert desk.stats.fills == 1 and desk.stats.duplicate_fills == 1
    assert desk.portfolio.position("005930") == Decimal(10)
    assert rec.status is OrderStatus.FILLED


async def test_reports_in_any_order_reach_the_ledger_forward_only(tmp_path: object) -> None:
    """KIS may report FILLED before the fill, and the ACCEPTED ack may arrive after both:
    the real ledger must see only legal forward transitions and count the fill once."""
    from pathlib import Path

    from jts.storage.ledger import open_ledger

    led = await open_ledger(f"sqlite:///{Path(str(tmp_path)) / 'l.sqlite3'}")
    broker = TimeoutBroker()
    clock = FakeClock(T0)
    desk = Desk(broker, RiskGate(RiskConfig()), Portfolio(cash=Decimal(10**9)), clock,
                lambda s: 1000.0, journal=led)
    try:
        await desk.handle(INTENT)                       # → UNKNOWN (timeout after send)
        (rec,) = desk.orders.values()
        coid = rec.request.client_order_id
        await desk.on_report(OrderEvent(coid, OrderStatus.FILLED, T0, "B9", Decimal(10)))
        await desk.on_report(Fill("fake", "acct", "T9", coid, "005930", Side.BUY, Decimal(10),
                                  Decimal(1000), Decimal(0), Decimal(0), T0, "s"))
        await desk.on_report(OrderEvent(coid, OrderStatus.ACCEPTED, T0, "B9"))
        stored = await led.order(coid)
        assert stored is not None and stored.status is OrderStatus.FILLED
        assert stored.filled_quantity == Decimal(10)    # not 20: status reports do not fill
        assert rec.status is OrderStatus.FILLED and rec.filled == Decimal(10)
        assert (await led.verify()).ok
    finally:
        await led.close()


async def test_cancel_and_replace_moves_a_resting_limit_order() -> None:
    from brokers.paper import PaperBroker
    from jts.errors import OrderRejected
    from jts.types import Tick

    clock = FakeClock(T0)
    broker = PaperBroker(clock=clock, symbols=["005930"])
    broker.on_ticks([Tick("krx", "005930", T0, T0, 70_000.0, 10.0)])
    desk = Desk(broker, RiskGate(RiskConfig()), Portfolio(cash=Decimal(10**9)), clock,
                lambda s: 70_000.0)
    await desk.handle(OrderIntent("s", "005930", Side.BUY, Decimal(10), T0, OrderType.LIMIT,
                                  Decimal(69_000)))
    (old,) = desk.orders.values()
    assert old.status is OrderStatus.ACCEPTED
    decision, new_id = await desk.replace(old.request.client_order_id,
                                          limit_price=Decimal(69_500))
    assert decision.approved and new_id
    new = desk.orders[new_id]
    assert old.status is OrderStatus.CANCELLED
    assert new.status is OrderStatus.ACCEPTED and new.request.limit_price == Decimal(69_500)
    assert new.request.quantity == Decimal(10)
    with pytest.raises(OrderRejected):
        await desk.replace(old.request.client_order_id, limit_price=Decimal(69_600))


async def test_a_burst_is_written_ahead_in_one_commit() -> None:
    class BatchJournal(Journal):
        def __init__(self) -> None:
            super().__init__()
            self.batches: list[list[str]] = []

        async def record_orders(self, orders: list[OrderRequest]) -> None:
            self.batches.append([o.client_order_id for o in orders])

    from brokers.paper import PaperBroker
    from jts.types import Tick

    clock = FakeClock(T0)
    broker = PaperBroker(clock=clock, symbols=["A", "B", "C"])
    broker.on_ticks([Tick("krx", s, T0, T0, 10_000.0, 1.0) for s in "ABC"])
    journal = BatchJournal()
    desk = Desk(broker, RiskGate(RiskConfig()), Portfolio(cash=Decimal(10**9)), clock,
                lambda s: 10_000.0, journal=journal)
    burst = [OrderIntent("s", s, Side.BUY, Decimal(1), T0) for s in "ABCA"]
    decisions = await desk.handle_many(burst)
    assert [d.approved for d in decisions] == [True, True, True, False]
    assert decisions[3].check == "duplicate"          # sees A approved earlier in the burst
    assert len(journal.batches) == 1 and len(journal.batches[0]) == 3
    assert journal.recorded == []                     # no one-by-one writes


async def test_a_bursts_acknowledgements_reach_the_ledger_in_one_transaction() -> None:
    """Write-ahead (one commit) before any send; every ack after the last send, in one
    ``apply_events`` call, in send order; a rejection is counted once per report."""
    from brokers.paper import PaperBroker
    from jts.types import Tick

    clock = FakeClock(T0)
    sent: list[str] = []

    class SpyBroker(PaperBroker):
        async def submit(self, order: OrderRequest) -> OrderEvent:
            assert order.client_order_id in journal.written       # write-ahead holds
            assert journal.acks == []                              # acks wait for the burst
            sent.append(order.client_order_id)
            return await super().submit(order)

    class BatchJournal(Journal):
        def __init__(self) -> None:
            super().__init__()
            self.written: set[str] = set()
            self.acks: list[list[tuple[str, OrderStatus]]] = []

        async def record_orders(self, orders: list[OrderRequest]) -> None:
            self.written |= {o.client_order_id for o in orders}

        async def apply_events(self, events: list[OrderEvent]) -> None:
            self.acks.append([(e.client_order_id, e.status) for e in events])

    broker = SpyBroker(clock=clock, symbols=["A", "B", "C"])
    broker.on_ticks([Tick("krx", s, T0, T0, 10_000.0, 1.0) for s in "AB"])   # no price: C
    journal = BatchJournal()
    desk = Desk(broker, RiskGate(RiskConfig()), Portfolio(cash=Decimal(10**9)), clock,
                lambda s: 10_000.0, journal=journal)
    decisions = await desk.handle_many(
        [OrderIntent("s", s, Side.BUY, Decimal(1), T0) for s in "ABC"])
    assert all(d.approved for d in decisions) and len(sent) == 3
    assert journal.acks == [[(sent[0], OrderStatus.ACCEPTED), (sent[1], OrderStatus.ACCEPTED),
                             (sent[2], OrderStatus.REJECTED)]]
    assert journal.events == []                    # nothing went one event at a time
    assert [desk.orders[c].status for c in sent] == [OrderStatus.ACCEPTED,
                                                     OrderStatus.ACCEPTED,
                                                     OrderStatus.REJECTED]
    assert desk.stats.broker_rejected == 1 and desk.stats.submitted == 3
    # the broker's own copy of an ack (through the router) is history: no second write
    await desk.on_report(OrderEvent(sent[0], OrderStatus.ACCEPTED, T0))
    assert journal.events == [] and len(journal.acks) == 1
