"""SQLite ledger backend (the embedded default): one file, WAL journal, one writer thread.

Durability: ``journal_mode=WAL`` with ``synchronous=FULL`` — every commit is fsynced before
``apply_fill`` returns, so an acknowledged fill survives a SIGKILL *and* a power cut. Group
commit makes the fsync cost per batch, not per fill. (``?synchronous=normal`` in the URL trades
power-cut durability of the last commits for speed; a process crash still loses nothing.)

All SQLite calls run on one dedicated thread so the event loop never blocks on an fsync.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import structlog

from jts.clock import Clock
from jts.errors import InvariantError, StorageError
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
from jts.storage.urls import file_path, redact
from jts.types import Fill, OrderEvent, OrderRequest

log = structlog.get_logger(__name__)
T = TypeVar("T")
sqlite3.register_adapter(Decimal, str)
_HEADER = b"SQLite format 3\x00"


def _check_file(path: Path, url: str) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb") as fh:
        if fh.read(16) != _HEADER:
            raise StorageError(f"ledger store {redact(url)}: {path} is not an SQLite database "
                               "(corrupt or wrong file); refusing to overwrite it")


class SqliteLedger(q.SqlLedgerBase):
    """Ledger on an SQLite file."""

    def __init__(self, url: str, clock: Clock, conn: sqlite3.Connection,
                 pool: ThreadPoolExecutor) -> None:
        super().__init__(url, clock)
        self._conn = conn
        self._pool = pool
        self._committer = GroupCommitter(self._apply_batch_async)

    @classmethod
    async def open(cls, url: str, clock: Clock) -> SqliteLedger:
        path = file_path(url, "ledger")
        sync = parse_qs(urlsplit(url).query).get("synchronous", ["full"])[0].upper()
        if sync not in ("FULL", "NORMAL", "EXTRA"):
            raise StorageError(f"ledger store {redact(url)}: synchronous must be full|normal|extra")
        pool = ThreadPoolExecutor(1, thread_name_prefix="jts-ledger")

        def connect() -> sqlite3.Connection:
            if str(path) != ":memory:":
                _check_file(path, url)
                path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            try:
                check = conn.execute("PRAGMA quick_check").fetchone()
                if check is None or check[0] != "ok":
                    raise StorageError(f"ledger store {redact(url)}: integrity check failed: "
                                       f"{check[0] if check else 'no answer'}")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA synchronous={sync}")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute("PRAGMA busy_timeout=5000")
            except sqlite3.DatabaseError as exc:
                conn.close()
                raise StorageError(f"ledger store {redact(url)}: {path} is corrupt or not a "
                                   f"ledger database ({exc}); refusing to recreate it") from None
            except BaseException:
                conn.close()
                raise
            return conn

        loop = asyncio.get_running_loop()
        try:
            conn = await loop.run_in_executor(pool, connect)
        except OSError as exc:
            pool.shutdown()
            raise StorageError(f"ledger store {redact(url)}: cannot open {path}: {exc}") from None
        except BaseException:
            pool.shutdown()
            raise
        log.info("ledger_opened", backend="sqlite", path=str(path), synchronous=sync)
        return cls(url, clock, conn, pool)

    async def _run(self, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn)
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"ledger store {redact(self.url)}: {exc}") from exc

    def _tx(self, fn: Callable[[sqlite3.Connection], T]) -> Callable[[], T]:
        def run() -> T:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                out = fn(c)
            except BaseException:
                c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")
            return out
        return run

    async def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return await self._run(lambda: self._conn.execute(sql, args).fetchall())

    async def close(self) -> None:
        await self._committer.close()
        await self._run(self._conn.close)
        self._pool.shutdown()

    # ---- migrations ---------------------------------------------------------------------
    async def schema_version(self) -> int:
        rows = await self._query(
            "SELECT name FROM sqlite_master WHERE type='table' AND name='schema_migrations'")
        if not rows:
            return 0
        got = await self._query("SELECT coalesce(max(version), 0) FROM schema_migrations")
        return int(got[0][0])

    async def migrate(self) -> int:
        def run(c: sqlite3.Connection) -> int:
            c.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                      "(version INTEGER PRIMARY KEY, applied_ns INTEGER NOT NULL)")
            have = c.execute("SELECT coalesce(max(version),0) FROM schema_migrations").fetchone()[0]
            if have > SCHEMA_VERSION:
                raise StorageError(f"ledger store {redact(self.url)}: schema version {have} is "
                                   f"newer than this build ({SCHEMA_VERSION})")
            for version, stmts in enumerate(q.SQLITE_MIGRATIONS, start=1):
                if version <= have:
                    continue
                for stmt in stmts:
                    c.execute(stmt)
                c.execute("INSERT INTO schema_migrations VALUES (?, ?)",
                          (version, self.clock.now_ns()))
                log.info("ledger_migrated", backend="sqlite", version=version)
            return SCHEMA_VERSION
        return await self._run(self._tx(run))

    # ---- orders -------------------------------------------------------------------------
    async def record_order(self, order: OrderRequest, ts_ns: int | None = None) -> None:
        await self.record_orders([order], ts_ns)

    async def record_orders(self, orders: list[OrderRequest], ts_ns: int | None = None
                            ) -> None:
        ts = self.clock.now_ns() if ts_ns is None else ts_ns
        if orders:
            await self._run(self._tx(lambda c: self._insert_orders(c, orders, ts)))

    async def record_sent(self, orders: list[OrderRequest], events: list[OrderEvent],
                          ts_ns: int | None = None) -> None:
        ts = self.clock.now_ns() if ts_ns is None else ts_ns

        def run(c: sqlite3.Connection) -> None:
            self._insert_orders(c, orders, ts)
            self._apply_events(c, events)
        if orders or events:
            await self._run(self._tx(run))

    @staticmethod
    def _insert_orders(c: sqlite3.Connection, orders: list[OrderRequest], ts: int) -> None:
        for order in orders:
            try:
                c.execute(q.INSERT_ORDER.format(*("?" * 16)), q.order_row(order, ts))
            except sqlite3.IntegrityError:
                raise InvariantError(f"order {order.client_order_id} already recorded") from None
            c.execute(q.INSERT_EVENT.format(*"??????"),
                      (order.client_order_id, "new", ts, "", Decimal(0), ""))

    async def apply_event(self, event: OrderEvent) -> OrderRecord:
        await self.apply_events([event])
        rec = await self.order(event.client_order_id)
        assert rec is not None
        return rec

    async def apply_events(self, events: list[OrderEvent]) -> None:
        if events:
            await self._run(self._tx(lambda c: self._apply_events(c, events)))

    @staticmethod
    def _apply_events(c: sqlite3.Connection, events: list[OrderEvent]) -> None:
        states: dict[str, OrderState] = {}
        for event in events:
            coid = event.client_order_id
            state = states.get(coid)
            if state is None:
                row = c.execute(q.SELECT_ORDER_STATE.format("?"), (coid,)).fetchone()
                if row is None:
                    raise InvariantError(f"event for unknown order {coid}")
                state = states[coid] = q.order_state(row)
            apply_event_to(state, event)
        c.executemany(q.UPDATE_ORDER_SQLITE,
                      [q.order_update_row(k, st) for k, st in states.items()])
        c.executemany(q.INSERT_EVENT.format(*"??????"), [q.event_row(e) for e in events])

    # ---- fills --------------------------------------------------------------------------
    async def apply_fill(self, fill: Fill, event: OrderEvent | None = None) -> bool:
        return await self._committer.submit((fill, event))

    async def apply_fills(self, items: list[FillItem]) -> list[bool]:
        return await self._apply_batch_async(items) if items else []

    async def _apply_batch_async(self, items: list[FillItem]) -> list[bool]:
        return await self._run(self._tx(lambda c: self._apply_batch(c, items)))

    def _apply_batch(self, c: sqlite3.Connection, items: list[FillItem]) -> list[bool]:
        existing = set()
        for f, _ in items:
            if c.execute("SELECT 1 FROM fills WHERE broker=? AND account=? AND trade_id=?",
                         (f.broker, f.account, f.trade_id)).fetchone():
                existing.add((f.broker, f.account, f.trade_id))
        orders: dict[str, OrderState] = {}
        for coid in {f.client_order_id for f, _ in items}:
            row = c.execute(q.SELECT_ORDER_STATE.format("?"), (coid,)).fetchone()
            if row:
                orders[coid] = q.order_state(row)
        positions: dict[tuple[str, str, str], PositionState] = {}
        for key in {(f.broker, f.account, f.symbol) for f, _ in items}:
            row = c.execute("SELECT quantity, avg_price, realized_pnl FROM positions WHERE "
                            "broker=? AND account=? AND symbol=?", key).fetchone()
            if row:
                positions[key] = PositionState(Decimal(row[0]), Decimal(row[1]), Decimal(row[2]))
        cash: dict[tuple[str, str], Decimal] = {}
        for ak in {(f.broker, f.account) for f, _ in items}:
            row = c.execute("SELECT amount FROM cash WHERE broker=? AND account=?", ak).fetchone()
            if row:
                cash[ak] = Decimal(row[0])
        plan = plan_batch(items, existing, orders, positions, cash)
        c.executemany(q.INSERT_FILL.format(*("?" * 14)), [q.fill_row(f, r) for f, r in plan.fills])
        c.executemany(q.UPDATE_ORDER_SQLITE, [q.order_update_row(k, s)
                                              for k, s in plan.orders.items() if s.touched])
        c.executemany(q.INSERT_EVENT.format(*"??????"), [q.event_row(e) for e in plan.events])
        c.executemany(q.UPSERT_POSITION.format(*"???????"),
                      [q.position_row(k, p) for k, p in plan.positions.items() if p.touched])
        c.executemany(q.UPSERT_CASH.format(*"????"),
                      [(*ak, plan.cash[ak], self.clock.now_ns()) for ak in plan.cash_touched])
        return plan.results

    # ---- cash, audit --------------------------------------------------------------------
    async def set_cash(self, broker: str, account: str, amount: Decimal,
                       reason: str = "deposit", ts_ns: int | None = None) -> None:
        ts = self.clock.now_ns() if ts_ns is None else ts_ns

        def run(c: sqlite3.Connection) -> None:
            row = c.execute("SELECT amount FROM cash WHERE broker=? AND account=?",
                            (broker, account)).fetchone()
            delta = amount - (Decimal(row[0]) if row else Decimal(0))
            c.execute("INSERT INTO cash_movements (broker, account, amount, ts_ns, reason) "
                      "VALUES (?, ?, ?, ?, ?)", (broker, account, delta, ts, reason))
            c.execute(q.UPSERT_CASH.format(*"????"), (broker, account, amount, ts))
        await self._run(self._tx(run))

    async def audit(self, event: str, fields: dict[str, object] | None = None,
                    ts_ns: int | None = None) -> AuditEntry:
        ts = self.clock.now_ns() if ts_ns is None else ts_ns

        def run(c: sqlite3.Connection) -> AuditEntry:
            head = c.execute("SELECT value FROM meta WHERE key='audit_head'").fetchone()
            entry, row, head_value = q.next_audit(head[0] if head else None, ts, event,
                                                  fields or {})
            c.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?)", row)
            c.execute("INSERT INTO meta VALUES ('audit_head', ?) ON CONFLICT(key) "
                      "DO UPDATE SET value=excluded.value", (head_value,))
            return entry
        return await self._run(self._tx(run))
