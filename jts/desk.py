"""The desk: the single consumer of order intents, and the router of broker reports.

``Desk.handle_many`` takes a burst of intents (``handle``: one): risk check of each →
client order ids → write-ahead of the approved ones to the ledger (status NEW, one commit)
→ ``broker.submit`` of each, back to back → their acknowledgements into the ledger (one
transaction). ``Desk.on_report`` applies what the broker says
(order events, fills) to the order book, the ledger and the portfolio, in that order, and
publishes them. A submit whose outcome cannot be known marks the order UNKNOWN; it is
resolved by asking the broker, never by sending it again.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import structlog

from brokers.base import Broker, BrokerEvent
from jts.clock import Clock
from jts.errors import BrokerError, OrderOutcomeUnknown, OrderRejected
from jts.orders import can_transition
from jts.portfolio import Portfolio
from jts.risk import InFlightBook, RiskDecision, RiskGate
from jts.types import Fill, OrderEvent, OrderIntent, OrderRequest, OrderStatus, OrderType

log = structlog.get_logger(__name__)


class OrderJournal(Protocol):
    """What the desk needs of the ledger (write-ahead and atomic fill application)."""

    async def record_order(self, order: OrderRequest) -> None: ...

    async def record_orders(self, orders: list[OrderRequest]) -> None:
        """A burst's write-ahead, one transaction."""

    async def apply_event(self, event: OrderEvent) -> object: ...

    async def apply_events(self, events: list[OrderEvent]) -> None:
        """A burst's acknowledgements, one transaction."""

    async def apply_fill(self, fill: Fill, event: OrderEvent | None) -> bool: ...


@dataclass
class OrderRecord:
    request: OrderRequest
    status: OrderStatus = OrderStatus.NEW
    filled: Decimal = Decimal(0)
    broker_order_id: str = ""
    reason: str = ""
    created_ns: int = 0
    unknown_since_ns: int = 0


@dataclass
class DeskStats:
    intents: int = 0
    submitted: int = 0
    risk_rejected: int = 0
    broker_rejected: int = 0
    unknown: int = 0
    fills: int = 0
    duplicate_fills: int = 0
    last_rejection: str = ""
    rejections: list[dict[str, str]] = field(default_factory=list)


