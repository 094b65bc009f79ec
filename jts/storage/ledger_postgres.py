"""PostgreSQL ledger backend (asyncpg): NUMERIC money, one connection, serialized writers.

Every write transaction first takes a transaction-scoped advisory lock, so two processes
writing the same ledger serialize instead of racing on fill sequence numbers or positions.
Batches use asyncpg's pipelined ``executemany``: one batch of fills costs a handful of round
trips and one durable commit (``synchronous_commit`` stays on).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import asyncpg
import structlog

from jts.clock import Clock
from jts.errors import InvariantError, JTSError, StorageError
from jts.storage import ledger_sql as q
from jts.storage.ledger import AuditEntry, OrderRecord
from jts.storage.ledger_core import (
    SCHEMA_VERSION,
    FillItem,
    GroupCommitter,
    OrderState,
    PositionState,
    apply_event_to,
    plan_batch,
)
from jts.storage.urls import redact
from jts.types import Fill, OrderEvent, OrderRequest

log = structlog.get_logger(__name__)
T = TypeVar("T")
_LOCK_KEY = 0x4A5453_4C4447  # "JTSLDG"


def _ph(sql: str, n: int) -> str:
    return sql.format(*[f"${i}" for i in range(1, n + 1)])


class PostgresLedger(q.SqlLedgerBase):
    """Ledger in a PostgreSQL database."""

    placeholder = "$"

    def __init__(self, url: str, clock: Clock, conn: asyncpg.Connection) -> None:
        super().__init__(url, clock)
        self._conn = conn
        self._lock = asyncio.Lock()
        self._committer = GroupCommitter(self._apply_batch)

    @classmethod
    async def open(cls, url: str, clock: Clock) -> PostgresLedger:
        dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        try:
            conn = await asyncpg.connect(dsn, timeout=10)
        except (TimeoutError, OSError, asyncpg.PostgresError, ValueError) as exc:
            raise StorageError(f"ledger store {redact(url)}: cannot connect: "
                               f"{type(exc).__name__}: {exc}") from None
        log.info("ledger_opened", backend="postgresql", url=redact(url))
        return cls(url, clock, conn)

    async def _guard(self, fn: Callable[[], Awaitable[T]]) -> T:
        async with self._lock:
            try:
                return await fn()
            except JTSError:
                raise
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                raise StorageError(f"ledger store {redact(self.url)}: "
                                   f"{type(exc).__name__}: {exc}") from exc

    async def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        return await self._guard(lambda: self._conn.fetch(sql, *args))

    async def _tx(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        async def run() -> T:
            async with self._conn.transaction():
                await self._conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
                return await fn(self._conn)
        return await self._guard(run)

    async def close(self) -> None:
        await self._committer.close()
        await self._conn.close()

    # ---- migrations ---------------------------------------------------------------------
    async def schema_version(self) -> int:
        exists = await self._query("SELECT to_regclass('schema_migrations') IS NOT NULL")
        if not exists[0][0]:
            return 0
        rows = await self._query("SELECT coalesce(max(version), 0) FROM schema_migrations")
        return int(rows[0][0])

    async def migrate(self) -> int:
        async def run(c: asyncpg.Connection) -> int:
            await c.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                            "(version INTEGER PRIMARY KEY, applied_ns BIGINT NOT NULL)")
            have = await c.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations")
            if have > SCHEMA_VERSION:
                raise StorageError(f"ledger store {redact(self.url)}: schema version {have} is "
                                   f"newer than this build ({SCHEMA_VERSION})")
            for version, stmts in enumerate(q.POSTGRES_MIGRATIONS, start=1):
                if version <= have:
                    continue
                for stmt in stmts:
                    await c.execute(stmt)
                await c.execute("INSERT INTO schema_migrations VALUES ($1, $2)",
                                version, self.clock.now_ns())
                log.info("ledger_migrated", backend="postgresql", version=version)
            return SCHEMA_VERSION
        return await self._tx(run)

    # ---- orders -------------------------------------------------------------------------
    async def record_order(self, order: OrderRequest, ts_ns: int | None = None) -> None:
        await self.record_orders([order], ts_ns)

    async def record_orders(self, orders: list[OrderRequest], ts_ns: int | None = None
                            ) -> None:
        ts = self.clock.now_ns() if ts_ns is None else ts_ns
        if orders:
            await self._tx(lambda c: self._insert_orders(c, orders, ts))

    async def record_sent(self, orders: list[OrderRequest], events: list[OrderEvent],
                          ts_ns: int | None = None) -> None:
        ts = self.clock.now_ns() if ts_ns is None else ts_ns

        async def run(c: asyncpg.Connection) -> None:
            await self._insert_orders(c, orders, ts)
            await self._apply_events(c, events)
        if orders or events:
            await self._tx(run)

    @staticmethod
    async def _insert_orders(c: asyncpg.Connection, orders: list[OrderRequest], ts: int
                             ) -> None:
        if not orders:
            return
        try:          # pipelined: a burst of 400 orders is not 800 round trips
            await c.executemany(_ph(q.INSERT_ORDER, 16), [q.order_row(o, ts) for o in orders])
        except asyncpg.UniqueViolationError as exc:
            got = re.search(r"=\((.*)\) already exists", str(exc.detail or ""))
            coid = got.group(1) if got else "of this batch"
            raise InvariantError(f"order {coid} already recorded") from None
        await c.executemany(_ph(q.INSERT_EVENT, 6),
                            [(o.client_order_id, "new", ts, "", Decimal(0), "") for o in orders])

    async def apply_event(self, event: OrderEvent) -> OrderRecord:
        await self.apply_events([event])
        rec = await self.order(event.client_order_id)
        assert rec is not None
        return rec

    async def apply_events(self, events: list[OrderEvent]) -> None:
        if events:
            await self._tx(lambda c: self._apply_events(c, events))

    @staticmethod
    async def _apply_events(c: asyncpg.Connection, events: list[OrderEvent]) -> None:
        if not events:
            return
        coids = sorted({e.client_order_id for e in events})
        states: dict[str, OrderState] = {
            r[6]: q.order_state(r) for r in await c.fetch(
                q.SELECT_ORDER_STATE.format("ANY($1::text[])") + " FOR UPDATE", coids)}
        for event in events:
            state = states.get(event.client_order_id)
            if state is None:
                raise InvariantError(f"event for unknown order {event.client_order_id}")
            apply_event_to(state, event)
        await c.executemany(_ph(q.UPDATE_ORDER, 6),
                            [q.order_update_row(k, st) for k, st in states.items()])
        await c.executemany(_ph(q.INSERT_EVENT, 6), [q.event_row(e) for e in events])

    # ---- fills --------------------------------------------------------------------------
    async def apply_fill(self, fill: Fill, event: OrderEvent | None = None) -> bool:
        return await self._committer.submit((fill, event))

    async def apply_fills(self, items: list[FillItem]) -> list[bool]:
        return await self._apply_batch(items) if items else []

    async def _apply_batch(self, items: list[FillItem]) -> list[bool]:
        return await self._tx(lambda c: self._write_batch(c, items))

    async def _write_batch(self, c: asyncpg.Connection, items: list[FillItem]) -> list[bool]:
        fs = [f for f, _ in items]
        rows = await c.fetch(
            "SELECT f.broker, f.account, f.trade_id FROM fills f JOIN unnest($1::text[], "
            "$2::text[], $3::text[]) AS k(b, a, t) ON f.broker = k.b AND f.account = k.a "
            "AND f.trade_id = k.t", [f.broker for f in fs], [f.account for f in fs],
            [f.trade_id for f in fs])
        existing = {(r[0], r[1], r[2]) for r in rows}
        coids = sorted({f.client_order_id for f in fs})
        orders: dict[str, OrderState] = {
            r[6]: q.order_state(r) for r in await c.fetch(
                q.SELECT_ORDER_STATE.format("ANY($1::text[])") + " FOR UPDATE", coids)}
        keys = sorted({(f.broker, f.account, f.symbol) for f in fs})
        positions: dict[tuple[str, str, str], PositionState] = {
            (r[0], r[1], r[2]): PositionState(r[3], r[4], r[5]) for r in await c.fetch(
                "SELECT p.broker, p.account, p.symbol, p.quantity, p.avg_price, p.realized_pnl "
                "FROM positions p JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(b, a, s) "
                "ON p.broker = k.b AND p.account = k.a AND p.symbol = k.s",
                [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys])}
        accts = sorted({(f.broker, f.account) for f in fs})
        cash: dict[tuple[str, str], Decimal] = {
            (r[0], r[1]): r[2] for r in await c.fetch(
                "SELECT c.broker, c.account, c.amount FROM cash c JOIN unnest($1::text[], "
                "$2::text[]) AS k(b, a) ON c.broker = k.b AND c.account = k.a",
                [a[0] for a in accts], [a[1] for a in accts])}
        plan = plan_batch(items, existing, orders, positions, cash)
        now = self.clock.now_ns()
        if plan.fills:
            await c.executemany(_ph(q.INSERT_FILL, 14), [q.fill_row(f, r) for f, r in plan.fills])
        touched = [q.order_update_row(k, s) for k, s in plan.orders.items() if s.touched]
        if touched:
            await c.executemany(_ph(q.UPDATE_ORDER, 6), touched)
        if plan.events:
            await c.executemany(_ph(q.INSERT_EVENT, 6), [q.event_row(e) for e in plan.events])
        pos_rows = [q.position_row(k, p) for k, p in plan.positions.items() if p.touched]
        if pos_rows:
            await c.executemany(_ph(q.UPSERT_POSITION, 7), pos_rows)
        if plan.cash_touched:
            await c.executemany(_ph(q.UPSERT_CASH, 4),
                                [(*ak, plan.cash[ak], now) for ak in sorted(plan.cash_touched)])
        return plan.results

    # ---- cash, audit --------------------------------------------------------------------
    async def set_cash(self, broker: str, account: str, amount: Decimal,
                       reason: str = "deposit", ts_ns: int | None = None) -> None:
        ts = self.clock.now_ns() if ts_ns is None else ts_ns

        async def run(c: asyncpg.Connection) -> None:
            have = await c.fetchval("SELECT amount FROM cash WHERE broker=$1 AND account=$2",
                                    broker, account)
            delta = amount - (have if have is not None else Decimal(0))
            await c.execute("INSERT INTO cash_movements (broker, account, amount, ts_ns, reason) "
                            "VALUES ($1, $2, $3, $4, $5)", broker, account, delta, ts, reason)
            await c.execute(_ph(q.UPSERT_CASH, 4), broker, account, amount, ts)
        await self._tx(run)

    async def audit(self, event: str, fields: dict[str, object] | None = None,
                    ts_ns: int | None = None) -> AuditEntry:
        ts = self.clock.now_ns() if ts_ns is None else ts_ns

        async def run(c: asyncpg.Connection) -> AuditEntry:
            head = await c.fetchval("SELECT value FROM meta WHERE key = 'audit_head'")
            entry, row, head_value = q.next_audit(head, ts, event, fields or {})
            await c.execute("INSERT INTO audit VALUES ($1, $2, $3, $4, $5, $6)", *row)
            await c.execute("INSERT INTO meta VALUES ('audit_head', $1) ON CONFLICT (key) "
                            "DO UPDATE SET value = excluded.value", head_value)
            return entry
        return await self._tx(run)
