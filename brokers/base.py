"""The broker port: what every adapter (paper, KIS, Creon, Upbit, Binance) implements.

Commands are awaited calls; what the venue reports back (order state changes and fills)
arrives through :meth:`Broker.events` as an async iterator. ``submit`` never retries: an
outcome it cannot know raises :class:`jts.errors.OrderOutcomeUnknown`, and the caller
resolves it with :meth:`Broker.query_order`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from jts.types import Balance, Fill, OrderEvent, OrderRequest, Position

BrokerEvent = OrderEvent | Fill


@runtime_checkable
class Broker(Protocol):
    name: str          # registry name, e.g. "paper", "kis"
    account: str       # account id this adapter instance trades

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def submit(self, order: OrderRequest) -> OrderEvent:
        """Send a new order. Returns the acknowledgement (ACCEPTED or REJECTED)."""
        ...

    async def cancel(self, client_order_id: str) -> OrderEvent: ...

    async def query_order(self, client_order_id: str) -> OrderEvent | None:
        """The venue's view of one order (None: the venue has never seen it)."""
        ...

    async def open_orders(self) -> list[OrderEvent]: ...

    async def positions(self) -> list[Position]: ...

    async def balance(self) -> Balance: ...

    def events(self) -> AsyncIterator[BrokerEvent]:
        """Order events and fills, in the venue's order, for the daemon's router."""
        ...
