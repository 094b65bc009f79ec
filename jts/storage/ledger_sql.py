"""SQL shared by the SQLite and PostgreSQL ledgers: schema migrations, statements (with
``{}`` placeholders each backend fills with ``?`` or ``$n``), row converters, and the read and
verify half of the ledger, written once against a small ``_query`` primitive."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from jts.clock import Clock
from jts.storage.ledger import AuditEntry, OrderRecord, VerifyReport
from jts.storage.ledger_core import (
    GENESIS,
    ZERO,
    OrderState,
    PositionState,
    audit_hash,
    canonical_json,
    check_audit_chain,
    compare_state,
    recompute,
)
from jts.types import Fill, OrderEvent, OrderRequest, OrderStatus, OrderType, Position, Side


def _schema(dec: str, big: str, serial: str) -> list[str]:
    return [
        f"""CREATE TABLE orders (client_order_id TEXT PRIMARY KEY, broker TEXT NOT NULL,
            account TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL,
            quantity {dec} NOT NULL, order_type TEXT NOT NULL, limit_price {dec},
            strategy TEXT NOT NULL, venue TEXT NOT NULL, status TEXT NOT NULL,
            broker_order_id TEXT NOT NULL, filled_quantity {dec} NOT NULL, reason TEXT NOT NULL,
            created_ns {big} NOT NULL, updated_ns {big} NOT NULL)""",
        "CREATE INDEX orders_status ON orders (status)",
        f"""CREATE TABLE order_events (seq {serial}, client_order_id TEXT NOT NULL,
            status TEXT NOT NULL, ts_ns {big} NOT NULL, broker_order_id TEXT NOT NULL,
            filled_quantity {dec} NOT NULL, reason TEXT NOT NULL)""",
        "CREATE INDEX order_events_coid ON order_events (client_order_id)",
        f"""CREATE TABLE fills (seq {big} PRIMARY KEY, broker TEXT NOT NULL,
            account TEXT NOT NULL, trade_id TEXT NOT NULL, client_order_id TEXT NOT NULL,
            symbol TEXT NOT NULL, side TEXT NOT NULL, quantity {dec} NOT NULL,
            price {dec} NOT NULL, commission {dec} NOT NULL, tax {dec} NOT NULL,
            ts_ns {big} NOT NULL, strategy TEXT NOT NULL, realized_pnl {dec} NOT NULL,
            day TEXT NOT NULL, CONSTRAINT fills_trade_unique UNIQUE (broker, account, trade_id))""",
        "CREATE INDEX fills_ts ON fills (ts_ns)",
        "CREATE INDEX fills_day ON fills (day)",
        f"""CREATE TABLE positions (broker TEXT NOT NULL, account TEXT NOT NULL,
            symbol TEXT NOT NULL, quantity {dec} NOT NULL, avg_price {dec} NOT NULL,
            realized_pnl {dec} NOT NULL, updated_ns {big} NOT NULL,
            PRIMARY KEY (broker, account, symbol))""",
        f"""CREATE TABLE cash (broker TEXT NOT NULL, account TEXT NOT NULL, amount {dec} NOT NULL,
            updated_ns {big} NOT NULL, PRIMARY KEY (broker, account))""",
        f"""CREATE TABLE cash_movements (seq {serial}, broker TEXT NOT NULL,
            account TEXT NOT NULL, amount {dec} NOT NULL, ts_ns {big} NOT NULL,
            reason TEXT NOT NULL)""",
        f"""CREATE TABLE audit (seq {big} PRIMARY KEY, ts_ns {big} NOT NULL, event TEXT NOT NULL,
            fields TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)""",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ]


SQLITE_MIGRATIONS: list[list[str]] = [
    [
        *_schema("TEXT", "INTEGER", "INTEGER PRIMARY KEY AUTOINCREMENT"),
        "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit "
        "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END",
        "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit "
        "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END",
    ],
]

POSTGRES_MIGRATIONS: list[list[str]] = [
    [
        *_schema("NUMERIC", "BIGINT", "BIGSERIAL PRIMARY KEY"),
        """CREATE FUNCTION jts_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN RAISE EXCEPTION 'audit log is append-only'; END $$""",
        """CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit
           FOR EACH STATEMENT EXECUTE FUNCTION jts_audit_append_only()""",
    ],
]

_ORDER_COLS = ("client_order_id, broker, account, symbol, side, quantity, order_type, "
               "limit_price, strategy, venue, status, broker_order_id, filled_quantity, reason, "
               "created_ns, updated_ns")
INSERT_ORDER = f"INSERT INTO orders ({_ORDER_COLS}) VALUES ({', '.join(['{}'] * 16)})"
SELECT_ORDER_STATE = ("SELECT status, quantity, filled_quantity, broker_order_id, reason, "
                      "updated_ns, client_order_id FROM orders WHERE client_order_id = {}")
UPDATE_ORDER = ("UPDATE orders SET status={}, broker_order_id={}, filled_quantity={}, "
                "reason={}, updated_ns={} WHERE client_order_id={}")
UPDATE_ORDER_SQLITE = UPDATE_ORDER.format(*"??????")
INSERT_EVENT = ("INSERT INTO order_events (client_order_id, status, ts_ns, broker_order_id, "
                "filled_quantity, reason) VALUES ({}, {}, {}, {}, {}, {})")
_FILL_COLS = ("seq, broker, account, trade_id, client_order_id, symbol, side, quantity, price, "
              "commission, tax, ts_ns, strategy, realized_pnl, day")
INSERT_FILL = (f"INSERT INTO fills ({_FILL_COLS}) VALUES "
               f"((SELECT coalesce(max(seq), 0) + 1 FROM fills), {', '.join(['{}'] * 14)})")
UPSERT_POSITION = ("INSERT INTO positions (broker, account, symbol, quantity, avg_price, "
                   "realized_pnl, updated_ns) VALUES ({}, {}, {}, {}, {}, {}, {}) "
                   "ON CONFLICT (broker, account, symbol) DO UPDATE SET "
                   "quantity=excluded.quantity, avg_price=excluded.avg_price, "
                   "realized_pnl=excluded.realized_pnl, updated_ns=excluded.updated_ns")
UPSERT_CASH = ("INSERT INTO cash (broker, account, amount, updated_ns) VALUES ({}, {}, {}, {}) "
               "ON CONFLICT (broker, account) DO UPDATE SET amount=excluded.amount, "
               "updated_ns=excluded.updated_ns")


def order_row(o: OrderRequest, ts: int) -> tuple[Any, ...]:
    return (o.client_order_id, o.broker, o.account, o.symbol, o.side.value, o.quantity,
            o.order_type.value, o.limit_price, o.strategy, o.venue, OrderStatus.NEW.value, "",
            ZERO, "", ts, ts)


def order_state(row: Any) -> OrderState:
    return OrderState(OrderStatus(row[0]), Decimal(row[1]), Decimal(row[2]), row[3], row[4],
                      int(row[5]))


def order_update_row(coid: str, s: OrderState) -> tuple[Any, ...]:
    return (s.status.value, s.broker_order_id, s.filled, s.reason, s.updated_ns, coid)


def event_row(e: OrderEvent) -> tuple[Any, ...]:
    return (e.client_order_id, e.status.value, e.ts_ns, e.broker_order_id, e.filled_quantity,
            e.reason)


def fill_row(f: Fill, realized: Decimal) -> tuple[Any, ...]:
    from jts.storage.ledger_core import kst_day
    return (f.broker, f.account, f.trade_id, f.client_order_id, f.symbol, f.side.value,
            f.quantity, f.price, f.commission, f.tax, f.ts_ns, f.strategy, realized,
            kst_day(f.ts_ns))


def position_row(k: tuple[str, str, str], p: PositionState) -> tuple[Any, ...]:
    return (*k, p.quantity, p.avg_price, p.realized, p.updated_ns)


def next_audit(head: str | None, ts: int, event: str, fields: dict[str, object]
               ) -> tuple[AuditEntry, tuple[Any, ...], str]:
    """The next audit entry after ``head`` ("seq:hash"), its row and the new head value."""
    seq, prev = (0, GENESIS) if head is None else (int(head.split(":")[0]), head.split(":")[1])
    seq += 1
    fj = canonical_json(fields)
    digest = audit_hash(prev, seq, ts, event, fj)
    entry = AuditEntry(seq, ts, event, json.loads(fj), digest)
    return entry, (seq, ts, event, fj, prev, digest), f"{seq}:{digest}"


_FILL_SELECT = ("SELECT broker, account, trade_id, client_order_id, symbol, side, quantity, "
                "price, commission, tax, ts_ns, strategy FROM fills")
_ORDER_SELECT = f"SELECT {_ORDER_COLS} FROM orders"


def _fill(r: Any) -> Fill:
    return Fill(r[0], r[1], r[2], r[3], r[4], Side(r[5]), Decimal(r[6]), Decimal(r[7]),
                Decimal(r[8]), Decimal(r[9]), int(r[10]), r[11])


def _order(r: Any) -> OrderRecord:
    req = OrderRequest(r[0], r[1], r[2], r[3], Side(r[4]), Decimal(r[5]), OrderType(r[6]),
                       None if r[7] is None else Decimal(r[7]), r[8], r[9])
    return OrderRecord(req, OrderStatus(r[10]), int(r[14]), int(r[15]), r[11], Decimal(r[12]),
                       r[13])


class SqlLedgerBase:
    """Reads and verification common to both SQL backends."""

    placeholder = "?"

    def __init__(self, url: str, clock: Clock) -> None:
        self.url = url
        self.clock = clock

    async def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        raise NotImplementedError

    def _p(self, n: int) -> list[str]:
        return ["?"] * n if self.placeholder == "?" else [f"${i}" for i in range(1, n + 1)]

    async def order(self, client_order_id: str) -> OrderRecord | None:
        rows = await self._query(f"{_ORDER_SELECT} WHERE client_order_id = {self._p(1)[0]}",
                                 (client_order_id,))
        return _order(rows[0]) if rows else None

    async def known_orders(self, client_order_ids: list[str]) -> set[str]:
        ids = list(dict.fromkeys(client_order_ids))
        if self.placeholder != "?":
            rows = await self._query("SELECT client_order_id FROM orders WHERE "
                                     "client_order_id = ANY($1::text[])", (ids,))
            return {r[0] for r in rows}
        out: set[str] = set()
        for at in range(0, len(ids), 500):        # SQLite's bound-parameter limit
            chunk = tuple(ids[at:at + 500])
            rows = await self._query("SELECT client_order_id FROM orders WHERE client_order_id "
                                     f"IN ({', '.join('?' * len(chunk))})", chunk)
            out.update(r[0] for r in rows)
        return out

    async def open_orders(self) -> list[OrderRecord]:
        closed = ", ".join(f"'{s.value}'" for s in OrderStatus if s.is_terminal)
        rows = await self._query(f"{_ORDER_SELECT} WHERE status NOT IN ({closed}) "
                                 "ORDER BY created_ns, client_order_id")
        return [_order(r) for r in rows]

    async def positions(self) -> list[Position]:
        rows = await self._query("SELECT broker, account, symbol, quantity, avg_price "
                                 "FROM positions ORDER BY broker, account, symbol")
        out = [Position(r[0], r[1], r[2], Decimal(r[3]), Decimal(r[4])) for r in rows]
        return [p for p in out if p.quantity != 0]

    async def cash(self, broker: str, account: str) -> Decimal:
        p = self._p(2)
        rows = await self._query(f"SELECT amount FROM cash WHERE broker={p[0]} AND account={p[1]}",
                                 (broker, account))
        return Decimal(rows[0][0]) if rows else ZERO

    async def fills(self, since_ns: int = 0) -> list[Fill]:
        rows = await self._query(f"{_FILL_SELECT} WHERE ts_ns >= {self._p(1)[0]} ORDER BY seq",
                                 (since_ns,))
        return [_fill(r) for r in rows]

    async def realized_pnl(self, day: str, broker: str | None = None,
                           account: str | None = None) -> Decimal:
        rows = await self._query(f"SELECT broker, account, realized_pnl, commission, tax FROM "
                                 f"fills WHERE day = {self._p(1)[0]}", (day,))
        return sum((Decimal(r[2]) - Decimal(r[3]) - Decimal(r[4]) for r in rows
                    if (broker is None or r[0] == broker) and (account is None or r[1] == account)),
                   ZERO)

    async def audit_entries(self, since_seq: int = 0) -> list[AuditEntry]:
        rows = await self._query(f"SELECT seq, ts_ns, event, fields, hash FROM audit "
                                 f"WHERE seq > {self._p(1)[0]} ORDER BY seq", (since_seq,))
        return [AuditEntry(int(r[0]), int(r[1]), r[2], json.loads(r[3]), r[4]) for r in rows]

    async def verify(self) -> VerifyReport:
        fills = await self.fills()
        moves = [(r[0], r[1], Decimal(r[2])) for r in await self._query(
            "SELECT broker, account, amount FROM cash_movements ORDER BY seq")]
        stored_pos = {(r[0], r[1], r[2]): (Decimal(r[3]), Decimal(r[4])) for r in
                      await self._query("SELECT broker, account, symbol, quantity, avg_price "
                                        "FROM positions")}
        stored_cash = {(r[0], r[1]): Decimal(r[2]) for r in
                       await self._query("SELECT broker, account, amount FROM cash")}
        d_pos, d_cash = recompute(fills, moves)
        problems = compare_state(d_pos, stored_pos, d_cash, stored_cash)
        audit = [(int(r[0]), int(r[1]), r[2], r[3], r[4], r[5]) for r in await self._query(
            "SELECT seq, ts_ns, event, fields, prev_hash, hash FROM audit ORDER BY seq")]
        head_rows = await self._query("SELECT value FROM meta WHERE key = 'audit_head'")
        head = None
        if head_rows:
            seq, digest = head_rows[0][0].split(":")
            head = (int(seq), digest)
        problems += check_audit_chain(audit, head)
        n_orders = (await self._query("SELECT count(*) FROM orders"))[0][0]
        return VerifyReport(not problems, problems, len(fills), int(n_orders),
                            sum(1 for v in d_pos.values() if v[0] != 0), len(audit))
