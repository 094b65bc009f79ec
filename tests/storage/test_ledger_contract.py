"""Ledger contract: the same behaviour on SQLite and PostgreSQL (real servers)."""

from __future__ import annotations

import asyncio

import pytest

from jts.clock import FakeClock
from jts.errors import InvariantError
from jts.storage.ledger import Ledger, open_ledger
from jts.storage.ledger_core import SCHEMA_VERSION
from jts.types import OrderEvent, OrderStatus, Side
from tests.storage.helpers import ACCOUNT, BROKER, D, fill, order, raw_exec

T0 = 1_700_000_000_000_000_000  # 2023-11-15 07:13:20 KST


@pytest.fixture
async def ledger(ledger_url: str) -> Ledger:
    led = await open_ledger(ledger_url, clock=FakeClock(T0), auto_migrate=True)
    yield led  # type: ignore[misc]
    await led.close()


async def test_migrate_is_idempotent(ledger: Ledger) -> None:
    assert await ledger.migrate() == SCHEMA_VERSION
    assert await ledger.migrate() == SCHEMA_VERSION
    assert await ledger.schema_version() == SCHEMA_VERSION


async def test_record_order_is_write_ahead_and_unique(ledger: Ledger) -> None:
    await ledger.record_order(order("c1"))
    rec = await ledger.order("c1")
    assert rec is not None and rec.status is OrderStatus.NEW
    assert rec.request == order("c1")
    assert [o.request.client_order_id for o in await ledger.open_orders()] == ["c1"]
    with pytest.raises(InvariantError, match="already recorded"):
        await ledger.record_order(order("c1"))
    assert await ledger.order("nope") is None


async def test_events_follow_state_machine(ledger: Ledger) -> None:
    await ledger.record_order(order("c1"))
    await ledger.apply_event(OrderEvent("c1", OrderStatus.SUBMITTED, T0 + 1))
    rec = await ledger.apply_event(OrderEvent("c1", OrderStatus.ACCEPTED, T0 + 2, "B-1"))
    assert rec.status is OrderStatus.ACCEPTED and rec.broker_order_id == "B-1"
    await ledger.apply_event(OrderEvent("c1", OrderStatus.CANCELLED, T0 + 3, reason="user"))
    with pytest.raises(InvariantError, match="cancelled -> accepted"):
        await ledger.apply_event(OrderEvent("c1", OrderStatus.ACCEPTED, T0 + 4))
    rec2 = await ledger.order("c1")
    assert rec2 is not None and rec2.status is OrderStatus.CANCELLED and rec2.reason == "user"
    assert await ledger.open_orders() == []
    with pytest.raises(InvariantError, match="unknown order"):
        await ledger.apply_event(OrderEvent("zz", OrderStatus.ACCEPTED, T0))


async def test_apply_events_is_one_transaction_in_order(ledger: Ledger) -> None:
    await ledger.record_orders([order("c1"), order("c2"), order("c3")])
    await ledger.apply_events([OrderEvent("c1", OrderStatus.ACCEPTED, T0 + 1, "B-1"),
                               OrderEvent("c2", OrderStatus.REJECTED, T0 + 1, reason="no"),
                               OrderEvent("c1", OrderStatus.CANCELLED, T0 + 2, reason="user")])
    c1, c2 = await ledger.order("c1"), await ledger.order("c2")
    assert c1 is not None and (c1.status, c1.broker_order_id, c1.reason) == (
        OrderStatus.CANCELLED, "B-1", "user")
    assert c2 is not None and (c2.status, c2.reason) == (OrderStatus.REJECTED, "no")
    # one illegal (or unknown-order) event: nothing of the batch is applied
    for bad in (OrderEvent("c2", OrderStatus.ACCEPTED, T0 + 3),
                OrderEvent("zz", OrderStatus.ACCEPTED, T0 + 3)):
        with pytest.raises(InvariantError):
            await ledger.apply_events([OrderEvent("c3", OrderStatus.ACCEPTED, T0 + 3), bad])
        c3 = await ledger.order("c3")
        assert c3 is not None and c3.status is OrderStatus.NEW
    await ledger.apply_events([])


