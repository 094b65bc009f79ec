"""The desk: the single consumer of order intents, and the router of broker reports.

``Desk.handle_many`` takes a burst of intents (``handle``: one): risk check of each →
client order ids → the approved orders appended to the order journal (``wal``, one
``fdatasync`` in this thread: no await, no executor hop before the first send) →
``broker.submit`` of each, back to back → the orders and their acknowledgements into the
ledger in ONE transaction (``record_sent``) → the journal told the ledger has them
(``confirm``). Without a journal the orders are written ahead to the ledger instead (one
commit, status NEW) and the acknowledgements follow in a second one.

Ordering: a fill or order event for an order of a burst whose ledger write is still pending
waits (``_recorded``) until that write has committed, so the ledger never sees a fill or a
state change of an order before the order itself. The sends never wait for that write, for
the desk's lock or for anything else: a fill committing for an older order cannot delay a
burst. Order-state changes otherwise reach the ledger under one lock, in decision order.

``Desk.on_report`` applies what the broker says (order events, fills) to the order book,
the ledger and the portfolio, in that order, and publishes them. A submit whose outcome
cannot be known marks the order UNKNOWN; it is resolved by asking the broker, never by
sending it again. The Desk's ``journal`` is the ledger (the port it needs of it).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from brokers.base import Broker, BrokerEvent
from jts.clock import Clock
from jts.desk_types import DeskStats, OrderJournal, OrderRecord, WriteAhead
from jts.desk_upkeep import OrderUpkeep
from jts.errors import BrokerError, OrderOutcomeUnknown, StorageError
from jts.orders import can_transition
from jts.portfolio import Portfolio
from jts.risk import InFlightBook, RiskDecision, RiskGate
from jts.types import Fill, OrderEvent, OrderIntent, OrderRequest, OrderStatus

log = structlog.get_logger(__name__)


class _Burst:
    """A journaled burst whose ledger write is pending: reports about its orders wait."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.error = ""


