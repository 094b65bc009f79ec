"""Performance metrics of a backtest: equity-curve statistics (one numba pass), trade
statistics (closed trades), per symbol and for the portfolio.

Conventions: simple per-bar returns of the portfolio equity, risk-free rate 0; annualized
with the bars per year of the timeframe (KRX: 252 sessions × 390 minutes / bar minutes, or
252 daily bars; crypto 365 × 1440); max drawdown is a positive fraction; durations are in
bars and in calendar days. Ratios with a zero denominator are ``None`` in JSON.
"""

from __future__ import annotations

import math
from typing import Any

import numba as nb
import numpy as np
import numpy.typing as npt

from jts.backtest import kernel as K

F64 = npt.NDArray[np.float64]
DAY_NS = 86_400 * 10**9


def bars_per_year(timeframe: str, crypto: bool = False) -> float:
    n = int("".join(ch for ch in timeframe if ch.isdigit()) or 1)
    days = 365.0 if crypto else 252.0
    minutes = 1440.0 if crypto else 390.0
    if timeframe.endswith("mo"):
        return 12.0 / n
    unit = timeframe[-1]
    if unit == "m":
        return days * minutes / n
    if unit == "h":
        return days * minutes / 60.0 / n
    if unit == "d":
        return days / n
    if unit == "w":
        return 52.0 / n
    raise ValueError(f"unknown timeframe {timeframe!r}")


@nb.njit(cache=True, nogil=True)
def equity_stats(equity, cash0):  # type: ignore[no-untyped-def]
    """(mean return, std (ddof 1), downside deviation, max drawdown, longest drawdown in
    bars, start index of that drawdown)."""
    n = equity.shape[0]
    s1 = 0.0
    s2 = 0.0
    dn = 0.0
    prev = cash0
    peak = cash0
    mdd = 0.0
    dd_start = -1
    longest = 0
    longest_start = -1
    for t in range(n):
        e = equity[t]
        r = e / prev - 1.0 if prev != 0.0 else 0.0
        s1 += r
        s2 += r * r
        if r < 0.0:
            dn += r * r
        prev = e
        if e >= peak:
            peak = e
            if dd_start >= 0 and t - dd_start > longest:
                longest = t - dd_start
                longest_start = dd_start
            dd_start = -1
        else:
            if dd_start < 0:
                dd_start = t
            dd = 1.0 - e / peak
            if dd > mdd:
                mdd = dd
    if dd_start >= 0 and n - dd_start > longest:
        longest = n - dd_start
        longest_start = dd_start
    mean = s1 / n
    var = (s2 - n * mean * mean) / (n - 1) if n > 1 else 0.0
    std = math.sqrt(var) if var > 0.0 else 0.0
    return mean, std, math.sqrt(dn / n), mdd, longest, longest_start


def _ratio(a: float, b: float) -> float | None:
    if b == 0 or not math.isfinite(a) or not math.isfinite(b):
        return None
    return a / b


def trade_stats(pnl: F64, fees: F64) -> dict[str, Any]:
    """Statistics of closed trades (pnl net of fees)."""
    n = int(pnl.shape[0])
    wins = pnl[pnl > 0]
    losses = pnl[pnl <= 0]
    gw, gl = float(wins.sum()), float(-losses.sum())
    return {
        "trades": n, "wins": int(wins.shape[0]), "losses": int(losses.shape[0]),
        "win_rate": _ratio(float(wins.shape[0]), float(n)),
        "profit_factor": _ratio(gw, gl),
        "expectancy": float(pnl.mean()) if n else None,
        "avg_win": float(wins.mean()) if wins.size else None,
        "avg_loss": float(losses.mean()) if losses.size else None,
        "gross_profit": gw, "gross_loss": gl, "net_pnl": float(pnl.sum()),
        "fees": float(fees.sum()),
    }


def portfolio_metrics(equity: F64, gross: F64, ts_ns: npt.NDArray[np.int64], cash0: float,
                      rows: F64, timeframe: str, *, fees: float, slippage: float,
                      turnover: float, crypto: bool = False) -> dict[str, Any]:
    """Headline metrics of the whole portfolio; ``rows`` are the kernel's trade rows."""
    n = int(equity.shape[0])
    ppy = bars_per_year(timeframe, crypto)
    final = float(equity[-1]) if n else cash0
    total = final / cash0 - 1.0
    years = n / ppy
    ann = (final / cash0) ** (1.0 / years) - 1.0 if years > 0 and final > 0 else -1.0
    mean, std, down, mdd, dd_bars, dd_start = equity_stats(equity, cash0)
    root = math.sqrt(ppy)
    vol = std * root
    dd_days = 0.0
    if dd_bars > 0:
        end = min(dd_start + dd_bars, n - 1)
        dd_days = (int(ts_ns[end]) - int(ts_ns[max(dd_start - 1, 0)])) / DAY_NS
    closed = rows[rows[:, K.T_EXIT_BAR] >= 0] if rows.size else rows.reshape(0, K.NT)
    out: dict[str, Any] = {
        "initial_cash": cash0, "final_equity": final, "total_return": total,
        "annualized_return": ann, "volatility": vol,
        "sharpe": _ratio(mean * root, std), "sortino": _ratio(mean * root, down),
        "calmar": _ratio(ann, mdd), "max_drawdown": float(mdd),
        "max_drawdown_bars": int(dd_bars), "max_drawdown_days": dd_days,
        "exposure": float((gross > 0).mean()) if n else 0.0,
        "avg_gross_exposure": float(np.mean(gross / np.where(equity > 0, equity, np.nan)))
        if n else 0.0,
        "turnover": turnover / float(np.mean(equity)) if n and np.mean(equity) > 0 else None,
        "fees_paid": fees, "slippage_paid": slippage, "bars": n,
        "open_trades": int(rows.shape[0] - closed.shape[0]),
    }
    out.update(trade_stats(closed[:, K.T_PNL], closed[:, K.T_FEES]))
    out["trade_count"] = out.pop("trades")
    return out


def per_symbol(rows: F64, symbols: list[str], held_bars: npt.NDArray[np.int64],
               bars: npt.NDArray[np.int64], cash0: float) -> dict[str, dict[str, Any]]:
    """Trade statistics, exposure and P&L contribution of each symbol."""
    out: dict[str, dict[str, Any]] = {}
    for i, sym in enumerate(symbols):
        mine = rows[rows[:, K.T_SYM] == i] if rows.size else rows.reshape(0, K.NT)
        closed = mine[mine[:, K.T_EXIT_BAR] >= 0]
        st = trade_stats(closed[:, K.T_PNL], closed[:, K.T_FEES])
        st["trade_count"] = st.pop("trades")
        st["open_trades"] = int(mine.shape[0] - closed.shape[0])
        st["unrealized_pnl"] = float(mine[mine[:, K.T_EXIT_BAR] < 0][:, K.T_PNL].sum())
        st["return_contribution"] = (st["net_pnl"] + st["unrealized_pnl"]) / cash0
        st["exposure"] = float(held_bars[i]) / float(bars[i]) if bars[i] else 0.0
        st["bars"] = int(bars[i])
        out[sym] = st
    return out
