"""Backend-independent ledger logic: position/cash arithmetic, batch planning, the audit hash
chain, verification by recomputation, and the group committer.

Backends fetch the current state a batch touches, call :func:`plan_batch` (pure), then write
the plan in one transaction. Keeping the arithmetic here means SQLite and PostgreSQL cannot
disagree about a position.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

import structlog

from jts.clock import to_kst
from jts.errors import InvariantError
from jts.orders import transition
from jts.types import Fill, OrderEvent, OrderStatus, Side

log = structlog.get_logger(__name__)

SCHEMA_VERSION = 1
ZERO = Decimal(0)
AVG_QUANTUM = Decimal("1e-10")
GENESIS = "0" * 64

FillItem = tuple[Fill, OrderEvent | None]
PosKey = tuple[str, str, str]          # broker, account, symbol
AcctKey = tuple[str, str]              # broker, account


def kst_day(ts_ns: int) -> str:
    return to_kst(ts_ns).strftime("%Y-%m-%d")


def apply_to_position(qty: Decimal, avg: Decimal, side: Side, fill_qty: Decimal,
                      price: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """Average-cost position update: returns (new quantity, new average price, realized P&L
    before fees). Works for long and short positions, including flips through zero."""
    delta = fill_qty if side is Side.BUY else -fill_qty
    new_qty = qty + delta
    if qty == 0 or (qty > 0) == (delta > 0):
        new_avg = (abs(qty) * avg + fill_qty * price) / abs(new_qty)
        return new_qty, new_avg.quantize(AVG_QUANTUM), ZERO
    closed = min(fill_qty, abs(qty))
    realized = closed * (price - avg) * (1 if qty > 0 else -1)
    if new_qty == 0:
        return new_qty, ZERO, realized
    if (new_qty > 0) != (qty > 0):               # flipped: the remainder opens at this price
        return new_qty, price, realized
    return new_qty, avg, realized


def cash_delta(fill: Fill) -> Decimal:
    """Cash moved by one fill: buys pay notional plus fees, sells receive notional less fees."""
    if fill.side is Side.BUY:
        return -(fill.quantity * fill.price) - fill.fees
    return fill.quantity * fill.price - fill.fees


@dataclass
class OrderState:
    status: OrderStatus
    quantity: Decimal
    filled: Decimal
    broker_order_id: str = ""
    reason: str = ""
    updated_ns: int = 0
    touched: bool = False


@dataclass
class PositionState:
    quantity: Decimal = ZERO
    avg_price: Decimal = ZERO
    realized: Decimal = ZERO
    updated_ns: int = 0
    touched: bool = False


@dataclass
class Plan:
    """What one batch writes: new fills (with realized P&L), order updates and their event
    history rows, positions and cash balances to upsert, and one result per input item."""

    results: list[bool] = field(default_factory=list)
    fills: list[tuple[Fill, Decimal]] = field(default_factory=list)
    events: list[OrderEvent] = field(default_factory=list)
    orders: dict[str, OrderState] = field(default_factory=dict)
    positions: dict[PosKey, PositionState] = field(default_factory=dict)
    cash: dict[AcctKey, Decimal] = field(default_factory=dict)
    cash_touched: set[AcctKey] = field(default_factory=set)


def apply_event_to(state: OrderState, event: OrderEvent) -> None:
    """Move ``state`` by ``event`` (raises InvariantError for an illegal transition)."""
    state.status = transition(state.status, event.status, client_order_id=event.client_order_id)
    if event.broker_order_id:
        state.broker_order_id = event.broker_order_id
    # the filled quantity is the sum of the order's fills alone: a status report that
    # arrives before its fills (as KIS sends them) must not count them a second time
    if event.reason:
        state.reason = event.reason
    state.updated_ns = event.ts_ns
    state.touched = True


def plan_batch(items: list[FillItem], existing: set[tuple[str, str, str]],
               orders: dict[str, OrderState], positions: dict[PosKey, PositionState],
               cash: dict[AcctKey, Decimal]) -> Plan:
    """Plan a batch of fills against the current state (mutates the given state dicts)."""
    plan = Plan(orders=orders, positions=positions, cash=cash)
    seen = set(existing)
    for fill, event in items:
        key = (fill.broker, fill.account, fill.trade_id)
        if fill.quantity <= 0 or fill.price < 0:
            raise InvariantError(f"fill {key}: quantity must be > 0 and price >= 0")
        if key in seen:
            plan.results.append(False)
            continue
        seen.add(key)
        order = orders.get(fill.client_order_id)
        if event is not None and event.client_order_id != fill.client_order_id:
            raise InvariantError(f"fill {key}: event is for order {event.client_order_id}")
        if event is not None and order is None:
            raise InvariantError(f"fill {key}: unknown order {fill.client_order_id}")
        if order is not None:
            _fill_order(order, fill, event)
        pk = (fill.broker, fill.account, fill.symbol)
        pos = positions.setdefault(pk, PositionState())
        pos.quantity, pos.avg_price, realized = apply_to_position(
            pos.quantity, pos.avg_price, fill.side, fill.quantity, fill.price)
        pos.realized += realized
        pos.updated_ns = fill.ts_ns
        pos.touched = True
        ak = (fill.broker, fill.account)
        cash[ak] = cash.get(ak, ZERO) + cash_delta(fill)
        plan.cash_touched.add(ak)
        plan.fills.append((fill, realized))
        if order is not None:
            plan.events.append(OrderEvent(fill.client_order_id, order.status, fill.ts_ns,
                                          order.broker_order_id, order.filled, order.reason))
        plan.results.append(True)
    return plan


def _fill_order(order: OrderState, fill: Fill, event: OrderEvent | None) -> None:
    order.filled += fill.quantity
    if event is not None:
        apply_event_to(order, event)
    elif order.status.is_terminal:
        log.warning("fill_after_terminal", client_order_id=fill.client_order_id,
                    status=order.status.value, trade_id=fill.trade_id)
    else:
        new = OrderStatus.FILLED if order.filled >= order.quantity else OrderStatus.PARTIALLY_FILLED
        order.status = transition(order.status, new, client_order_id=fill.client_order_id)
    if order.filled > order.quantity:
        log.warning("order_overfilled", client_order_id=fill.client_order_id,
                    filled=str(order.filled), quantity=str(order.quantity))
    order.updated_ns = fill.ts_ns
    order.touched = True


def canonical_json(fields: dict[str, object]) -> str:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str,
                      ensure_ascii=False)


def audit_hash(prev: str, seq: int, ts_ns: int, event: str, fields_json: str) -> str:
    data = f"{prev}|{seq}|{ts_ns}|{event}|{fields_json}".encode()
    return hashlib.sha256(data).hexdigest()


def check_audit_chain(rows: Iterable[tuple[int, int, str, str, str, str]],
                      head: tuple[int, str] | None) -> list[str]:
    """Problems in the chain ``rows`` = (seq, ts_ns, event, fields_json, prev_hash, hash) in seq
    order; ``head`` is the separately stored (last seq, last hash) that exposes truncation."""
    problems: list[str] = []
    prev, expect_seq = GENESIS, 1
    last: tuple[int, str] = (0, GENESIS)
    for seq, ts_ns, event, fields_json, prev_hash, digest in rows:
        if seq != expect_seq:
            problems.append(f"audit: entries {expect_seq}..{seq - 1} are missing (deleted)")
        if prev_hash != prev:
            problems.append(f"audit: entry {seq} does not link to its predecessor")
        if audit_hash(prev_hash, seq, ts_ns, event, fields_json) != digest:
            problems.append(f"audit: entry {seq} was edited (hash mismatch)")
        prev, expect_seq, last = digest, seq + 1, (seq, digest)
    head = head or (0, GENESIS)
    if last != head:
        if last[0] < head[0]:
            problems.append(f"audit: log truncated: last entry {last[0]}, head says {head[0]}")
        else:
            problems.append(f"audit: head ({head[0]}) does not match last entry ({last[0]})")
    return problems


def recompute(fills: Iterable[Fill], movements: Iterable[tuple[str, str, Decimal]]
              ) -> tuple[dict[PosKey, tuple[Decimal, Decimal]], dict[AcctKey, Decimal]]:
    """Positions (quantity, avg) and cash derived from fills (in seq order) and movements."""
    pos: dict[PosKey, tuple[Decimal, Decimal]] = {}
    cash: dict[AcctKey, Decimal] = {}
    for broker, account, amount in movements:
        cash[(broker, account)] = cash.get((broker, account), ZERO) + amount
    for f in fills:
        q, a = pos.get((f.broker, f.account, f.symbol), (ZERO, ZERO))
        q, a, _ = apply_to_position(q, a, f.side, f.quantity, f.price)
        pos[(f.broker, f.account, f.symbol)] = (q, a)
        cash[(f.broker, f.account)] = cash.get((f.broker, f.account), ZERO) + cash_delta(f)
    return pos, cash


def compare_state(derived_pos: dict[PosKey, tuple[Decimal, Decimal]],
                  stored_pos: dict[PosKey, tuple[Decimal, Decimal]],
                  derived_cash: dict[AcctKey, Decimal],
                  stored_cash: dict[AcctKey, Decimal]) -> list[str]:
    problems = []
    for key in sorted(set(derived_pos) | set(stored_pos)):
        d = derived_pos.get(key, (ZERO, ZERO))
        s = stored_pos.get(key, (ZERO, ZERO))
        if d[0] != s[0] or (d[0] != 0 and d[1] != s[1]):
            problems.append(f"position {'/'.join(key)}: stored qty={s[0]} avg={s[1]}, "
                            f"from fills qty={d[0]} avg={d[1]}")
    for ak in sorted(set(derived_cash) | set(stored_cash)):
        d_c, s_c = derived_cash.get(ak, ZERO), stored_cash.get(ak, ZERO)
        if d_c != s_c:
            problems.append(f"cash {'/'.join(ak)}: stored {s_c}, from fills and movements {d_c}")
    return problems


class GroupCommitter:
    """Coalesces concurrent ``submit`` calls into batches written by ``apply_batch``.

    A background task drains the queue: whatever arrived while the previous batch was
    committing goes into the next transaction. If a batch fails, its items are retried one
    by one so only the offending item's caller sees the error.
    """

    def __init__(self, apply_batch: Callable[[list[FillItem]], Awaitable[list[bool]]],
                 max_batch: int = 2000) -> None:
        self._apply = apply_batch
        self._max = max_batch
        self._queue: list[tuple[FillItem, asyncio.Future[bool]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: FillItem) -> bool:
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((item, fut))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return await asyncio.shield(fut)

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:self._max], self._queue[self._max:]
            try:
                results = await self._apply([i for i, _ in batch])
            except Exception:
                for item, fut in batch:
                    try:
                        ok = (await self._apply([item]))[0]
                    except Exception as exc:
                        if not fut.done():
                            fut.set_exception(exc)
                    else:
                        if not fut.done():
                            fut.set_result(ok)
                continue
            for (_, fut), ok in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(ok)

    async def close(self) -> None:
        if self._task is not None:
            await self._task