class Desk(OrderUpkeep):
    def __init__(self, broker: Broker, risk: RiskGate, portfolio: Portfolio, clock: Clock,
                 last_price: Callable[[str], float | None],
                 journal: OrderJournal | None = None,
                 on_order_done: Callable[[OrderRecord], None] | None = None,
                 publish_fill: Callable[[Fill], Awaitable[None]] | None = None,
                 publish_event: Callable[[OrderEvent], Awaitable[None]] | None = None,
                 id_prefix: str = "J", wal: WriteAhead | None = None) -> None:
        self.broker = broker
        self.risk = risk
        self.portfolio = portfolio
        self.clock = clock
        self.last_price = last_price
        self.journal = journal
        self.wal = wal
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
        self._unrecorded: dict[str, _Burst] = {}    # journaled, not yet in the ledger

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
        approved before it as in flight; every approved order is made durable at once (the
        journal's one fdatasync, else one ledger commit); then they are sent in order."""
        decisions: list[RiskDecision] = []
        approved: list[tuple[OrderRecord, OrderIntent]] = []
        for intent in intents:
            decision = self._decide(intent)
            decisions.append(decision)
            if decision.approved:
                approved.append((self._new_order(intent), intent))
        if not approved:
            return decisions
        orders = [rec.request for rec, _ in approved]
        ts = self.clock.now_ns()
        if self.wal is None:
            # write-ahead to the ledger: status NEW = "may have been sent"; SUBMITTED is
            # kept in memory only — after a crash a NEW order is resolved by asking the
            # broker, exactly like a SUBMITTED one would be
            if self.journal is not None:
                await self.journal.record_orders(orders)
            await self._send_burst(approved, [])
            return decisions
        ticket = self._write_ahead(approved, orders, ts)
        burst = _Burst()
        for o in orders:
            self._unrecorded[o.client_order_id] = burst
        try:
            await self._send_burst(approved, orders, ts)
        except BaseException as exc:
            # the orders stay journaled (the next start records them) and every report
            # about them raises from now on: the ledger must not get them out of order
            burst.error = f"{type(exc).__name__}: {exc}"
            burst.done.set()
            raise
        for o in orders:
            del self._unrecorded[o.client_order_id]
        burst.done.set()
        self.wal.confirm(ticket)
        return decisions

    def _write_ahead(self, approved: list[tuple[OrderRecord, OrderIntent]],
                     orders: list[OrderRequest], ts: int) -> tuple[int, ...]:
        """The burst into the order journal, durable before any send (synchronous: no
        other task runs between this and the first submit). Orders it could not journal
        are forgotten — none of them was sent."""
        assert self.wal is not None
        try:
            return self.wal.append(orders, ts)
        except BaseException:
            for rec, _ in approved:
                coid = rec.request.client_order_id
                self.orders.pop(coid, None)
                self._open.pop(coid, None)
                self.book.discard(coid)
            raise

    async def _send_burst(self, approved: list[tuple[OrderRecord, OrderIntent]],
                          journaled: list[OrderRequest], ts: int | None = None) -> None:
        """Send the whole burst back to back; the venue's answers are applied afterwards
        (with the ``journaled`` orders' own records), so no order waits for the ledger."""
        acks = [await self._send(rec) for rec, _ in approved]
        # logged once the burst is out (a log line costs ~50 µs: not between two sends)
        for rec, intent in approved:
            req = rec.request
            log.info("order_submitted", client_order_id=req.client_order_id,
                     symbol=req.symbol, side=req.side.value, quantity=str(req.quantity),
                     strategy=req.strategy, reason=intent.reason)
        await self._apply_acks(acks, journaled, ts)

    async def _apply_acks(self, acks: list[OrderEvent], journaled: list[OrderRequest],
                          ts: int | None) -> None:
        """A burst's answers: each moves its order in memory (as ``on_report`` would), and
        the ledger gets every change — with the journaled orders' records — in ONE
        transaction, not one commit each."""
        moved: list[tuple[OrderRecord, OrderEvent]] = []
        async with self._lock:
            for ack in acks:
                rec = self._known(ack)
                if rec is not None and self._move(rec, ack):
                    moved.append((rec, ack))
            events = [ev for _, ev in moved]
            if self.journal is not None and journaled:
                await self.journal.record_sent(journaled, events, ts)
            elif self.journal is not None and events:
                await self.journal.apply_events(events)
        for rec, ev in moved:
            await self._announce(rec, ev)

    async def _recorded(self, client_order_id: str) -> None:
        """Wait until the ledger has the order's record (it is pending while its burst's
        ledger write is); raises if that write failed — halting beats guessing."""
        burst = self._unrecorded.get(client_order_id)
        if burst is None:
            return
        await burst.done.wait()
        if burst.error:
            raise StorageError(f"order {client_order_id}: its ledger record was not written "
                               f"({burst.error}); the order journal keeps it for the restart")

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

    async def _send(self, rec: OrderRecord) -> OrderEvent:
        """Submit one written-ahead order; returns what to apply: the venue's
        acknowledgement, a REJECTED for a refusal, or UNKNOWN when the outcome cannot be
        known (resolved later by asking the broker)."""
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
            return OrderEvent(req.client_order_id, OrderStatus.UNKNOWN, rec.unknown_since_ns,
                              reason=str(exc))
        except BrokerError as exc:
            ack = OrderEvent(req.client_order_id, OrderStatus.REJECTED, self.clock.now_ns(),
                             reason=f"{type(exc).__name__}: {exc}")
        self.stats.submitted += 1
        return ack

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
        await self._recorded(fill.client_order_id)
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
        await self._recorded(rec.request.client_order_id)
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


__all__ = ["Desk", "DeskStats", "OrderJournal", "OrderRecord", "WriteAhead"]
