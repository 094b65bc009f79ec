"""The desk with the order journal, on real files and a real SQLite ledger: every order is
on disk before its submit, a fill racing a burst reaches the ledger after the burst's
records, and a crash between journal and ledger is recovered at the next start — by asking
the broker, never by sending the order again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
import structlog

from brokers.paper import PaperBroker
from jts.clock import NS, FakeClock
from jts.config import RiskConfig
from jts.desk import Desk
from jts.errors import StorageError
from jts.order_recovery import restore_journal
from jts.portfolio import Portfolio
from jts.reconcile import reconcile
from jts.risk import RiskGate
from jts.storage.ledger import Ledger, open_ledger
from jts.storage.order_wal import OrderWal, read_journal
from jts.types import (
    Fill,
    OrderEvent,
    OrderIntent,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    Tick,
)

T0 = 1_764_000_000 * NS
SYMBOLS = ["005930", "000660", "035420"]
CASH = Decimal(10**9)


def limit(symbol: str, price: int = 69_000) -> OrderIntent:
    return OrderIntent("s", symbol, Side.BUY, Decimal(10), T0, OrderType.LIMIT, Decimal(price))


class Broker(PaperBroker):
    """The paper broker, noting every call that reaches it (resting limit orders)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock, symbols=SYMBOLS, initial_cash=CASH)
        self.on_ticks([Tick("krx", s, T0, T0, 70_000.0, 1.0) for s in SYMBOLS])
        self.calls: list[str] = []

    async def submit(self, order: OrderRequest) -> OrderEvent:
        self.calls.append(f"submit {order.client_order_id}")
        return await super().submit(order)


class Recording:
    """The real ledger, with the order of the desk's writes noted."""

    def __init__(self, ledger: Ledger, calls: list[str], fail: bool = False) -> None:
        self.ledger, self.calls, self.fail = ledger, calls, fail

    async def record_order(self, order: OrderRequest) -> None:
        await self.ledger.record_order(order)

    async def record_orders(self, orders: list[OrderRequest]) -> None:
        await self.ledger.record_orders(orders)

    async def record_sent(self, orders: list[OrderRequest], events: list[OrderEvent],
                          ts_ns: int | None = None) -> None:
        self.calls.append("record_sent")
        if self.fail:
            await asyncio.sleep(0)           # reports that came meanwhile are waiting
            raise StorageError("ledger store: disk I/O error")
        await self.ledger.record_sent(orders, events, ts_ns)

    async def apply_event(self, event: OrderEvent) -> object:
        self.calls.append(f"event {event.client_order_id} {event.status.value}")
        return await self.ledger.apply_event(event)

    async def apply_events(self, events: list[OrderEvent]) -> None:
        await self.ledger.apply_events(events)

    async def apply_fill(self, fill: Fill, event: OrderEvent | None) -> bool:
        self.calls.append(f"fill {fill.client_order_id}")
        return await self.ledger.apply_fill(fill, event)


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    led = await open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}", clock=FakeClock(T0))
    await led.set_cash("paper", "paper-1", CASH)
    yield led
    await led.close()


def desk_for(broker: Broker, clock: FakeClock, journal: object, wal: OrderWal) -> Desk:
    return Desk(broker, RiskGate(RiskConfig()), Portfolio(cash=CASH), clock,
                lambda s: 70_000.0, journal=journal, wal=wal)  # type: ignore[arg-type]


async def test_every_order_is_on_disk_in_the_journal_before_its_submit(
        tmp_path: Path, ledger: Ledger) -> None:
    clock = FakeClock(T0)
    journal_dir = tmp_path / "orders.wal"

    class Checking(Broker):
        async def submit(self, order: OrderRequest) -> OrderEvent:
            on_disk = {o.client_order_id for e in read_journal(journal_dir) for o in e.orders}
            assert order.client_order_id in on_disk          # written ahead, durably
            assert await ledger.order(order.client_order_id) is None   # the ledger: after
            return await super().submit(order)

    broker = Checking(clock)
    wal = OrderWal.open(journal_dir)
    desk = desk_for(broker, clock, ledger, wal)
    decisions = await desk.handle_many([limit(s) for s in SYMBOLS])
    assert all(d.approved for d in decisions) and len(broker.calls) == 3
    for rec in desk.orders.values():                # orders and acks: one transaction
        stored = await ledger.order(rec.request.client_order_id)
        assert stored is not None and stored.status is OrderStatus.ACCEPTED
        assert stored.broker_order_id == rec.broker_order_id
    assert wal.pending == 0                         # confirmed once the ledger had them
    assert (await ledger.verify()).ok


