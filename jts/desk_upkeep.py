"""The desk's order upkeep: UNKNOWN outcomes resolved by asking the broker (never by
resubmitting), resting orders expired, cancel-and-replace and cancel-all — mixed into
:class:`jts.desk.Desk`."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

import structlog

from brokers.base import Broker, BrokerEvent
from jts.clock import Clock
from jts.desk_types import OrderRecord
from jts.errors import BrokerError, OrderRejected
from jts.portfolio import Portfolio
from jts.risk import RiskDecision
from jts.types import OrderIntent, OrderStatus, OrderType

log = structlog.get_logger("jts.desk")


class OrderUpkeep:
    """The upkeep half of the desk (it reads the desk's broker, clock, portfolio, orders)."""

    broker: Broker
    clock: Clock
    portfolio: Portfolio
    orders: dict[str, OrderRecord]

    if TYPE_CHECKING:
        async def on_report(self, report: BrokerEvent) -> None: ...

        async def handle(self, intent: OrderIntent) -> RiskDecision: ...

        def open_orders(self) -> list[OrderRecord]: ...

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