class Desk:
    def __init__(self, broker: Broker, risk: RiskGate, portfolio: Portfolio, clock: Clock,
                 last_price: Callable[[str], float | None],
                 journal: OrderJournal | None = None,
                 on_order_done: Callable[[OrderRecord], None] | None = None,
                 publish_fill: Callable[[Fill], Awaitable[None]] | None = None,
                 publish_event: Callable[[OrderEvent], Awaitable[None]] | None = None,
                 id_prefix: str = "J") -> None:
        self.broker = broker
        self.risk = risk
        self.portfolio = portfolio
        self.clock = clock
        self.last_price = last_price
        self.journal = journal
        self.on_order_done = on_order_done
        self.publish_fill = publish_fill
        self.publish_event = publish_event
        self.orders: dict[str, OrderRecord] = {}
        self._open: dict[str, OrderRecord] = {}     # the orders not yet terminal
        self.book = InFlightBook()                  # _open as the risk gate reads it
        self.stats = DeskStats()
        self.alerts: Any = None        # jts.alerts.Notifier (optional)
        self.accepting = True
        self._ids = itertools.count(1)
        self._id_prefix = f"{id_prefix}{clock.now_ns() // 1_000_000:x}"
        self._seen_trades: set[tuple[str, str, str]] = set()
        self._lock = asyncio.Lock()     # order-state changes reach the ledger in decision order

    def seen_trades(self, keys: set[tuple[str, str, str]]) -> None:
        """Fills already in the ledger (restored at start): never applied twice."""
        self._seen_trades |= keys

    def new_client_order_id(self) -> str:
        return f"{self._id_prefix}-{next(self._ids):06d}"

    def open_orders(self) -> list[OrderRecord]:
        return list(self._open.values())

    def _track(self, rec: OrderRecord) -> None:
        """Keep the in-flight book in step with ``_open`` and the order's filled quantity."""
        coid = rec.request.client_order_id
        if coid in self._open:
            r = rec.request
            self.book.set(coid, r.strategy, r.symbol, r.side, r.quantity - rec.filled)
        else:
            self.book.discard(coid)

    async def handle(self, intent: OrderIntent) -> RiskDecision:
        """Risk-check one intent and, if approved, write it ahead and submit it."""
        return (await self.handle_many([intent]))[0]

    async def handle_many(self, intents: list[OrderIntent]) -> list[RiskDecision]:
        """A burst of intents (a bar close): each is risk-checked in turn, seeing the ones
        approved before it as in flight; every approved order is written ahead in ONE
        durable commit; then they are sent in order."""
        decisions: list[RiskDecision] = []
        approved: list[tuple[OrderRecord, OrderIntent]] = []
        for intent in intents:
            decision = self._decide(intent)
            decisions.append(decision)
            if decision.approved:
                approved.append((self._new_order(intent), intent))
        if not approved:
            return decisions
        # write-ahead: one durable commit (status NEW = "may have been sent") before the
        # orders leave; SUBMITTED is kept in memory only — after a crash a NEW order is
        # resolved by asking the broker, exactly like a SUBMITTED one would be
        if self.journal is not None:
            await self.journal.record_orders([rec.request for rec, _ in approved])
        # send the whole burst back to back; the venue's acknowledgements are applied (and
        # journaled) afterwards, so no order waits for another order's ledger commit
        acks = [await self._send(rec, intent) for rec, intent in approved]
        # logged once the burst is out (a log line costs ~50 µs: not between two sends)
        for rec, intent in approved:
            req = rec.request
            log.info("order_submitted", client_order_id=req.client_order_id,
                     symbol=req.symbol, side=req.side.value, quantity=str(req.quantity),
                     strategy=req.strategy, reason=intent.reason)
        await self._apply_acks([ack for ack in acks if ack is not None])
        return decisions

    async def _apply_acks(self, acks: list[OrderEvent]) -> None:
        """A burst's acknowledgements: each moves its order in memory (as ``on_report``
        would), and the ledger gets every change in ONE transaction, not one commit each."""
        moved: list[tuple[OrderRecord, OrderEvent]] = []
        async with self._lock:
            for ack in acks:
                rec = self._known(ack)
                if rec is not None and self._move(rec, ack):
                    moved.append((rec, ack))
            if self.journal is not None and moved:
                await self.journal.apply_events([ev for _, ev in moved])
        for rec, ev in moved:
            await self._announce(rec, ev)

    def _decide(self, intent: OrderIntent) -> RiskDecision:
        self.stats.intents += 1
        if not self.accepting and not intent.closing:
            decision = RiskDecision.reject("stopping", "daemon is stopping: no new orders")
        else:
            decision = self.risk.check(intent, self.portfolio, self.book,
                                       self.last_price(intent.symbol), self.clock.now_ns())
        if not decision.approved:
            self.stats.risk_rejected += 1
            self.stats.last_rejection = f"{intent.symbol} {decision.check}: {decision.reason}"
            self.stats.rejections.append(
                {"symbol": intent.symbol, "strategy": intent.strategy, "check": decision.check,
                 "reason": decision.reason})
            del self.stats.rejections[:-20]
            log.info("intent_rejected", strategy=intent.strategy, symbol=intent.symbol,
                     side=intent.side.value, quantity=str(intent.quantity),
                     check=decision.check, reason=decision.reason)
            if self.alerts is not None:
                self.alerts.on_risk_rejection(intent, decision)
        return decision

    def _new_order(self, intent: OrderIntent) -> OrderRecord:
        req = OrderRequest(client_order_id=self.new_client_order_id(), broker=self.broker.name,
                           account=self.broker.account, symbol=intent.symbol, side=intent.side,
                           quantity=intent.quantity, order_type=intent.order_type,
                           limit_price=intent.limit_price, strategy=intent.strategy,
                           venue=intent.venue)
        rec = OrderRecord(req, created_ns=self.clock.now_ns())
        self.orders[req.client_order_id] = rec
        self._open[req.client_order_id] = rec
        self._track(rec)
        return rec

    async def _send(self, rec: OrderRecord, intent: OrderIntent) -> OrderEvent | None:
        """Submit one written-ahead order; returns the venue's acknowledgement to apply
        (None when the outcome is unknown — already recorded as UNKNOWN)."""
        req = rec.request
        submitted = OrderEvent(req.client_order_id, OrderStatus.SUBMITTED, self.clock.now_ns())
        if self._move(rec, submitted):
            await self._announce(rec, submitted)
        try:
            ack = await self.broker.submit(req)
        except OrderOutcomeUnknown as exc:
            self.stats.unknown += 1
            log.warning("order_outcome_unknown", client_order_id=req.client_order_id,
                        error=str(exc))
            rec.unknown_since_ns = self.clock.now_ns()
            await self._set(rec, OrderEvent(req.client_order_id, OrderStatus.UNKNOWN,
                                            self.clock.now_ns(), reason=str(exc)))
            return None
        except BrokerError as exc:
            ack = OrderEvent(req.client_order_id, OrderStatus.REJECTED, self.clock.now_ns(),
                             reason=f"{type(exc).__name__}: {exc}")
        self.stats.submitted += 1
        return ack

    async def housekeeping(self, *, unknown_deadline_s: float, limit_ttl_s: float) -> list[str]:
        """Resolve UNKNOWN orders by asking the broker (never by resubmitting) and expire
        resting orders past their time to live. Returns the client order ids still unknown
        past ``unknown_deadline_s`` — the caller halts trading for those."""
        now = self.clock.now_ns()
        stuck: list[str] = []
        for rec in [o for o in self.orders.values() if o.status is OrderStatus.UNKNOWN]:
            coid = rec.request.client_order_id
            if not rec.unknown_since_ns:
                rec.unknown_since_ns = now
            try:
                ev = await self.broker.query_order(coid)
            except BrokerError as exc:
                log.warning("order_query_failed", client_order_id=coid, error=str(exc))
                ev = None
            if ev is not None and ev.status is not OrderStatus.UNKNOWN:
                log.info("order_resolved", client_order_id=coid, status=ev.status.value)
                await self.on_report(ev)
            elif now - rec.unknown_since_ns > unknown_deadline_s * 1e9:
                stuck.append(coid)
        if limit_ttl_s > 0:
            for rec in self.open_orders():
                if (rec.status in (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)
                        and now - rec.created_ns > limit_ttl_s * 1e9):
                    log.info("order_expiring", client_order_id=rec.request.client_order_id)
                    try:
                        await self.on_report(await self.broker.cancel(
                            rec.request.client_order_id))
                    except BrokerError as exc:
                        log.warning("cancel_failed", client_order_id=rec.request.client_order_id,
                                    error=str(exc))
        return stuck

    async def on_report(self, report: BrokerEvent) -> None:
        if isinstance(report, Fill):
            await self._on_fill(report)
            return
        rec = self._known(report)
        if rec is not None:
            await self._set(rec, report)

    def _known(self, report: OrderEvent) -> OrderRecord | None:
        """The order a broker event is about (None, logged, if we never sent it); counts and
        alerts a rejection."""
        rec = self.orders.get(report.client_order_id)
        if rec is None:
            log.warning("order_event_unknown_order", client_order_id=report.client_order_id,
                        status=report.status.value)
            return None
        if report.status is OrderStatus.REJECTED:
            self.stats.broker_rejected += 1
            log.warning("order_rejected", client_order_id=report.client_order_id,
                        reason=report.reason)
            if self.alerts is not None:
                self.alerts.on_order_rejected(report.client_order_id, report.reason,
                                              symbol=rec.request.symbol)
        return rec

    async def _on_fill(self, fill: Fill) -> None:
        key = (fill.broker, fill.account, fill.trade_id)
        if key in self._seen_trades:
            self.stats.duplicate_fills += 1
            return
        async with self._lock:
            rec = self.orders.get(fill.client_order_id)
            event: OrderEvent | None = None
            if rec is not None:
                rec.filled += fill.quantity
                status = (OrderStatus.FILLED if rec.filled >= rec.request.quantity
                          else OrderStatus.PARTIALLY_FILLED)
                if can_transition(rec.status, status):
                    event = OrderEvent(fill.client_order_id, status, fill.ts_ns,
                                       broker_order_id=rec.broker_order_id,
                                       filled_quantity=rec.filled)
            if rec is not None:
                self._track(rec)
            if self.journal is not None and not await self.journal.apply_fill(fill, event):
                if rec is not None:
                    rec.filled -= fill.quantity
                    self._track(rec)
                self.stats.duplicate_fills += 1
                self._seen_trades.add(key)
                return
            self._seen_trades.add(key)
            self.stats.fills += 1
            pnl = self.portfolio.apply(fill)
            changed = rec is not None and event is not None and self._move(rec, event)
        log.info("fill_applied", client_order_id=fill.client_order_id, trade_id=fill.trade_id,
                 symbol=fill.symbol, side=fill.side.value, quantity=str(fill.quantity),
                 price=str(fill.price), fees=str(fill.fees), realized=str(pnl))
        if changed and rec is not None and event is not None:
            await self._announce(rec, event)
        if self.publish_fill is not None:
            await self.publish_fill(fill)

    def _move(self, rec: OrderRecord, ev: OrderEvent) -> bool:
        """Apply ``ev`` to the in-memory order if it is a forward, legal change."""
        if ev.status == rec.status and ev.status is not OrderStatus.PARTIALLY_FILLED:
            return False
        if not can_transition(rec.status, ev.status):
            # a late report (e.g. ACCEPTED after FILLED) is history, not a state change
            log.debug("order_event_ignored", client_order_id=ev.client_order_id,
                      current=rec.status.value, reported=ev.status.value)
            return False
        rec.status = ev.status
        if ev.status.is_terminal:
            self._open.pop(ev.client_order_id, None)
            self.book.discard(ev.client_order_id)
        if ev.broker_order_id:
            rec.broker_order_id = ev.broker_order_id
        if ev.reason:
            rec.reason = ev.reason
        return True

    async def _set(self, rec: OrderRecord, ev: OrderEvent) -> None:
        """One order-state change: memory and ledger move together, in the order the
        changes were decided (one lock), so the ledger never sees a backwards transition."""
        async with self._lock:
            if not self._move(rec, ev):
                return
            if self.journal is not None:
                await self.journal.apply_event(ev)
        await self._announce(rec, ev)

    async def _announce(self, rec: OrderRecord, ev: OrderEvent) -> None:
        if self.publish_event is not None:
            await self.publish_event(ev)
        if rec.status.is_terminal and self.on_order_done is not None:
            self.on_order_done(rec)

    async def replace(self, client_order_id: str, *, quantity: Decimal | None = None,
                      limit_price: Decimal | None = None) -> tuple[RiskDecision, str]:
        """Cancel-and-replace: cancel the open order, and once the venue confirms the
        cancel, send a new order for what is left (``quantity`` is the new total) at
        ``limit_price``, through the risk gate again. Returns the decision and the new
        client order id ("" when nothing was sent). Raises OrderRejected when the old order
        is not open or could not be cancelled (e.g. it filled meanwhile)."""
        rec = self.orders.get(client_order_id)
        if rec is None or not rec.status.is_open or rec.status is OrderStatus.UNKNOWN:
            raise OrderRejected(f"no open order {client_order_id} to replace")
        await self.on_report(await self.broker.cancel(client_order_id))
        if rec.status is not OrderStatus.CANCELLED:
            raise OrderRejected(f"order {client_order_id} could not be cancelled "
                                f"(now {rec.status.value}); nothing replaced")
        req = rec.request
        remaining = (quantity if quantity is not None else req.quantity) - rec.filled
        if remaining <= 0:
            return RiskDecision.reject("quantity", "nothing left to replace"), ""
        price = limit_price if limit_price is not None else req.limit_price
        held = self.portfolio.position(req.symbol)
        closing = (held > 0 and req.side.sign < 0) or (held < 0 and req.side.sign > 0)
        before = set(self.orders)
        decision = await self.handle(OrderIntent(
            req.strategy, req.symbol, req.side, remaining, self.clock.now_ns(),
            OrderType.LIMIT if price is not None else req.order_type, price, closing,
            f"replaces {client_order_id}", req.venue))
        new = [c for c in self.orders if c not in before]
        log.info("order_replaced", old=client_order_id, new=new[0] if new else "",
                 approved=decision.approved, reason=decision.reason)
        return decision, new[0] if new else ""

    async def cancel_all(self) -> int:
        n = 0
        for rec in self.open_orders():
            if rec.status is OrderStatus.UNKNOWN:
                continue
            try:
                await self.on_report(await self.broker.cancel(rec.request.client_order_id))
                n += 1
            except BrokerError as exc:
                log.warning("cancel_failed", client_order_id=rec.request.client_order_id,
                            error=str(exc))
        return n
