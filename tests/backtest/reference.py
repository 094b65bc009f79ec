"""An independent, deliberately plain reference backtester for one symbol: a Python loop,
SMA by explicit window sums, Decimal money through the CostModel's own methods (the paper
broker's numbers) and jts.krx.price_limits. Long only, next-open fills, fixed-notional
sizing from the signal bar's close, full exits, optional stop-loss."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from jts.calendar import kst_date
from jts.costs import CostModel
from jts.krx import price_limits
from jts.money import to_decimal
from jts.types import Side


def sma_list(xs: list[float], n: int) -> list[float]:
    out = [math.nan] * len(xs)
    for i in range(n - 1, len(xs)):
        out[i] = sum(xs[i - n + 1: i + 1]) / n
    return out


@dataclass
class RefTrade:
    entry_bar: int
    exit_bar: int | None
    quantity: int
    entry_price: Decimal
    exit_price: Decimal | None
    fees: Decimal
    pnl: Decimal


def reference_sma_cross(ts: list[int], o: list[float], h: list[float], lo: list[float],
                        c: list[float], fast: int, slow: int, notional: int, cash0: int,
                        costs: CostModel, stop_loss_pct: float | None = None
                        ) -> tuple[list[RefTrade], Decimal]:
    f = sma_list(c, fast)
    s = sma_list(c, slow)
    cash = Decimal(cash0)
    qty = 0
    entry_px = Decimal(0)
    trade: RefTrade | None = None
    trades: list[RefTrade] = []
    pending: int = 0          # +q buy, -q sell at the next open
    prev_close: float | None = None
    base: float | None = None
    day = None

    def limit(px: Decimal, side: Side) -> Decimal:
        if base is None:
            return px
        lo_, hi_ = price_limits(to_decimal(base))
        return min(px, hi_) if side is Side.BUY else max(px, lo_)

    def sell(t: int, ref: float) -> None:
        nonlocal cash, qty, trade
        assert trade is not None
        px = limit(costs.fill_price(Side.SELL, to_decimal(ref)), Side.SELL)
        amount = px * qty
        fee = costs.commission("krx", Side.SELL, amount) + \
            costs.tax("krx", "KOSPI", Side.SELL, amount, kst_date(ts[t]))
        cash += amount - fee
        trade.fees += fee
        trade.exit_bar, trade.exit_price = t, px
        trade.pnl = (px - trade.entry_price) * qty - trade.fees
        trades.append(trade)
        trade, qty = None, 0

    for t in range(len(c)):
        d = kst_date(ts[t])
        if d != day:
            base, day = prev_close, d
        if pending > 0:
            px = limit(costs.fill_price(Side.BUY, to_decimal(o[t])), Side.BUY)
            q = pending
            while q > 0 and px * q + costs.commission("krx", Side.BUY, px * q) > cash:
                q -= 1
            if q > 0:
                fee = costs.commission("krx", Side.BUY, px * q)
                cash -= px * q + fee
                qty, entry_px = q, px
                trade = RefTrade(t, None, q, px, None, fee, Decimal(0))
        elif pending < 0 and qty > 0:
            sell(t, o[t])
        pending = 0
        if qty > 0 and stop_loss_pct is not None:
            level = float(entry_px) * (1 - stop_loss_pct / 100)
            if lo[t] <= level:
                sell(t, min(o[t], level))
        prev_close = c[t]
        cross_up = t > 0 and f[t] > s[t] and f[t - 1] <= s[t - 1]
        cross_dn = t > 0 and f[t] < s[t] and f[t - 1] >= s[t - 1]
        if qty > 0 and cross_dn:
            pending = -qty
        elif qty == 0 and cross_up:
            pending = math.floor(notional / c[t])
    if trade is not None:
        last = to_decimal(c[-1])
        trade.exit_price = last
        trade.pnl = (last - trade.entry_price) * qty - trade.fees
        trades.append(trade)
    return trades, cash + qty * to_decimal(c[-1])