async def test_record_sent_is_one_transaction_of_orders_then_events(ledger: Ledger) -> None:
    """The order journal's catch-up: a burst's orders (already sent) and their
    acknowledgements in one transaction; anything wrong in it writes nothing at all."""
    await ledger.record_sent([order("c1"), order("c2"), order("c3")],
                             [OrderEvent("c1", OrderStatus.ACCEPTED, T0 + 2, "B-1"),
                              OrderEvent("c2", OrderStatus.REJECTED, T0 + 2, reason="no"),
                              OrderEvent("c3", OrderStatus.UNKNOWN, T0 + 2, reason="timeout")],
                             ts_ns=T0 + 1)
    c1, c2, c3 = [await ledger.order(c) for c in ("c1", "c2", "c3")]
    assert c1 is not None and (c1.status, c1.broker_order_id, c1.created_ns) == (
        OrderStatus.ACCEPTED, "B-1", T0 + 1)
    assert c2 is not None and (c2.status, c2.reason) == (OrderStatus.REJECTED, "no")
    assert c3 is not None and c3.status is OrderStatus.UNKNOWN and c3.request == order("c3")
    bad_batches = [
        ([order("c4"), order("c1")], []),                                  # c1 recorded before
        ([order("c4")], [OrderEvent("c4", OrderStatus.ACCEPTED, T0 + 3),
                         OrderEvent("c4", OrderStatus.NEW, T0 + 4)]),      # illegal transition
        ([order("c4")], [OrderEvent("zz", OrderStatus.ACCEPTED, T0 + 3)]),  # unknown order
    ]
    for orders, events in bad_batches:
        with pytest.raises(InvariantError):
            await ledger.record_sent(orders, events)
        assert await ledger.order("c4") is None
    with pytest.raises(InvariantError, match="c1 already recorded"):
        await ledger.record_sent([order("c1")], [])
    await ledger.record_sent([], [])
    assert await ledger.known_orders(["c3", "zz", "c1", "c3"]) == {"c1", "c3"}
    assert await ledger.known_orders([]) == set()
    many = [order(f"m{i}") for i in range(1200)]      # beyond one SQLite IN list
    await ledger.record_sent(many, [])
    assert len(await ledger.known_orders([o.client_order_id for o in many] + ["x"])) == 1200
    assert (await ledger.verify()).ok


async def test_unknown_resolves_to_broker_state(ledger: Ledger) -> None:
    await ledger.record_order(order("c1"))
    await ledger.apply_event(OrderEvent("c1", OrderStatus.UNKNOWN, T0 + 1, reason="timeout"))
    rec = await ledger.apply_event(OrderEvent("c1", OrderStatus.REJECTED, T0 + 2))
    assert rec.status is OrderStatus.REJECTED


async def test_fill_moves_order_position_and_cash_atomically(ledger: Ledger) -> None:
    await ledger.set_cash(BROKER, ACCOUNT, D("1000000"))
    await ledger.record_order(order("c1", "10"))
    await ledger.apply_event(OrderEvent("c1", OrderStatus.ACCEPTED, T0 + 1, "B-1"))
    f1 = fill("t1", "c1", "4", "70000", commission="15")
    assert await ledger.apply_fill(f1) is True
    rec = await ledger.order("c1")
    assert rec is not None and rec.status is OrderStatus.PARTIALLY_FILLED
    assert rec.filled_quantity == D(4)
    ev = OrderEvent("c1", OrderStatus.FILLED, T0 + 5, "B-1", D(10))
    assert await ledger.apply_fill(fill("t2", "c1", "6", "70100", commission="20"), ev) is True
    rec = await ledger.order("c1")
    assert rec is not None and rec.status is OrderStatus.FILLED and rec.filled_quantity == D(10)
    [pos] = await ledger.positions()
    assert (pos.symbol, pos.quantity, pos.avg_price) == ("005930", D(10), D("70060"))
    assert await ledger.cash(BROKER, ACCOUNT) == D(1000000) - D(700600) - D(35)
    assert (await ledger.verify()).ok


async def test_duplicate_fill_returns_false_and_changes_nothing(ledger: Ledger) -> None:
    await ledger.record_order(order("c1", "10"))
    f1 = fill("t1", "c1", "4", "100")
    assert await ledger.apply_fill(f1) is True
    assert await ledger.apply_fill(f1) is False
    assert await ledger.apply_fills([(f1, None), (fill("t2", "c1", "1", "100"), None),
                                     (fill("t2", "c1", "1", "100"), None)]) == [False, True, False]
    [pos] = await ledger.positions()
    assert pos.quantity == D(5)
    assert len(await ledger.fills()) == 2


async def test_illegal_event_with_fill_commits_nothing(ledger: Ledger) -> None:
    await ledger.record_order(order("c1", "10"))
    await ledger.apply_event(OrderEvent("c1", OrderStatus.REJECTED, T0 + 1))
    bad = OrderEvent("c1", OrderStatus.PARTIALLY_FILLED, T0 + 2)
    with pytest.raises(InvariantError):
        await ledger.apply_fill(fill("t1", "c1", "4", "100"), bad)
    assert await ledger.fills() == []
    assert await ledger.positions() == []
    assert await ledger.cash(BROKER, ACCOUNT) == 0