async def test_a_fill_during_a_burst_reaches_the_ledger_after_the_orders(
        tmp_path: Path, ledger: Ledger) -> None:
    clock = FakeClock(T0)
    calls: list[str] = []
    tasks: list[asyncio.Task[None]] = []

    class Racing(Broker):
        async def submit(self, order: OrderRequest) -> OrderEvent:
            ack = await super().submit(order)
            if len(tasks) == 0:      # the venue fills the first order while the burst is out
                fill = Fill("paper", "paper-1", "T1", order.client_order_id, order.symbol,
                            order.side, order.quantity, Decimal(69_000), Decimal(0),
                            Decimal(0), T0, "s")
                tasks.append(asyncio.create_task(desk.on_report(fill)))
                for _ in range(5):
                    await asyncio.sleep(0)           # the fill runs as far as it can
            return ack

    broker = Racing(clock)
    broker.calls = calls
    desk = desk_for(broker, clock, Recording(ledger, calls), OrderWal.open(tmp_path / "j"))
    await desk.handle_many([limit(s) for s in SYMBOLS])
    await tasks[0]
    first = next(iter(desk.orders))
    assert [c.split()[0] for c in calls] == ["submit", "submit", "submit", "record_sent",
                                             "fill"]
    assert calls[-1] == f"fill {first}"
    stored = await ledger.order(first)
    assert stored is not None and stored.status is OrderStatus.FILLED
    assert desk.orders[first].status is OrderStatus.FILLED and desk.stats.fills == 1
    assert (await ledger.verify()).ok


@pytest.mark.parametrize("venue_has_it", [True, False])
async def test_a_crash_between_journal_and_ledger_is_resolved_by_asking_never_resent(
        tmp_path: Path, ledger: Ledger, venue_has_it: bool) -> None:
    clock = FakeClock(T0)
    calls: list[str] = []
    reports: list[asyncio.Task[None]] = []

    class Acking(Broker):          # its router copy of the ack races the ledger write
        async def submit(self, order: OrderRequest) -> OrderEvent:
            ack = await super().submit(order)
            reports.append(asyncio.create_task(desk.on_report(ack)))
            return ack

    broker = Acking(clock)
    broker.calls = calls
    desk = desk_for(broker, clock, Recording(ledger, calls, fail=True),
                    OrderWal.open(tmp_path / "j"))
    with pytest.raises(StorageError, match="disk I/O error"):
        await desk.handle(limit("005930"))
    (coid,) = desk.orders
    assert calls == [f"submit {coid}", "record_sent"] and await ledger.order(coid) is None
    # the ack waited for the order's record, which never came: it halts, it does not guess
    with pytest.raises(StorageError, match="the order journal keeps it"):
        await reports[0]
    with pytest.raises(StorageError, match="the order journal keeps it"):   # and later ones
        await desk.on_report(OrderEvent(coid, OrderStatus.CANCELLED, T0))

    # the restart: the journal still holds the order; it goes into the ledger as NEW
    venue = broker if venue_has_it else Broker(clock)
    venue.calls = calls
    wal = OrderWal.open(tmp_path / "j")
    with structlog.testing.capture_logs() as logs:
        restored = await restore_journal(wal, ledger)
    assert [o.client_order_id for o in restored] == [coid]
    (warning,) = [e for e in logs if e["event"] == "order_recovered_from_journal"]
    assert warning["log_level"] == "warning" and warning["client_order_id"] == coid
    assert warning["symbol"] == "005930" and warning["quantity"] == "10"
    rec = await ledger.order(coid)
    assert rec is not None and rec.status is OrderStatus.NEW
    audit = [e for e in await ledger.audit_entries() if e.event == "order_recovered_from_journal"]
    assert [e.fields["client_order_id"] for e in audit] == [coid]
    # reconciliation asks the broker about it: its answer is the truth
    report = await reconcile(ledger, venue, policy="halt", clock=clock)
    rec = await ledger.order(coid)
    assert rec is not None and not report.halt
    assert rec.status is (OrderStatus.ACCEPTED if venue_has_it else OrderStatus.REJECTED)
    assert calls.count(f"submit {coid}") == 1                  # never sent twice
    assert wal.recovered == [] and OrderWal.open(tmp_path / "j").recovered == []
    assert await restore_journal(OrderWal.open(tmp_path / "j"), ledger) == []
    assert (await ledger.verify()).ok


async def test_a_journal_that_cannot_be_written_sends_nothing(tmp_path: Path,
                                                              ledger: Ledger) -> None:
    import os

    clock = FakeClock(T0)
    broker = Broker(clock)
    wal = OrderWal.open(tmp_path / "j")
    desk = desk_for(broker, clock, ledger, wal)
    os.close(wal._active.fd)                              # the journal's file is gone
    with pytest.raises(StorageError, match="no order of this burst was sent"):
        await desk.handle_many([limit(s) for s in SYMBOLS])
    assert broker.calls == [] and desk.orders == {} and desk.open_orders() == []
    assert await ledger.open_orders() == []
