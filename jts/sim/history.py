"""Synthetic warm-up bars *before* the simulated market's live start, generated backwards
from the live start price so that the last warm-up close is exactly where live trading
begins. Bar ``k`` counted from the end is the same whatever ``n`` is asked for (the random
draws are taken newest-first), so repeated or longer history requests agree."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jts.krx import round_prices_f64
from jts.sim.universe import SimSymbol
from jts.types import Bar

SymIndex = tuple[SimSymbol, int]   # a symbol and its index in the universe (seeds its draws)


def backward_bars(sym: SymIndex, seed: int, timeframe: str, starts: Sequence[int],
                  weights: Sequence[float], bar_minutes: float, end_price: float) -> list[Bar]:
    """Bars opening at ``starts`` (ascending) whose final close is ``end_price``.
    ``weights`` is the intraday activity of each bar (1.0 for daily bars)."""
    info, idx = sym
    n = len(starts)
    if n == 0:
        return []
    rng = np.random.default_rng([seed, 101, idx, int(bar_minutes * 60)])
    z = rng.standard_normal((n, 4))[::-1]            # row -1 is the newest bar
    sigma = info.daily_vol * np.sqrt(min(bar_minutes, 390.0) / 390.0)
    r = z[:, 0] * sigma                               # log return of each bar
    log_end = np.log(end_price)
    # close[i] = end / exp(sum of returns after i); open[i] = close[i] / exp(r[i])
    after = np.concatenate([np.cumsum(r[::-1])[::-1][1:], [0.0]])
    log_close = log_end - after
    log_open = log_close - r
    close = round_prices_f64(np.exp(log_close))
    close[-1] = round_prices_f64(np.array([end_price]))[0]
    open_ = round_prices_f64(np.exp(log_open))
    wick = np.abs(z[:, 1:3]) * sigma * 0.6
    high = round_prices_f64(np.maximum(open_, close) * np.exp(wick[:, 0]), "up")
    low = round_prices_f64(np.minimum(open_, close) * np.exp(-wick[:, 1]), "down")
    w = np.asarray(weights, dtype=np.float64)
    volume = np.maximum(1.0, np.round(info.trades_per_min * bar_minutes * w * info.trade_qty
                                      * np.exp(0.35 * z[:, 3] - 0.06)))
    value = volume * (open_ + high + low + close) / 4.0
    return [Bar(info.code, timeframe, int(starts[i]), float(open_[i]), float(high[i]),
                float(low[i]), float(close[i]), float(volume[i]), float(value[i]))
            for i in range(n)]

