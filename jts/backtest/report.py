"""Backtest reports: the JSON document (what ``jts backtest --json`` prints and what the
documents store keeps) and a self-contained HTML page rendered from it (inline SVG, no
scripts, no network): equity, drawdown, prices with entry/exit markers, monthly returns,
metrics, parameters, data range and cost assumptions.
"""

from __future__ import annotations

import html
import math
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from jts.backtest.engine import Result
from jts.backtest.metrics import per_symbol, portfolio_metrics
from jts.clock import KST

CURVE_POINTS = 1000
MAX_PRICE_SYMBOLS = 6


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, KST).isoformat(timespec="seconds")


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_clean(v) for v in x]
    return x


def _sample(n: int, k: int = CURVE_POINTS) -> npt.NDArray[np.int64]:
    if n <= k:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.r_[np.linspace(0, n - 1, k).astype(np.int64), n - 1])


def monthly_returns(ts_ns: npt.NDArray[np.int64], equity: npt.NDArray[np.float64],
                    cash0: float) -> dict[str, float]:
    """Return of each KST calendar month, from month-end equity to month-end equity."""
    if not ts_ns.size:
        return {}
    day = (ts_ns + 9 * 3_600 * 10**9) // (86_400 * 10**9)
    ends = np.r_[np.flatnonzero(np.diff(day) != 0), ts_ns.shape[0] - 1]
    out: dict[str, float] = {}
    prev, cur, cur_end = cash0, "", cash0
    for i in ends.tolist():
        m = datetime.fromtimestamp(int(ts_ns[i]) / 1e9, KST).strftime("%Y-%m")
        if cur and m != cur:
            out[cur] = cur_end / prev - 1.0
            prev = cur_end
        cur, cur_end = m, float(equity[i])
    out[cur] = cur_end / prev - 1.0
    return out


def build(res: Result, *, strategy: dict[str, Any], gaps: list[dict[str, object]] | None = None,
          close: npt.NDArray[np.float64] | None = None, crypto: bool = False) -> dict[str, Any]:
    """The report document for one backtest (JSON-safe)."""
    rows = res.rows
    metrics = portfolio_metrics(res.equity, res.gross, res.ts_ns, res.initial_cash, rows,
                                res.timeframe, fees=res.fees, slippage=res.slippage,
                                turnover=res.turnover, crypto=crypto)
    metrics["fills"] = res.fills
    metrics["capped_fills"] = res.capped_fills
    metrics["per_symbol"] = per_symbol(rows, res.symbols, res.held_bars, res.bars_per_symbol,
                                       res.initial_cash)
    trades = []
    for t in res.trades:
        value = t.quantity * t.entry_price
        trades.append({
            "symbol": t.symbol, "side": t.side, "quantity": t.quantity,
            "signal_time": iso(t.signal_ts_ns) if t.signal_ts_ns >= 0 else None,
            "entry_time": iso(t.entry_ts_ns), "entry_ts_ns": t.entry_ts_ns,
            "entry_price": t.entry_price,
            "exit_time": iso(t.exit_ts_ns) if t.exit_ts_ns is not None else None,
            "exit_ts_ns": t.exit_ts_ns, "exit_price": t.exit_price, "fees": t.fees,
            "slippage": t.slippage, "pnl": t.pnl,
            "return_pct": t.pnl / value * 100.0 if value else None,
            "bars_held": t.bars_held, "exit_reason": t.exit_reason})
    idx = _sample(res.ts_ns.shape[0])
    doc: dict[str, Any] = {
        "kind": "backtest", "version": 1, "strategy": strategy, "symbols": res.symbols,
        "timeframe": res.timeframe, "from": iso(int(res.ts_ns[0])),
        "to": iso(int(res.ts_ns[-1])), "bars": int(res.ts_ns.shape[0]),
        "assumptions": res.assumptions, "metrics": metrics, "trades": trades,
        "gaps": gaps or [],
        "monthly_returns": monthly_returns(res.ts_ns, res.equity, res.initial_cash),
        "equity_curve": {"ts_ns": res.ts_ns[idx].tolist(), "equity": res.equity[idx].tolist()},
    }
    if close is not None:
        prices = {}
        for s, sym in enumerate(res.symbols[:MAX_PRICE_SYMBOLS]):
            ok = np.flatnonzero(~np.isnan(close[s]))
            k = ok[_sample(ok.shape[0], 600)]
            prices[sym] = {"ts_ns": res.ts_ns[k].tolist(), "close": close[s, k].tolist()}
        doc["prices"] = prices
    cleaned: dict[str, Any] = _clean(doc)
    return cleaned


# ---- HTML ---------------------------------------------------------------------------------

W, H, PAD = 900, 220, 44


def _poly(xs: list[float], ys: list[float], x0: float, x1: float, y0: float, y1: float,
          color: str, height: int = H) -> str:
    if not xs:
        return ""
    sx = (W - 2 * PAD) / ((x1 - x0) or 1.0)
    sy = (height - 2 * PAD) / ((y1 - y0) or 1.0)
    pts = " ".join(f"{PAD + (x - x0) * sx:.1f},{height - PAD - (y - y0) * sy:.1f}"
                   for x, y in zip(xs, ys, strict=True))
    return f'<polyline fill="none" stroke="{color}" stroke-width="1.3" points="{pts}"/>'


def _axes(y0: float, y1: float, label: str, fmt: str = "{:,.0f}", height: int = H) -> str:
    return (f'<text x="4" y="{PAD - 8}" class="ax">{html.escape(label)}</text>'
            f'<text x="4" y="{PAD + 4}" class="ax">{fmt.format(y1)}</text>'
            f'<text x="4" y="{height - PAD + 4}" class="ax">{fmt.format(y0)}</text>'
            f'<rect x="{PAD}" y="{PAD}" width="{W - 2 * PAD}" height="{height - 2 * PAD}" '
            'fill="none" stroke="#ccc"/>')


