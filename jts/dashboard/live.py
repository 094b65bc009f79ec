"""The dashboard's live state: what the browser sees, gathered from the bus and the App.

:class:`Hub` owns its own drop-oldest subscriptions to ``ticks``, ``bars``, ``fills`` and
``order_events`` (a slow dashboard never stalls trading), keeps short histories (price bars,
P&L samples, fills, alerts and log lines, entry/exit markers) and, every ``push_interval``,
encodes one update message that the :class:`~jts.dashboard.ws.Broadcaster` fans out to every
WebSocket client. ``snapshot()`` is the full state a client gets first (and ``/api/snapshot``).

Alerts: when the App has a ``notifier`` (``jts.alerts``), the hub subscribes to its
dashboard feed (``notifier.dashboard.subscribe()``, history from ``recent()``) and shows
those alerts; the hub adds its own log lines (trading-state changes, cancels, UNKNOWN
orders). Without a notifier it derives fill/rejection/risk alerts itself.
``push_alert(kind=…, message=…, level=…)`` adds a line directly (never blocks or raises).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from jts.bus import DROP
from jts.dashboard.metrics import Samples
from jts.types import Fill, OrderEvent, OrderStatus

if TYPE_CHECKING:
    from jts.app import App
    from jts.dashboard.ws import Broadcaster

log = structlog.get_logger(__name__)
_enc = msgspec.json.Encoder()

HISTORY_BARS = 390


@dataclass
class SymbolState:
    last: float = 0.0
    ref: float = 0.0                     # first price seen today: change is measured from it
    bars: deque[tuple[int, float, float, float, float, float]] = field(
        default_factory=lambda: deque(maxlen=HISTORY_BARS))   # (ts_ms, o, h, l, c, v)
    markers: deque[tuple[int, float, str, str]] = field(
        default_factory=lambda: deque(maxlen=200))            # (ts_ms, price, side, qty)

    @property
    def change_pct(self) -> float:
        return (self.last / self.ref - 1) * 100 if self.ref else 0.0

    def volume_ratio(self) -> float:
        """The last bar's volume over the mean of the 20 before it (display only)."""
        if len(self.bars) < 2:
            return 0.0
        vols = [b[5] for b in list(self.bars)[-21:-1]]
        mean = sum(vols) / len(vols) if vols else 0.0
        return self.bars[-1][5] / mean if mean > 0 else 0.0


def fill_dict(f: Fill) -> dict[str, Any]:
    return {"ts": f.ts_ns // 1_000_000, "trade_id": f.trade_id, "coid": f.client_order_id,
            "symbol": f.symbol, "side": f.side.value, "qty": str(f.quantity),
            "price": str(f.price), "fees": str(f.commission + f.tax),
            "strategy": f.strategy}


def next_due(due: float, now: float, interval: float) -> float:
    """The next push deadline: one interval after the last one, or ``now`` when more than
    one interval has been missed (a stall is not made up with a burst of updates)."""
    due += interval
    return now if due < now - interval else due


