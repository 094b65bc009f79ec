"""Startup reconciliation against the real SQLite ledger and the PaperBroker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from brokers.paper import PaperBroker
from jts.clock import FakeClock, from_datetime
from jts.errors import BrokerUnavailable, ConfigError, TransientError
from jts.reconcile import ReconcileReport, reconcile
from jts.storage.ledger import Ledger, open_ledger
from jts.types import Fill, OrderEvent, OrderRequest, OrderStatus, OrderType, Side, Tick

T0 = from_datetime(datetime(2025, 6, 10, 10, 0))
SAMSUNG, HYNIX = "005930", "000660"
CASH = D(10_000_000)


class Alerts:
    def __init__(self) -> None:
        self.got: list[tuple[str, str, dict[str, Any]]] = []

    def __call__(self, kind: str, message: str, **fields: Any) -> None:
        self.got.append((kind, message, fields))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def ledger(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Ledger]:
    led = await open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}", clock=clock)
    await led.set_cash("paper", "paper-1", CASH, reason="initial deposit")
    yield led
    await led.close()


def paper(clock: FakeClock, cls: type[PaperBroker] = PaperBroker) -> PaperBroker:
    b = cls(clock=clock, initial_cash=CASH)
    b.on_ticks([Tick("krx", SAMSUNG, T0, T0, 70_000.0, 10.0),
                Tick("krx", HYNIX, T0, T0, 200_000.0, 10.0)])
    return b


def req(coid: str, side: Side = Side.BUY, qty: int = 10, sym: str = SAMSUNG,
        limit: int | None = None, account: str = "paper-1") -> OrderRequest:
    return OrderRequest(coid, "paper", account, sym, side, D(qty),
                        OrderType.LIMIT if limit else OrderType.MARKET,
                        D(limit) if limit else None, strategy="t")


async def pump(b: PaperBroker, n: int) -> list[OrderEvent | Fill]:
    """Take exactly ``n`` queued broker events (they are already queued: no waiting)."""
    it = b.events()
    return [await anext(it) for _ in range(n)]


async def trade(led: Ledger, b: PaperBroker, coid: str, side: Side, qty: int,
                sym: str = SAMSUNG, *, record: bool = True) -> None:
    """A market order through ledger and broker; ``record=False`` loses the fill (crash)."""
    r = req(coid, side, qty, sym)
    await led.record_order(r)
    await led.apply_event(await b.submit(r))
    px = 70_000.0 if sym == SAMSUNG else 200_000.0
    b.on_tick(Tick("krx", sym, T0 + 1, T0 + 1, px, 10.0))
    events = await pump(b, 3)                  # ack, fill, filled
    if record:
        fill = next(e for e in events if isinstance(e, Fill))
        await led.apply_fill(fill, next(e for e in events[2:] if isinstance(e, OrderEvent)))


def kinds(rep: ReconcileReport) -> list[tuple[str, str, bool]]:
    return [(m.kind, m.key, m.resolved) for m in rep.mismatches]


async def same_state(led: Ledger, b: PaperBroker) -> None:
    assert [(p.symbol, p.quantity) for p in await led.positions()] == \
        [(p.symbol, p.quantity) for p in await b.positions()]
    for lp, bp in zip(await led.positions(), await b.positions(), strict=True):
        assert abs(lp.avg_price - bp.avg_price) < D("1e-6")
    assert await led.cash("paper", "paper-1") == (await b.balance()).cash
    assert (await led.verify()).ok


@pytest.mark.parametrize("policy", ["halt", "adopt"])
async def test_matching_books_give_a_clean_report_and_an_audit_entry(
        ledger: Ledger, clock: FakeClock, policy: Any) -> None:
    b = paper(clock)
    await trade(ledger, b, "o1", Side.BUY, 10)
    await trade(ledger, b, "o2", Side.BUY, 3, HYNIX)
    alerts = Alerts()
    rep = await reconcile(ledger, b, policy=policy, clock=clock, on_alert=alerts)
    assert rep.ok and not rep.halt and rep.mismatches == []
    assert rep.positions_checked == 2 and "matches" in rep.summary()
    assert alerts.got == []
    entries = [e for e in await ledger.audit_entries() if e.event == "reconcile"]
    assert len(entries) == 1 and entries[0].fields["halt"] is False


@pytest.mark.parametrize("policy", ["halt", "adopt"])
async def test_order_written_ahead_but_never_sent_is_resolved_as_rejected(
        ledger: Ledger, clock: FakeClock, policy: Any) -> None:
    await ledger.record_order(req("never-sent"))
    rep = await reconcile(ledger, paper(clock), policy=policy, clock=clock)
    assert kinds(rep) == [("order_unknown_to_broker", "never-sent", True)]
    assert not rep.halt
    rec = await ledger.order("never-sent")
    assert rec is not None and rec.status is OrderStatus.REJECTED
    assert "not known to the broker" in rec.reason
    assert await ledger.open_orders() == []


async def test_accepted_order_the_broker_never_saw_is_expired(
        ledger: Ledger, clock: FakeClock) -> None:
    await ledger.record_order(req("gone"))
    await ledger.apply_event(OrderEvent("gone", OrderStatus.ACCEPTED, T0, "B1"))
    rep = await reconcile(ledger, paper(clock), policy="halt", clock=clock)
    assert kinds(rep) == [("order_unknown_to_broker", "gone", True)] and not rep.halt
    rec = await ledger.order("gone")
    assert rec is not None and rec.status is OrderStatus.EXPIRED


async def test_open_order_with_a_newer_state_at_the_broker_is_updated(
        ledger: Ledger, clock: FakeClock) -> None:
    b = paper(clock)
    r = req("rest", limit=60_000)                 # rests well below the market
    await ledger.record_order(r)
    await ledger.apply_event(OrderEvent("rest", OrderStatus.SUBMITTED, T0))
    await b.submit(r)                             # the ack was lost in a crash
    rep = await reconcile(ledger, b, policy="halt", clock=clock)
    assert kinds(rep) == [("order_state", "rest", True)] and not rep.halt
    rec = await ledger.order("rest")
    assert rec is not None and rec.status is OrderStatus.ACCEPTED and rec.broker_order_id


async def test_fill_lost_in_a_crash_halts_under_the_halt_policy(
        ledger: Ledger, clock: FakeClock) -> None:
    b = paper(clock)
    await trade(ledger, b, "o1", Side.BUY, 10, record=False)
    alerts = Alerts()
    rep = await reconcile(ledger, b, policy="halt", clock=clock, on_alert=alerts)
    assert kinds(rep) == [("order_closed", "o1", True), ("position", SAMSUNG, False),
                          ("cash", "cash", False)]
    assert rep.halt and "HALT" in rep.summary()
    assert "fills missing" in rep.mismatches[0].action
    # the order is resolved from the broker; positions and cash are left for the operator
    rec = await ledger.order("o1")
    assert rec is not None and rec.status is OrderStatus.FILLED
    assert await ledger.positions() == [] and await ledger.cash("paper", "paper-1") == CASH
    [(kind, _msg, fields)] = alerts.got
    assert kind == "reconcile" and fields["severity"] == "critical" and fields["halt"] is True
    [audit] = [e for e in await ledger.audit_entries() if e.event == "reconcile"]
    assert audit.fields["halt"] is True and len(audit.fields["mismatches"]) == 3  # type: ignore[arg-type]


async def test_fill_lost_in_a_crash_is_adopted_with_adjusting_fills(
        ledger: Ledger, clock: FakeClock) -> None:
    b = paper(clock)
    await trade(ledger, b, "o0", Side.BUY, 4, HYNIX)             # known to both
    await trade(ledger, b, "o1", Side.BUY, 10, record=False)      # lost
    realized_before = await ledger.realized_pnl("2025-06-10")
    alerts = Alerts()
    rep = await reconcile(ledger, b, policy="adopt", clock=clock, on_alert=alerts)
    assert kinds(rep) == [("order_closed", "o1", True), ("position", SAMSUNG, True),
                          ("cash", "cash", True)]
    assert not rep.halt and alerts.got[0][2]["severity"] == "warning"
    await same_state(ledger, b)
    assert await ledger.realized_pnl("2025-06-10") == realized_before
    adj = [f for f in await ledger.fills() if f.strategy == "reconcile"]
    assert [(f.symbol, f.side, f.quantity) for f in adj] == [(SAMSUNG, Side.BUY, D(10))]
    again = await reconcile(ledger, b, policy="halt", clock=clock)
    assert again.ok


async def test_adopt_replaces_a_wrong_position_and_a_short_one(
        ledger: Ledger, clock: FakeClock) -> None:
    b = paper(clock)
    await trade(ledger, b, "o1", Side.BUY, 10)
    await trade(ledger, b, "o2", Side.BUY, 5, HYNIX)
    # the ledger wrongly believes in 3 more Samsung and a Hynix short instead of the long
    await ledger.apply_fill(Fill("paper", "paper-1", "ghost-1", "ghost", SAMSUNG, Side.BUY,
                                 D(3), D(71_000), D(0), D(0), T0 + 5))
    await ledger.apply_fill(Fill("paper", "paper-1", "ghost-2", "ghost", HYNIX, Side.SELL,
                                 D(7), D(201_000), D(0), D(0), T0 + 6))
    rep = await reconcile(ledger, b, policy="adopt", clock=clock)
    assert [k for k in kinds(rep) if k[0] == "position"] == [
        ("position", HYNIX, True), ("position", SAMSUNG, True)]
    await same_state(ledger, b)


async def test_average_price_only_mismatch_respects_the_tolerance(
        ledger: Ledger, clock: FakeClock) -> None:
    b = paper(clock)
    await trade(ledger, b, "o1", Side.BUY, 10)
    [bp] = await b.positions()
    b.restore({SAMSUNG: type("H", (), {"quantity": bp.quantity,
                                       "avg_price": bp.avg_price * D("1.00005")})()}, b.cash)
    assert (await reconcile(ledger, b, policy="halt", clock=clock)).ok       # within 1 bp
    rep = await reconcile(ledger, b, policy="halt", clock=clock,
                          avg_price_tolerance=D("0.00001"))
    assert kinds(rep) == [("position", SAMSUNG, False)]


@pytest.mark.parametrize("policy", ["halt", "adopt"])
async def test_cash_only_mismatch(ledger: Ledger, clock: FakeClock, policy: Any) -> None:
    await ledger.set_cash("paper", "paper-1", D(9_000_000), reason="typo")
    rep = await reconcile(ledger, paper(clock), policy=policy, clock=clock)
    assert kinds(rep) == [("cash", "cash", policy == "adopt")]
    assert rep.mismatches[0].ledger == "9000000" and rep.mismatches[0].broker == "10000000"
    assert await ledger.cash("paper", "paper-1") == (CASH if policy == "adopt" else 9_000_000)
    assert rep.halt is (policy == "halt")
    assert not (await reconcile(ledger, paper(clock), policy="halt", clock=clock,
                                cash_tolerance=D(1_000_000))).halt


class DescribingPaper(PaperBroker):
    """A broker that can describe its orders (KIS can: the order inquiry has the details)."""

    async def order_request(self, client_order_id: str) -> OrderRequest | None:
        o = self._orders.get(client_order_id)
        return o.req if o is not None else None


@pytest.mark.parametrize(("cls", "policy", "adopted"), [
    (PaperBroker, "halt", False), (PaperBroker, "adopt", False),
    (DescribingPaper, "halt", False), (DescribingPaper, "adopt", True)])
async def test_order_the_broker_has_and_the_ledger_lacks(
        ledger: Ledger, clock: FakeClock, cls: type[PaperBroker], policy: Any,
        adopted: bool) -> None:
    b = paper(clock, cls)
    await b.submit(req("hts-1", limit=60_000))     # placed outside JTS, resting
    rep = await reconcile(ledger, b, policy=policy, clock=clock)
    assert kinds(rep) == [("order_foreign", "hts-1", adopted)]
    assert rep.halt is not adopted
    rec = await ledger.order("hts-1")
    if adopted:
        assert rec is not None and rec.status is OrderStatus.ACCEPTED
        assert rec.request.limit_price == 60_000
        assert (await reconcile(ledger, b, policy="halt", clock=clock)).ok
    else:
        assert rec is None
        if cls is PaperBroker and policy == "adopt":
            assert "no order details" in rep.mismatches[0].action


async def test_order_closed_in_the_ledger_but_open_at_the_broker_conflicts(
        ledger: Ledger, clock: FakeClock) -> None:
    b = paper(clock)
    r = req("x", limit=60_000)
    await ledger.record_order(r)
    await ledger.apply_event(OrderEvent("x", OrderStatus.CANCELLED, T0))
    await b.submit(r)
    rep = await reconcile(ledger, b, policy="adopt", clock=clock)
    assert kinds(rep) == [("order_conflict", "x", False)] and rep.halt


class FlakyQuery(PaperBroker):
    async def query_order(self, client_order_id: str) -> OrderEvent | None:
        raise TransientError("timeout", broker=self.name)


async def test_an_order_the_broker_cannot_answer_for_stays_open_and_halts(
        ledger: Ledger, clock: FakeClock) -> None:
    await ledger.record_order(req("u"))
    await ledger.apply_event(OrderEvent("u", OrderStatus.UNKNOWN, T0))
    rep = await reconcile(ledger, paper(clock, FlakyQuery), policy="adopt", clock=clock)
    assert kinds(rep) == [("order_unresolved", "u", False)] and rep.halt
    rec = await ledger.order("u")
    assert rec is not None and rec.status is OrderStatus.UNKNOWN


class Unreachable(PaperBroker):
    async def balance(self) -> Any:
        raise BrokerUnavailable("connection refused", broker=self.name)


async def test_an_unreadable_broker_gives_a_halt_report(
        ledger: Ledger, clock: FakeClock) -> None:
    rep = await reconcile(ledger, paper(clock, Unreachable), policy="adopt", clock=clock)
    assert kinds(rep) == [("broker_unreadable", "paper", False)] and rep.halt
    assert rep.as_dict()["halt"] is True and "connection refused" in rep.as_dict()[
        "mismatches"][0]["broker"]


async def test_other_accounts_in_the_ledger_are_left_alone(
        ledger: Ledger, clock: FakeClock) -> None:
    await ledger.record_order(req("other", account="paper-2"))
    await ledger.apply_fill(Fill("paper", "paper-2", "t", "other", SAMSUNG, Side.BUY, D(1),
                                 D(70_000), D(0), D(0), T0))
    rep = await reconcile(ledger, paper(clock), policy="adopt", clock=clock)
    assert rep.ok
    rec = await ledger.order("other")                  # still open: not ours to resolve
    assert rec is not None and rec.status is OrderStatus.PARTIALLY_FILLED
    assert [(p.account, p.quantity) for p in await ledger.positions()] == [("paper-2", 1)]


async def test_a_bad_policy_is_a_config_error(ledger: Ledger, clock: FakeClock) -> None:
    with pytest.raises(ConfigError, match="halt, adopt"):
        await reconcile(ledger, paper(clock), policy="ignore", clock=clock)  # type: ignore[arg-type]
