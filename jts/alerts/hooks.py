"""Ready-made ``notify`` calls for the daemon's events, so call sites stay one line and the
wording, keys and fields of each alert kind live in one place."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

from jts.types import Fill, OrderIntent


class _Decision(Protocol):
    approved: bool
    reason: str
    check: str


class EventHooks:
    cfg: Any
    _daily_loss_days: set[str]

    def notify(self, kind: str, message: str, *, severity: str | None = None,
               key: str | None = None, **fields: Any) -> None:
        raise NotImplementedError

    def on_fill(self, fill: Fill) -> None:
        side = "매수" if fill.side.value == "buy" else "매도"
        self.notify("fill", f"{fill.symbol} {side} {fill.quantity} @ {fill.price}",
                    key=f"fill:{fill.broker}:{fill.account}:{fill.trade_id}",
                    symbol=fill.symbol, side=fill.side.value, quantity=fill.quantity,
                    price=fill.price, strategy=fill.strategy,
                    client_order_id=fill.client_order_id, broker=fill.broker)

    def on_order_rejected(self, client_order_id: str, reason: str, *, symbol: str = "",
                          broker: str = "") -> None:
        what = f"{symbol} " if symbol else ""
        self.notify("order_rejected", f"{what}order {client_order_id} rejected: {reason}",
                    key=f"order_rejected:{client_order_id}", client_order_id=client_order_id,
                    reason=reason, symbol=symbol, broker=broker)

    def on_risk_rejection(self, intent: OrderIntent, decision: _Decision) -> None:
        """A risk-gate refusal; de-duplicated per (check, strategy, symbol)."""
        self.notify("risk_limit",
                    f"{intent.strategy} {intent.symbol} {intent.side.value} blocked by "
                    f"{decision.check}: {decision.reason}",
                    key=f"risk_limit:{decision.check}:{intent.strategy}:{intent.symbol}",
                    check=decision.check, reason=decision.reason, strategy=intent.strategy,
                    symbol=intent.symbol, side=intent.side.value, quantity=intent.quantity)

    def daily_loss_threshold(self, limit: Decimal | float) -> Decimal:
        """The loss that raises the daily-loss alert (0: never)."""
        return Decimal(str(self.cfg.daily_loss_threshold)) or (
            Decimal(str(self.cfg.daily_loss_fraction)) * Decimal(str(limit)))

    def daily_loss_alerted(self, day: str) -> bool:
        return day in self._daily_loss_days

    def check_daily_loss(self, pnl_today: Decimal | float, *, day: str,
                         limit: Decimal | float) -> bool:
        """Alert once per ``day`` when today's P&L is a loss of at least the threshold:
        ``[alerts] daily_loss_threshold`` when set, else ``daily_loss_fraction × limit``
        (the risk gate's ``max_daily_loss``). True when it fired now."""
        threshold = self.daily_loss_threshold(limit)
        loss = -Decimal(str(pnl_today))
        if threshold <= 0 or loss < threshold or day in self._daily_loss_days:
            return False
        self._daily_loss_days.add(day)
        self.notify("daily_loss", f"daily loss {loss:,.0f} reached the alert threshold "
                    f"{threshold:,.0f} ({day})", key=f"daily_loss:{day}", day=day,
                    loss=loss, threshold=threshold, limit=limit)
        return True

    def on_feed_stale(self, feed: str, *, stale: bool, age_s: float | None = None) -> None:
        if stale:
            self.notify("feed_stale", f"feed {feed} has sent no ticks for "
                        f"{age_s:.0f} s" if age_s is not None else f"feed {feed} is stale",
                        key=f"feed_stale:{feed}", feed=feed, age_s=age_s)
        else:
            self.notify("feed_stale", f"feed {feed} recovered", severity="info",
                        key=f"feed_recovered:{feed}", feed=feed)

    def on_broker_connection(self, broker: str, *, connected: bool, error: str = "") -> None:
        if connected:
            self.notify("broker_disconnected", f"broker {broker} reconnected", severity="info",
                        key=f"broker_connected:{broker}", broker=broker)
        else:
            self.notify("broker_disconnected", f"broker {broker} disconnected"
                        + (f": {error}" if error else ""),
                        key=f"broker_disconnected:{broker}", broker=broker, error=error)

    def on_surge(self, symbol: str, score: float, **fields: Any) -> None:
        self.notify("surge_candidate", f"surge candidate {symbol} (score {score:.2f})",
                    key=f"surge_candidate:{symbol}", symbol=symbol, score=round(score, 4),
                    **fields)

    def on_daemon_started(self, *, mode: str, pid: int, restarted: bool = False,
                          **fields: Any) -> None:
        verb = "restarted" if restarted else "started"
        self.notify("daemon_started", f"JTS daemon {verb} ({mode} mode, pid {pid})",
                    severity="warning" if restarted else None, mode=mode, pid=pid,
                    restarted=restarted, **fields)