class Hub:
    def __init__(self, app: App, *, push_interval: float = 0.25,
                 wall_ns: Callable[[], int] = time.time_ns) -> None:
        self.app = app
        self.push_interval = push_interval
        self._wall_ns = wall_ns
        self.symbols: dict[str, SymbolState] = {}
        self.fills: deque[dict[str, Any]] = deque(maxlen=500)
        self.alerts: deque[dict[str, Any]] = deque(maxlen=300)
        self.pnl: deque[tuple[int, float, float]] = deque(maxlen=4000)   # (ts_ms, total, realized)
        self.seq = 0
        self.broadcaster: Broadcaster | None = None
        self.build_ms = Samples()          # draining inputs + building one update
        self._changed: set[str] = set()
        self._new_fills: list[dict[str, Any]] = []
        self._new_alerts: list[dict[str, Any]] = []
        self._last_state = app.risk.state.value
        self._last_rejections = app.desk.stats.risk_rejected
        bus = app.bus
        self._ticks = bus.ticks.subscribe("dashboard", 256, DROP)
        self._bars = bus.bars.subscribe("dashboard", 256, DROP)
        self._fills = bus.fills.subscribe("dashboard", 10_000, DROP)
        self._events = bus.order_events.subscribe("dashboard", 10_000, DROP)
        feed = getattr(getattr(app, "notifier", None), "dashboard", None)
        self._alert_feed: Any = feed
        self._alerts_in: Any = None
        if feed is not None:
            self._alerts_in = feed.subscribe()
            for a in feed.recent(self.alerts.maxlen or 300):
                self.alerts.append(self._from_alert(a))

    def _from_alert(self, a: Any) -> dict[str, Any]:
        fields = {str(k): (v if isinstance(v, (str, int, float, bool)) or v is None else str(v))
                  for k, v in dict(a.fields).items()}
        return {**fields, "ts": a.ts_ns // 1_000_000, "kind": a.kind, "level": a.severity,
                "message": str(a.message)[:500], "source": "alerts"}

    def close(self) -> None:
        if self._alert_feed is not None and self._alerts_in is not None:
            self._alert_feed.unsubscribe(self._alerts_in)
            self._alerts_in = None

    # --- inputs ------------------------------------------------------------------------
    def _sym(self, symbol: str) -> SymbolState:
        s = self.symbols.get(symbol)
        if s is None:
            s = self.symbols[symbol] = SymbolState()
        return s

    def on_prices(self, prices: dict[str, float]) -> None:
        for sym, px in prices.items():
            s = self._sym(sym)
            if not s.ref:
                s.ref = px
            if px != s.last:
                s.last = px
                self._changed.add(sym)

    def on_bar(self, symbol: str, ts_ns: int, o: float, h: float, lo: float, c: float,
               v: float) -> None:
        self._sym(symbol).bars.append((ts_ns // 1_000_000, o, h, lo, c, v))

    def on_fill(self, f: Fill) -> None:
        d = fill_dict(f)
        self.fills.append(d)
        self._new_fills.append(d)
        self._sym(f.symbol).markers.append((d["ts"], float(f.price), f.side.value,
                                            str(f.quantity)))
        if self._alert_feed is None:
            self.push_alert(kind="fill", level="info",
                            message=f"{f.symbol} {f.side.value} {f.quantity} @ {f.price}",
                            ts_ns=f.ts_ns, strategy=f.strategy)

    def on_order_event(self, ev: OrderEvent) -> None:
        if ev.status is OrderStatus.REJECTED and self._alert_feed is None:
            self.push_alert(kind="order_rejected", level="warning",
                            message=f"{ev.client_order_id}: {ev.reason}", ts_ns=ev.ts_ns)
        elif ev.status is OrderStatus.CANCELLED:
            self.push_alert(kind="order_cancelled", level="info",
                            message=ev.client_order_id, ts_ns=ev.ts_ns)
        elif ev.status is OrderStatus.UNKNOWN:
            self.push_alert(kind="order_unknown", level="error",
                            message=f"{ev.client_order_id}: {ev.reason}", ts_ns=ev.ts_ns)

    def push_alert(self, *, kind: str, message: str, level: str = "info",
                   ts_ns: int | None = None, **fields: Any) -> None:
        """The dashboard alert sink: shown in the alerts/log feed of every open browser."""
        extra = {str(k): (v if isinstance(v, (str, int, float, bool)) or v is None else str(v))
                 for k, v in fields.items()}
        a = {"ts": (ts_ns if ts_ns is not None else self._wall_ns()) // 1_000_000,
             "kind": str(kind), "level": str(level), "message": str(message)[:500], **extra}
        self.alerts.append(a)
        self._new_alerts.append(a)

    def _watch_state(self) -> None:
        st = self.app.risk.state.value
        if st != self._last_state:
            if self._last_state:
                self.push_alert(kind="trading_state", level="warning" if st != "active"
                                else "info", message=f"{self._last_state} → {st}",
                                reason=self.app.risk.state_reason)
            self._last_state = st
        rej = self.app.desk.stats.rejections
        n = self.app.desk.stats.risk_rejected
        if n > self._last_rejections and rej and self._alert_feed is None:
            for r in rej[-min(len(rej), n - self._last_rejections):]:
                if r.get("check") in ("daily_loss", "total_exposure", "position_notional",
                                      "open_positions", "orders_per_minute"):
                    self.push_alert(kind="risk_limit", level="warning",
                                    message=f"{r['symbol']} {r['check']}: {r['reason']}")
        self._last_rejections = n

    # --- views ---------------------------------------------------------------------------
    def overview(self, st: dict[str, Any], full: bool = True) -> dict[str, Any]:
        keys = ["mode", "trading_state", "stopping", "market_time", "uptime_s", "ticks",
                "bars", "feeds", "brokers", "pnl", "fills", "closed_trades",
                "risk_rejections", "dashboard"]
        if full:
            keys.append("channels")
        return {k: st.get(k) for k in keys} | {
            "trading_reason": self.app.risk.state_reason,
            "orders": {k: v for k, v in st.get("orders", {}).items() if k != "open_orders"},
            "rate_limits": self._rate_limits()}

    def _rate_limits(self) -> list[dict[str, Any]]:
        """Rate-limit utilization per broker where the broker reports it."""
        util = getattr(self.app.broker, "rate_limit_utilization", None)
        if callable(util):
            try:
                return [dict(x) for x in util()]
            except Exception:  # a broker's reporting bug must not break the page
                return []
        per_min = self.app.cfg.risk.max_orders_per_minute
        recent = len(getattr(self.app.risk, "_recent", ()))
        return [{"name": "orders/min (risk)", "used": recent, "limit": per_min}]

    def open_orders(self) -> list[dict[str, Any]]:
        return [{"coid": o.request.client_order_id, "symbol": o.request.symbol,
                 "side": o.request.side.value, "qty": str(o.request.quantity),
                 "filled": str(o.filled), "type": o.request.order_type.value,
                 "limit": None if o.request.limit_price is None else str(o.request.limit_price),
                 "status": o.status.value, "strategy": o.request.strategy}
                for o in self.app.desk.open_orders()]

    def performance(self) -> list[dict[str, Any]]:
        by: dict[str, dict[str, Any]] = {}
        for r in self.app.engine.status():
            by[str(r["name"])] = {**r, "trades": 0, "wins": 0, "pnl": 0.0}
        for t in self.app.portfolio.trades:
            p = by.setdefault(t.strategy, {"name": t.strategy, "trades": 0, "wins": 0,
                                           "pnl": 0.0})
            p["trades"] += 1
            p["wins"] += 1 if t.pnl > 0 else 0
            p["pnl"] += float(t.pnl)
        for p in by.values():
            p["win_rate"] = round(p["wins"] / p["trades"] * 100, 1) if p["trades"] else None
            p["pnl"] = round(p["pnl"])
        return list(by.values())

    def watchlist(self, only: set[str] | None = None) -> dict[str, list[float]]:
        return {s: [st.last, round(st.change_pct, 2)] for s, st in self.symbols.items()
                if only is None or s in only}

    def surge_candidates(self) -> list[dict[str, Any]]:
        """The daemon's surge detector's current top candidates (jts/surge.py)."""
        detector = getattr(self.app, "surge", None)
        if detector is None:
            return []
        out = []
        for c in detector.top(20):
            st = self.symbols.get(c.symbol)
            out.append({"symbol": c.symbol, "score": round(c.score, 2),
                        "volume_ratio": round(st.volume_ratio(), 2) if st else None,
                        "volume_z": round(c.volume_z, 2),
                        "move_pct": round((c.velocity or 0.0) * 100, 2),
                        "last": st.last if st else None, "reasons": list(c.reasons)})
        return out

    def chart(self, symbol: str) -> dict[str, Any] | None:
        s = self.symbols.get(symbol)
        if s is None:
            return None
        return {"symbol": symbol, "bars": [list(b) for b in s.bars],
                "markers": [list(m) for m in s.markers], "last": s.last}

    def pnl_series(self, points: int = 500) -> list[list[float]]:
        """The P&L samples, thinned to at most ``points`` (the newest always kept)."""
        pts = list(self.pnl)
        step = max(1, -(-len(pts) // points))
        out = pts[::-1][::step][::-1]
        return [list(p) for p in out]

    def snapshot(self) -> dict[str, Any]:
        st = self.app.status()
        return {"t": "snapshot", "seq": self.seq, "ts": self._wall_ns(),
                "ov": self.overview(st), "px": self.watchlist(),
                "orders": self.open_orders(), "pos": st["positions"],
                "fills": list(self.fills), "alerts": list(self.alerts),
                "pnl": self.pnl_series(), "perf": self.performance(),
                "surge": self.surge_candidates()}

    def encoded_snapshot(self) -> bytes:
        return _enc.encode(self.snapshot())

    def build_update(self) -> bytes:
        """The next update message (also advances ``seq`` and samples the P&L)."""
        self._watch_state()
        st = self.app.status()
        self.seq += 1
        pnl = st["pnl"]
        point = (self._wall_ns() // 1_000_000, float(pnl["total"]), float(pnl["realized"]))
        self.pnl.append(point)
        full = self.seq % 4 == 0
        msg = {"t": "u", "seq": self.seq, "ts": self._wall_ns(), "ov": self.overview(st, full),
               "px": self.watchlist(self._changed), "orders": self.open_orders(),
               "pos": st["positions"], "fills": self._new_fills, "alerts": self._new_alerts,
               "pnl": list(point), "perf": self.performance() if full else None,
               "surge": self.surge_candidates() if full else None}
        self._changed = set()
        self._new_fills = []
        self._new_alerts = []
        return _enc.encode(msg)

    # --- tasks ---------------------------------------------------------------------------
    def drain_inputs(self) -> None:
        """Apply everything waiting in the hub's subscriptions (no waiting)."""
        prices: dict[str, float] = {}
        for batch in self._ticks.drain():
            last = getattr(batch, "last_prices", None)     # a columnar TickBatch
            if last is not None:
                prices.update(last())
            else:
                for t in batch:
                    prices[t.symbol] = t.price
        self.on_prices(prices)
        for bars in self._bars.drain():
            for b in bars:
                self.on_bar(b.symbol, b.ts_ns, b.open, b.high, b.low, b.close, b.volume)
        for f in self._fills.drain():
            self.on_fill(f)
        for ev in self._events.drain():
            self.on_order_event(ev)
        if self._alerts_in is not None:
            for a in self._alerts_in.drain():
                d = self._from_alert(a)
                self.alerts.append(d)
                self._new_alerts.append(d)

    async def run(self) -> None:
        """Drain inputs and push one update per interval until cancelled. Paced on
        deadlines (start + k·interval), so the time spent building and publishing does not
        stretch the period; after a stall longer than one interval it restarts from now
        rather than bursting the missed updates."""
        self.on_prices(dict(self.app.last_prices))
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            t0 = time.perf_counter()
            self.drain_inputs()
            msg = self.build_update()
            self.build_ms.add(self._wall_ns(), (time.perf_counter() - t0) * 1000)
            if self.broadcaster is not None and self.broadcaster.clients:
                self.broadcaster.publish(msg)
            now = loop.time()
            due = next_due(due, now, self.push_interval)
            await asyncio.sleep(max(0.0, due - now))
