"""Startup reconciliation: compare the broker's open orders, positions and cash with the
ledger's, report every mismatch, and either adopt the broker's truth into the ledger
(``policy="adopt"``) or leave the ledger alone and ask the daemon to halt (``policy="halt"``).

Whatever the policy, orders the ledger believes open are first *resolved* by asking the broker
(``query_order``) and applying its answer — that is the broker's truth about our own orders,
never a guess. Positions are adopted with an adjusting pair of zero-fee fills (close the
ledger's position at its own average price, reopen the broker's at the broker's average), so
realized P&L is unchanged and ``ledger.verify`` still recomputes positions from fills; cash is
adopted with ``set_cash`` (a recorded movement). Every run is logged, written to the audit log
and, if mismatches were found, alerted through ``on_alert``. See docs/collector.md.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal

import msgspec
import structlog

from brokers.base import Broker
from jts.clock import Clock, LiveClock
from jts.errors import BrokerError, ConfigError, InvariantError
from jts.orders import can_transition
from jts.storage.ledger import Ledger, OrderRecord
from jts.types import Fill, OrderEvent, OrderRequest, OrderStatus, Position, Side

log = structlog.get_logger(__name__)
Policy = Literal["halt", "adopt"]
POLICIES = ("halt", "adopt")
ZERO = Decimal(0)
ADJUST = "reconcile"            # strategy / order-id prefix of adjusting fills
_NEVER_LIVE = frozenset({OrderStatus.NEW, OrderStatus.SUBMITTED, OrderStatus.UNKNOWN})


class Mismatch(msgspec.Struct, frozen=True):
    """One difference between ledger and broker. ``resolved``: the ledger now agrees."""

    kind: str        # order_state | order_closed | order_unknown_to_broker | order_unresolved
    key: str         # | order_conflict | order_foreign | position | cash | broker_unreadable
    ledger: str
    broker: str
    action: str
    resolved: bool


class ReconcileReport(msgspec.Struct):
    broker: str
    account: str
    policy: str
    ts_ns: int
    mismatches: list[Mismatch] = msgspec.field(default_factory=list)
    orders_checked: int = 0
    positions_checked: int = 0

    @property
    def ok(self) -> bool:
        """Ledger and broker agreed from the start."""
        return not self.mismatches

    @property
    def halt(self) -> bool:
        """Trading must not start: some mismatch is still unresolved."""
        return any(not m.resolved for m in self.mismatches)

    @property
    def unresolved(self) -> list[Mismatch]:
        return [m for m in self.mismatches if not m.resolved]

    def summary(self) -> str:
        if self.ok:
            return f"reconcile {self.broker}/{self.account}: ledger matches broker"
        kinds: dict[str, int] = {}
        for m in self.mismatches:
            kinds[m.kind] = kinds.get(m.kind, 0) + 1
        what = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        verdict = (f"HALT: {len(self.unresolved)} unresolved" if self.halt
                   else "all resolved")
        return (f"reconcile {self.broker}/{self.account} ({self.policy}): "
                f"{len(self.mismatches)} mismatches ({what}); {verdict}")

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = msgspec.to_builtins(self)
        d.update(ok=self.ok, halt=self.halt, summary=self.summary())
        return d


def _within(a: Decimal, b: Decimal, rel: Decimal) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b))


async def reconcile(ledger: Ledger, broker: Broker, *, policy: Policy,
                    clock: Clock | None = None, cash_tolerance: Decimal = ZERO,
                    avg_price_tolerance: Decimal = Decimal("0.0001"),
                    on_alert: Callable[..., object] | None = None) -> ReconcileReport:
    """Reconcile ``broker``'s account with ``ledger`` (see the module docstring).

    ``avg_price_tolerance`` is relative (1e-4 = 1 bp); ``cash_tolerance`` absolute. Broker
    reads that fail give a report with a ``broker_unreadable`` mismatch (halt), not an error.
    An order the broker has and the ledger lacks can be adopted only when the broker can
    describe it (an optional ``order_request(client_order_id) -> OrderRequest | None``).
    """
    if policy not in POLICIES:
        raise ConfigError(f"reconcile policy must be one of {', '.join(POLICIES)}, "
                          f"got {policy!r}", key="daemon.reconcile")
    clock = clock or LiveClock()
    now = clock.now_ns()
    rep = ReconcileReport(broker.name, broker.account, policy, now)
    try:
        b_orders = {e.client_order_id: e for e in await broker.open_orders()}
        b_positions = {p.symbol: p for p in await broker.positions()}
        b_cash = (await broker.balance()).cash
    except BrokerError as exc:
        rep.mismatches.append(Mismatch("broker_unreadable", broker.name, "", str(exc),
                                       "cannot reconcile", False))
        await _finish(ledger, rep, on_alert)
        return rep
    mine = [o for o in await ledger.open_orders()
            if (o.request.broker, o.request.account) == (broker.name, broker.account)]
    for rec in mine:
        await _resolve_order(ledger, broker, rec, b_orders.get(rec.request.client_order_id),
                             rep, now)
    ledger_ids = {o.request.client_order_id for o in mine}
    for coid, ev in b_orders.items():
        if coid not in ledger_ids:
            await _foreign_order(ledger, broker, ev, rep)
    rep.orders_checked = len(ledger_ids | set(b_orders))
    l_cash = await ledger.cash(broker.name, broker.account)
    wrote = await _positions(ledger, broker, b_positions, rep, now, avg_price_tolerance)
    if abs(l_cash - b_cash) > cash_tolerance:
        adopt = policy == "adopt"
        rep.mismatches.append(Mismatch("cash", "cash", str(l_cash), str(b_cash),
                                       "set ledger cash to broker's" if adopt else "none",
                                       adopt))
    if policy == "adopt" and (wrote or abs(l_cash - b_cash) > cash_tolerance):
        await ledger.set_cash(broker.name, broker.account, b_cash,
                              reason="reconcile: adopt broker balance", ts_ns=now)
    await _finish(ledger, rep, on_alert)
    return rep


async def _apply(ledger: Ledger, rep: ReconcileReport, rec: OrderRecord, ev: OrderEvent,
                 kind: str, action: str) -> None:
    coid = rec.request.client_order_id
    seen = f"{rec.status.value} filled {rec.filled_quantity}"
    told = f"{ev.status.value} filled {ev.filled_quantity}"
    if not can_transition(rec.status, ev.status):
        rep.mismatches.append(Mismatch("order_conflict", coid, seen, told,
                                       "none: illegal transition", False))
        return
    try:
        await ledger.apply_event(ev)
    except InvariantError as exc:
        rep.mismatches.append(Mismatch("order_conflict", coid, seen, told, str(exc), False))
        return
    if ev.filled_quantity > rec.filled_quantity:
        action += "; fills missing from the ledger (see positions)"
    rep.mismatches.append(Mismatch(kind, coid, seen, told, action, True))


async def _resolve_order(ledger: Ledger, broker: Broker, rec: OrderRecord,
                         live: OrderEvent | None, rep: ReconcileReport, now: int) -> None:
    coid = rec.request.client_order_id
    if live is not None:
        if live.status != rec.status or live.filled_quantity != rec.filled_quantity:
            await _apply(ledger, rep, rec, live, "order_state", "applied broker status")
        return
    try:
        ev = await broker.query_order(coid)
    except BrokerError as exc:
        rep.mismatches.append(Mismatch("order_unresolved", coid, rec.status.value,
                                       f"query failed: {exc}", "none", False))
        return
    if ev is None:
        status = OrderStatus.REJECTED if rec.status in _NEVER_LIVE else OrderStatus.EXPIRED
        ev = OrderEvent(coid, status, now, rec.broker_order_id, rec.filled_quantity,
                        "not known to the broker at startup reconciliation")
        await _apply(ledger, rep, rec, ev, "order_unknown_to_broker",
                     f"marked {status.value}")
        return
    await _apply(ledger, rep, rec, ev, "order_closed" if ev.status.is_terminal
                 else "order_state", "applied broker status")


async def _foreign_order(ledger: Ledger, broker: Broker, ev: OrderEvent,
                         rep: ReconcileReport) -> None:
    coid = ev.client_order_id
    told = f"{ev.status.value} filled {ev.filled_quantity}"
    known = await ledger.order(coid)
    if known is not None:            # the ledger closed it, the broker still has it open
        rep.mismatches.append(Mismatch("order_conflict", coid, known.status.value, told,
                                       "none: ledger has it closed", False))
        return
    if rep.policy != "adopt":
        rep.mismatches.append(Mismatch("order_foreign", coid, "absent", told, "none", False))
        return
    describe = getattr(broker, "order_request", None)
    req: OrderRequest | None = await describe(coid) if describe is not None else None
    if req is None:
        rep.mismatches.append(Mismatch("order_foreign", coid, "absent", told,
                                       "cannot adopt: broker gives no order details", False))
        return
    await ledger.record_order(req, ts_ns=ev.ts_ns or rep.ts_ns)
    await ledger.apply_event(ev)
    rep.mismatches.append(Mismatch("order_foreign", coid, "absent", told,
                                   f"adopted ({req.side.value} {req.quantity} {req.symbol})",
                                   True))


async def _positions(ledger: Ledger, broker: Broker, b_pos: dict[str, Position],
                     rep: ReconcileReport, now: int, tol: Decimal) -> bool:
    """Compare positions; under adopt write the adjusting fills. True when any were written."""
    l_pos = {p.symbol: p for p in await ledger.positions()
             if (p.broker, p.account) == (broker.name, broker.account)}
    symbols = sorted(set(l_pos) | set(b_pos))
    rep.positions_checked = len(symbols)
    fills: list[tuple[Fill, OrderEvent | None]] = []
    for sym in symbols:
        lp, bp = l_pos.get(sym), b_pos.get(sym)
        lq, la = (lp.quantity, lp.avg_price) if lp else (ZERO, ZERO)
        bq, ba = (bp.quantity, bp.avg_price) if bp else (ZERO, ZERO)
        if lq == bq and (lq == 0 or _within(la, ba, tol)):
            continue
        adopt = rep.policy == "adopt"
        rep.mismatches.append(Mismatch("position", sym, f"{lq} @ {la}", f"{bq} @ {ba}",
                                       "adjusting fills" if adopt else "none", adopt))
        if adopt:
            fills += _adjusting_fills(broker, sym, lq, la, bq, ba, now)
    if fills:
        await ledger.apply_fills(fills)
    return bool(fills)


def _adjusting_fills(broker: Broker, sym: str, lq: Decimal, la: Decimal, bq: Decimal,
                     ba: Decimal, now: int) -> list[tuple[Fill, OrderEvent | None]]:
    coid = f"{ADJUST}-{now}"
    out: list[tuple[Fill, OrderEvent | None]] = []
    if lq != 0:            # close the ledger's position at its own average: no realized P&L
        side = Side.SELL if lq > 0 else Side.BUY
        out.append((Fill(broker.name, broker.account, f"{coid}-{sym}-close", coid, sym, side,
                         abs(lq), la, ZERO, ZERO, now, ADJUST), None))
    if bq != 0:            # and reopen the broker's at the broker's average
        side = Side.BUY if bq > 0 else Side.SELL
        out.append((Fill(broker.name, broker.account, f"{coid}-{sym}-open", coid, sym, side,
                         abs(bq), ba, ZERO, ZERO, now, ADJUST), None))
    return out


async def _finish(ledger: Ledger, rep: ReconcileReport,
                  on_alert: Callable[..., object] | None) -> None:
    for m in rep.mismatches:
        (log.warning if m.resolved else log.error)(
            "reconcile_mismatch", broker=rep.broker, account=rep.account, kind=m.kind,
            key=m.key, ledger=m.ledger, broker_view=m.broker, action=m.action,
            resolved=m.resolved)
    (log.critical if rep.halt else log.info)(
        "reconcile_done", broker=rep.broker, account=rep.account, policy=rep.policy,
        mismatches=len(rep.mismatches), unresolved=len(rep.unresolved), halt=rep.halt,
        orders=rep.orders_checked, positions=rep.positions_checked)
    await ledger.audit("reconcile", {
        "broker": rep.broker, "account": rep.account, "policy": rep.policy,
        "halt": rep.halt, "mismatches": [msgspec.to_builtins(m) for m in rep.mismatches]},
        ts_ns=rep.ts_ns)
    if rep.mismatches and on_alert is not None:
        try:
            on_alert("reconcile", rep.summary(), severity="critical" if rep.halt else "warning",
                     key=f"reconcile:{rep.broker}:{rep.account}:{rep.ts_ns}",
                     broker=rep.broker, account=rep.account, halt=rep.halt,
                     mismatches=len(rep.mismatches), unresolved=len(rep.unresolved))
        except Exception as exc:
            log.error("reconcile_alert_failed", error=f"{type(exc).__name__}: {exc}")
