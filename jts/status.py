"""The daemon's status snapshot: what ``jts status --json`` prints and the dashboard reads."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from jts.clock import iso_utc
from jts.money import to_decimal

if TYPE_CHECKING:
    from jts.app import App


def snapshot(app: App) -> dict[str, Any]:
    """Everything `jts status` and the dashboard show, as one JSON-ready dict."""
    pf = app.portfolio
    feeds = app.collector.status()
    realized, unrealized = pf.realized_today, pf.unrealized()
    positions = [{"symbol": s, "quantity": str(h.quantity), "avg_price": str(h.avg_price),
                  "last": pf.marks.get(s),
                  "unrealized": str(round((to_decimal(pf.marks[s]) - h.avg_price) * h.quantity, 0))
                  if s in pf.marks else None}
                 for s, h in sorted(pf.open_positions().items())]
    orders = app.desk.open_orders()
    st = app.desk.stats
    return {
        "running": True, "pid": os.getpid(),
        "started_at": iso_utc(int(app.started_wall * 1e9)),
        "uptime_s": round(time.time() - app.started_wall, 3),
        "mode": app.cfg.daemon.mode, "trading_state": app.risk.state.value,
        "stopping": app.stopping.is_set(),
        "market_time": iso_utc(app.clock.now_ns()),
        "ticks": sum(int(f["accepted"]) for f in feeds), "bars": app.bars_built,
        "feeds": feeds, "collector": app.collector.totals(),
        "reconcile": app.last_reconcile,
        "tick_writer": None if app.tick_writer is None else {
            "written": app.tick_writer.written, "queued": app.tick_writer.queued,
            "dropped": app.tick_writer.dropped, "failed": app.tick_writer.failed},
        "brokers": [{"name": app.broker.name, "account": app.broker.account,
                     "connected": True,
                     **(app.broker.status() if hasattr(app.broker, "status") else {})}],
        "strategies": app.engine.status(),
        "orders": {"open": len(orders), "submitted": st.submitted, "intents": st.intents,
                   "risk_rejected": st.risk_rejected, "broker_rejected": st.broker_rejected,
                   "unknown": st.unknown, "last_rejection": st.last_rejection,
                   "open_orders": [{"client_order_id": o.request.client_order_id,
                                    "symbol": o.request.symbol,
                                    "side": o.request.side.value,
                                    "quantity": str(o.request.quantity),
                                    "status": o.status.value} for o in orders]},
        "fills": st.fills, "closed_trades": len(pf.trades),
        "positions": positions,
        "pnl": {"realized": str(round(realized, 0)), "unrealized": str(round(unrealized, 0)),
                "total": str(round(realized + unrealized, 0)),
                "fees": str(round(pf.fees_today, 0)), "cash": str(round(pf.cash, 0)),
                "equity": str(round(pf.equity(), 0)), "day": pf.day},
        "channels": app.bus.channel_stats(),
        "risk_rejections": dict(app.risk.rejections),
        "alerts": app.notifier.status(),
        "surge": {**app.surge.status(),
                  "top": [{"symbol": c.symbol, "score": round(c.score, 3),
                           "reasons": list(c.reasons)} for c in app.surge.top(10)]},
        "dashboard": getattr(app, "dashboard_url", None),
    }