async def test_concurrent_fills_are_group_committed(ledger: Ledger) -> None:
    for i in range(5):
        await ledger.record_order(order(f"c{i}", "100"))
    fills = [fill(f"t{i}", f"c{i % 5}", "1", str(100 + i % 7)) for i in range(300)]
    results = await asyncio.gather(*(ledger.apply_fill(f) for f in fills + fills[:50]))
    assert results.count(True) == 300 and results.count(False) == 50
    [pos] = await ledger.positions()
    assert pos.quantity == D(300)
    report = await ledger.verify()
    assert report.ok and report.fills == 300, report.problems


async def test_a_bad_fill_in_a_batch_fails_alone(ledger: Ledger) -> None:
    await ledger.record_order(order("c1", "10"))
    good = [ledger.apply_fill(fill(f"t{i}", "c1", "1", "100")) for i in range(3)]
    bad = ledger.apply_fill(fill("tx", "c1", "1", "100"),
                            OrderEvent("other", OrderStatus.FILLED, T0))
    out = await asyncio.gather(*good, bad, return_exceptions=True)
    assert out[:3] == [True, True, True]
    assert isinstance(out[3], InvariantError)


async def test_long_short_flip_and_realized_pnl(ledger: Ledger) -> None:
    await ledger.set_cash(BROKER, ACCOUNT, D(0))
    day = "2023-11-15"
    await ledger.apply_fills([
        (fill("t1", "x", "10", "100"), None),
        (fill("t2", "x", "4", "110", Side.SELL, commission="1", tax="2"), None),   # +40
        (fill("t3", "x", "10", "90", Side.SELL), None),                            # -60, short 4
        (fill("t4", "x", "4", "80"), None),                                        # +40 flat
    ])
    assert await ledger.positions() == []
    assert await ledger.realized_pnl(day) == D(40 - 60 + 40 - 3)
    assert await ledger.realized_pnl("2023-11-16") == 0
    assert await ledger.cash(BROKER, ACCOUNT) == D(-1000 + 440 + 900 - 320 - 3)
    assert (await ledger.verify()).ok


async def test_fills_since(ledger: Ledger) -> None:
    await ledger.apply_fills([(fill(f"t{i}", "x", "1", "10", ts_ns=T0 + i), None)
                              for i in range(5)])
    assert [f.trade_id for f in await ledger.fills(T0 + 3)] == ["t3", "t4"]


async def test_verify_detects_tampered_position_and_cash(ledger: Ledger, ledger_url: str) -> None:
    await ledger.set_cash(BROKER, ACCOUNT, D(1000))
    await ledger.apply_fill(fill("t1", "x", "2", "10"))
    assert (await ledger.verify()).ok
    await raw_exec(ledger_url, "UPDATE positions SET quantity = 3",
                   "UPDATE cash SET amount = 5000")
    report = await ledger.verify()
    assert not report.ok
    assert any("position paper/acc1/005930" in p for p in report.problems)
    assert any("cash paper/acc1" in p for p in report.problems)


async def _audit_three(ledger: Ledger) -> None:
    for i in range(3):
        await ledger.audit("operator_action", {"n": i, "amount": D("1.5")})
    assert (await ledger.verify()).ok
    assert [e.seq for e in await ledger.audit_entries()] == [1, 2, 3]


async def _drop_guard(url: str) -> list[str]:
    if url.startswith("sqlite"):
        return ["DROP TRIGGER audit_no_update", "DROP TRIGGER audit_no_delete"]
    return ["DROP TRIGGER audit_append_only ON audit"]


async def test_audit_is_append_only(ledger: Ledger, ledger_url: str) -> None:
    await _audit_three(ledger)
    with pytest.raises(Exception, match="append-only"):
        await raw_exec(ledger_url, "UPDATE audit SET event = 'x'")


@pytest.mark.parametrize("tamper,expect", [
    ("UPDATE audit SET fields = '{\"n\":9}' WHERE seq = 2", "entry 2 was edited"),
    ("DELETE FROM audit WHERE seq = 2", "missing (deleted)"),
    ("DELETE FROM audit WHERE seq = 3", "truncated"),
])
async def test_verify_detects_audit_tampering(ledger: Ledger, ledger_url: str, tamper: str,
                                              expect: str) -> None:
    await _audit_three(ledger)
    await raw_exec(ledger_url, *await _drop_guard(ledger_url), tamper)
    report = await ledger.verify()
    assert not report.ok
    assert any(expect in p for p in report.problems), report.problems


async def test_state_survives_reopen(ledger_url: str) -> None:
    led = await open_ledger(ledger_url, clock=FakeClock(T0), auto_migrate=True)
    await led.record_order(order("c1"))
    await led.apply_fill(fill("t1", "c1", "3", "50"))
    await led.audit("x", {})
    await led.close()
    led = await open_ledger(ledger_url, clock=FakeClock(T0))
    try:
        assert [p.quantity for p in await led.positions()] == [D(3)]
        assert (await led.verify()).ok
    finally:
        await led.close()
