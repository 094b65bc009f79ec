"""The ledger port: orders and their state changes, fills, positions, cash, daily P&L, audit.

Backends: :mod:`jts.storage.ledger_sqlite` (embedded default, ``sqlite:///path``) and
:mod:`jts.storage.ledger_postgres` (``postgresql://…``), chosen by :func:`open_ledger`.

Guarantees every backend gives (checked by one contract suite):

* ``record_order`` writes the order (status NEW) *before* it is sent (write-ahead), unless
  the order journal (:mod:`jts.storage.order_wal`) holds it: then ``record_sent`` writes the
  burst's orders and their acknowledgements together, in one transaction, after the sends.
* ``apply_event`` enforces :mod:`jts.orders`; an illegal transition raises InvariantError and
  changes nothing (``apply_events``: for the whole batch).
* ``apply_fill`` commits the fill, the order's state change, the position and the cash in one
  transaction; a second fill with the same (broker, account, trade_id) returns False and changes
  nothing. Concurrent callers are group-committed (one transaction, one fsync, many fills).
* Positions and cash are derivable from fills + cash movements; ``verify`` recomputes them and
  checks the hash-chained, append-only audit log (edited, deleted or truncated entries).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

import msgspec

from jts.clock import Clock, LiveClock
from jts.errors import StorageError
from jts.storage.urls import redact, scheme_of
from jts.types import Fill, OrderEvent, OrderRequest, OrderStatus, Position


class OrderRecord(msgspec.Struct, frozen=True):
    """An order as the ledger knows it: the request plus its current state."""

    request: OrderRequest
    status: OrderStatus
    created_ns: int
    updated_ns: int
    broker_order_id: str = ""
    filled_quantity: Decimal = Decimal(0)
    reason: str = ""


class AuditEntry(msgspec.Struct, frozen=True):
    seq: int
    ts_ns: int
    event: str
    fields: dict[str, object]
    hash: str


class VerifyReport(msgspec.Struct, frozen=True):
    """What ``verify`` found. ``ok`` is True only when ``problems`` is empty."""

    ok: bool
    problems: list[str]
    fills: int
    orders: int
    positions: int
    audit_entries: int


class Ledger(Protocol):
    """The ledger port (see the module docstring for its guarantees)."""

    url: str

    async def migrate(self) -> int:
        """Apply pending schema migrations (idempotent); return the schema version."""
        ...

    async def schema_version(self) -> int: ...

    async def close(self) -> None: ...

    async def record_order(self, order: OrderRequest, ts_ns: int | None = None) -> None: ...

    async def record_orders(self, orders: list[OrderRequest], ts_ns: int | None = None
                            ) -> None:
        """Write several orders ahead in ONE transaction (one durable commit for a burst)."""
        ...

    async def record_sent(self, orders: list[OrderRequest], events: list[OrderEvent],
                          ts_ns: int | None = None) -> None:
        """Orders already sent (journaled ahead in the order journal) and then ``events``
        (their acknowledgements), in ONE transaction: an illegal event, an unknown order or
        an order recorded before raises InvariantError and nothing is written."""
        ...

    async def known_orders(self, client_order_ids: list[str]) -> set[str]:
        """Which of ``client_order_ids`` the ledger has recorded."""
        ...

    async def apply_event(self, event: OrderEvent) -> OrderRecord: ...

    async def apply_events(self, events: list[OrderEvent]) -> None:
        """Apply several order events, in order, in ONE transaction (a burst's
        acknowledgements); an illegal transition raises InvariantError and changes nothing."""
        ...

    async def apply_fill(self, fill: Fill, event: OrderEvent | None = None) -> bool: ...

    async def apply_fills(self, items: list[tuple[Fill, OrderEvent | None]]) -> list[bool]:
        """Apply many fills in one transaction; one bool per item (False: duplicate)."""
        ...

    async def order(self, client_order_id: str) -> OrderRecord | None: ...

    async def open_orders(self) -> list[OrderRecord]: ...

    async def positions(self) -> list[Position]: ...

    async def cash(self, broker: str, account: str) -> Decimal: ...

    async def set_cash(self, broker: str, account: str, amount: Decimal,
                       reason: str = "deposit", ts_ns: int | None = None) -> None:
        """Set the account's cash to ``amount`` by recording the difference as a movement."""
        ...

    async def fills(self, since_ns: int = 0) -> list[Fill]: ...

    async def realized_pnl(self, day: str, broker: str | None = None,
                           account: str | None = None) -> Decimal:
        """Realized P&L net of commission and tax for one KST day (``YYYY-MM-DD``)."""
        ...

    async def audit(self, event: str, fields: dict[str, object] | None = None,
                    ts_ns: int | None = None) -> AuditEntry: ...

    async def audit_entries(self, since_seq: int = 0) -> list[AuditEntry]: ...

    async def verify(self) -> VerifyReport: ...


async def open_ledger(url: str, *, clock: Clock | None = None,
                      auto_migrate: bool | None = None) -> Ledger:
    """Open the ledger named by ``url``.

    ``auto_migrate`` defaults to True for SQLite (the embedded default migrates itself at
    start) and False for PostgreSQL (run ``jts db migrate``); an un-migrated or out-of-date
    schema then raises StorageError telling the operator what to run.
    """
    scheme = scheme_of(url, "ledger", ("sqlite", "postgresql"))
    clock = clock or LiveClock()
    ledger: Ledger
    if scheme == "sqlite":
        from jts.storage.ledger_sqlite import SqliteLedger
        ledger = await SqliteLedger.open(url, clock)
        migrate_now = True if auto_migrate is None else auto_migrate
    else:
        from jts.storage.ledger_postgres import PostgresLedger
        ledger = await PostgresLedger.open(url, clock)
        migrate_now = bool(auto_migrate)
    from jts.storage.ledger_core import SCHEMA_VERSION
    if migrate_now:
        await ledger.migrate()
    else:
        have = await ledger.schema_version()
        if have != SCHEMA_VERSION:
            await ledger.close()
            raise StorageError(
                f"ledger store {redact(url)}: schema version {have}, this build needs "
                f"{SCHEMA_VERSION}; run `jts db migrate`")
    return ledger
