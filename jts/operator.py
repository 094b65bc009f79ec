"""Operator actions on the running daemon: the emergency stop-all (``jts kill``), resume,
cancel and cancel-and-replace. Mixed into :class:`jts.app.App`; reached through the control
socket and the dashboard."""

from __future__ import annotations

from typing import Any

import structlog

from jts.clock import Clock
from jts.desk import Desk
from jts.errors import DaemonError
from jts.portfolio import Portfolio
from jts.risk import RiskGate, TradingState
from jts.types import OrderIntent, Side

log = structlog.get_logger(__name__)


class OperatorActions:
    risk: RiskGate
    desk: Desk
    portfolio: Portfolio
    clock: Clock
    broker: Any
    notifier: Any

    async def kill(self, flatten: bool = False, reason: str = "operator") -> dict[str, Any]:
        """Emergency stop-all: HALT new entries, cancel every open order and, with
        ``flatten``, send closing orders for every position (closing orders stay allowed)."""
        self.risk.set_state(TradingState.HALTED, reason)
        log.warning("kill_switch", flatten=flatten, reason=reason)
        self.notifier.notify("risk_limit", f"emergency stop-all ({reason})"
                             + (" with flatten" if flatten else ""), severity="critical")
        cancelled = await self.desk.cancel_all()
        closing = 0
        if flatten:
            for symbol, h in sorted(self.portfolio.open_positions().items()):
                side = Side.SELL if h.quantity > 0 else Side.BUY
                intent = OrderIntent("operator", symbol, side, abs(h.quantity),
                                     self.clock.now_ns(), closing=True, reason="flatten")
                if (await self.desk.handle(intent)).approved:
                    closing += 1
        return {"trading_state": self.risk.state.value, "cancelled": cancelled,
                "closing_orders": closing}

    async def resume(self) -> dict[str, Any]:
        self.risk.set_state(TradingState.ACTIVE, "")
        log.warning("trading_resumed")
        return {"trading_state": self.risk.state.value}

    async def cancel(self, client_order_id: str) -> dict[str, Any]:
        rec = self.desk.orders.get(client_order_id)
        if rec is None or not rec.status.is_open:
            raise DaemonError(f"no open order {client_order_id!r}")
        await self.desk.on_report(await self.broker.cancel(client_order_id))
        return {"client_order_id": client_order_id, "status": rec.status.value}

    async def replace(self, client_order_id: str, quantity: str | None = None,
                      limit_price: str | None = None) -> dict[str, Any]:
        from jts.money import to_decimal

        decision, new = await self.desk.replace(
            client_order_id, quantity=None if quantity is None else to_decimal(quantity),
            limit_price=None if limit_price is None else to_decimal(limit_price))
        return {"replaced": client_order_id, "client_order_id": new,
                "approved": decision.approved, "reason": decision.reason}