def _svg(body: str, height: int = H) -> str:
    return f'<svg viewBox="0 0 {W} {height}" width="100%" role="img">{body}</svg>'


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.4f}" if abs(v) < 100 else f"{v:,.0f}"
    return html.escape(str(v))


def render_html(doc: dict[str, Any]) -> str:
    """A self-contained HTML page for a backtest report document."""
    curve = doc["equity_curve"]
    xs = [float(t) for t in curve["ts_ns"]]
    eq = [float(v) for v in curve["equity"]]
    x0, x1 = (xs[0], xs[-1]) if xs else (0.0, 1.0)
    parts: list[str] = []
    if eq:
        lo, hi = min(eq), max(eq)
        parts.append(_svg(_axes(lo, hi, "equity (KRW)")
                          + _poly(xs, eq, x0, x1, lo, hi, "#1f5fbf")))
        peak, dd = -math.inf, []
        for v in eq:
            peak = max(peak, v)
            dd.append((v / peak - 1.0) * 100.0 if peak > 0 else 0.0)
        parts.append(_svg(_axes(min(dd), 0.0, "drawdown (%)", "{:.2f}")
                          + _poly(xs, dd, x0, x1, min(dd), 0.0, "#c0392b")))
    for sym, pr in (doc.get("prices") or {}).items():
        px = [float(t) for t in pr["ts_ns"]]
        py = [float(c) for c in pr["close"]]
        if not py:
            continue
        lo, hi = min(py), max(py)
        body = _axes(lo, hi, f"{sym} close") + _poly(px, py, x0, x1, lo, hi, "#555")
        sx = (W - 2 * PAD) / ((x1 - x0) or 1.0)
        sy = (H - 2 * PAD) / ((hi - lo) or 1.0)
        for t in doc["trades"]:
            if t["symbol"] != sym:
                continue
            for key, price, color in (("entry_ts_ns", t["entry_price"], "#27ae60"),
                                      ("exit_ts_ns", t["exit_price"], "#c0392b")):
                if t.get(key) is None or price is None:
                    continue
                cx = PAD + (float(t[key]) - x0) * sx
                cy = H - PAD - (min(max(float(price), lo), hi) - lo) * sy
                body += f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2.6" fill="{color}"/>'
        parts.append(_svg(body))
    m = doc["metrics"]
    head = {k: v for k, v in m.items() if k != "per_symbol"}
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>"
                   for k, v in head.items())
    monthly = "".join(f"<tr><th>{html.escape(k)}</th><td class='{'neg' if v < 0 else 'pos'}'>"
                      f"{v * 100:.2f} %</td></tr>"
                      for k, v in doc.get("monthly_returns", {}).items())
    sym_rows = "".join(
        f"<tr><th>{html.escape(s)}</th><td>{st['trade_count']}</td><td>{_fmt(st['win_rate'])}</td>"
        f"<td>{_fmt(st['net_pnl'])}</td><td>{_fmt(st['profit_factor'])}</td>"
        f"<td>{_fmt(st['exposure'])}</td></tr>" for s, st in m.get("per_symbol", {}).items())
    strat = doc.get("strategy", {})
    params = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_fmt(v)}</td></tr>"
                     for k, v in (strat.get("params") or {}).items())
    costs = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_fmt(v)}</td></tr>"
                    for k, v in doc.get("assumptions", {}).items())
    trades = "".join(
        f"<tr><td>{html.escape(t['symbol'])}</td><td>{t['entry_time']}</td>"
        f"<td>{_fmt(t['entry_price'])}</td><td>{t['exit_time'] or 'open'}</td>"
        f"<td>{_fmt(t['exit_price'])}</td><td>{_fmt(t['quantity'])}</td>"
        f"<td>{_fmt(t['pnl'])}</td><td>{t['exit_reason']}</td></tr>" for t in doc["trades"][:500])
    title = html.escape(f"{strat.get('name', 'backtest')} — {', '.join(doc['symbols'][:8])}")
    gaps = len(doc.get("gaps", []))
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{title}</title><style>
body{{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:980px}}
table{{border-collapse:collapse;margin:8px 0 20px}}
td,th{{padding:2px 10px;border-bottom:1px solid #eee;text-align:right}}
th{{text-align:left;font-weight:500}}.ax{{font-size:11px;fill:#666}}.neg{{color:#c0392b}}.pos{{color:#1e8449}}
.grid{{display:flex;gap:32px;flex-wrap:wrap}}
</style></head><body>
<h1>{title}</h1>
<p>{html.escape(doc['timeframe'])} bars {html.escape(doc['from'])} → \
{html.escape(doc['to'])} ({doc['bars']:,} bars); data gaps reported: {gaps}</p>
{''.join(parts)}
<div class="grid"><div><h2>Metrics</h2><table>{rows}</table></div>
<div><h2>Monthly returns</h2><table>{monthly}</table><h2>Parameters</h2><table>{params}</table>
<h2>Cost assumptions</h2><table>{costs}</table></div></div>
<h2>Per symbol</h2><table><tr><th>symbol</th><th>trades</th><th>win rate</th>
<th>net P&amp;L</th><th>profit factor</th><th>exposure</th></tr>{sym_rows}</table>
<h2>Trades (first 500)</h2><table><tr><th>symbol</th><th>entry</th><th>price</th><th>exit</th>
<th>price</th><th>qty</th><th>P&amp;L</th><th>reason</th></tr>{trades}</table>
</body></html>
"""
