"""The desk's records and the ports it needs: the ledger (``OrderJournal``) and the order
journal (``WriteAhead``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from jts.types import Fill, OrderEvent, OrderRequest, OrderStatus


class OrderJournal(Protocol):
    """What the desk needs of the ledger (write-ahead and atomic fill application)."""

    async def record_order(self, order: OrderRequest) -> None: ...

    async def record_orders(self, orders: list[OrderRequest]) -> None:
        """A burst's write-ahead, one transaction."""

    async def record_sent(self, orders: list[OrderRequest], events: list[OrderEvent],
                          ts_ns: int | None = None) -> None:
        """A journaled burst's orders and acknowledgements, one transaction."""

    async def apply_event(self, event: OrderEvent) -> object: ...

    async def apply_events(self, events: list[OrderEvent]) -> None:
        """A burst's acknowledgements, one transaction."""

    async def apply_fill(self, fill: Fill, event: OrderEvent | None) -> bool: ...


class WriteAhead(Protocol):
    """The order journal (:class:`jts.storage.order_wal.OrderWal`) as the desk uses it."""

    def append(self, orders: list[OrderRequest], ts_ns: int) -> tuple[int, ...]:
        """Durable on return; the ticket is confirmed once the ledger has the orders."""
        ...

    def confirm(self, ticket: tuple[int, ...]) -> None: ...


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
