"""What the KIS adapter knows about each of its orders, and fill recovery from REST.

KIS pushes fill notices over the WebSocket only to sessions connected at that moment and
never replays them. A notice lost to a dropped session would be a lost fill, so the adapter
also reads today's orders (inquire-daily-ccld) after every reconnect and, while orders are
open, whenever none of them has been heard of for a while. :func:`recover` compares one row
with what the notices told us and emits what is missing: a fill for the difference and the
order's new status, or its cancellation.

A recovered fill's price is the one the row implies: (total filled amount − value already
known) / new quantity, from ``tot_ccld_amt`` (``avg_prvs × filled`` when absent). KIS does
not list the executions of a missed interval one by one, so when more than one fill was
missed they arrive as one fill at their average price. Its trade id is
``<ODNO>:<cumulative quantity>``, the scheme notices use. A notice that arrives after the
poll already counted its quantity is recognised (``recovered``) and dropped; if it was a
different fill after all, the next poll finds the shortfall and recovers it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from brokers.base import BrokerEvent
from brokers.kis import parse
from jts.types import Fill, OrderEvent, OrderRequest, OrderStatus

ZERO = Decimal(0)
_PRICE_QUANTUM = Decimal("0.0001")


@dataclass
class Tracked:
    order: OrderRequest
    odno: str = ""
    orgno: str = ""
    filled: Decimal = ZERO
    sent_ns: int = 0
    filled_value: Decimal | None = ZERO   # None: restored with fills of unknown price
    recovered: Decimal = ZERO             # quantity counted from REST whose notice may follow
    closed: bool = False                  # filled, cancelled or refused: nothing more to hear
    heard_ns: int = 0                     # last notice or answer about this order

    def add_fill(self, quantity: Decimal, price: Decimal) -> None:
        self.filled += quantity
        if self.filled_value is not None:
            self.filled_value += quantity * price
        if self.filled >= self.order.quantity:
            self.closed = True


def recover(t: Tracked, coid: str, row: parse.OrderRow, account: str, now_ns: int
            ) -> list[BrokerEvent]:
    """The events a notice stream that missed nothing would have produced for ``row``."""
    out: list[BrokerEvent] = []
    if row.filled > t.filled:
        delta = row.filled - t.filled
        price = row.avg_price
        if t.filled_value is not None:
            total = row.filled_amount or row.avg_price * row.filled
            implied = (total - t.filled_value) / delta
            if implied > 0:
                price = implied.quantize(_PRICE_QUANTUM).normalize()
        t.add_fill(delta, price)
        t.recovered += delta
        t.heard_ns = now_ns
        out.append(Fill("kis", account, f"{row.order_no}:{t.filled}", coid, t.order.symbol,
                        t.order.side, delta, price, ZERO, ZERO, now_ns, t.order.strategy))
        status = OrderStatus.FILLED if t.closed else OrderStatus.PARTIALLY_FILLED
        out.append(OrderEvent(coid, status, now_ns, t.odno, t.filled))
    if not t.closed and row.remaining <= 0 and row.cancelled > 0:
        t.closed = True
        t.heard_ns = now_ns
        out.append(OrderEvent(coid, OrderStatus.CANCELLED, now_ns, t.odno, t.filled))
    return out
