"""Synthetic KRX bars for tests and benchmarks: a seeded log-random walk on the tick grid,
390 one-minute bars per weekday session (09:00-15:29 KST) or one bar per weekday."""

from __future__ import annotations

from datetime import date

import numpy as np
import numpy.typing as npt

from jts.calendar import kst_midnight_ns
from jts.krx import round_prices_f64
from jts.storage.timeseries import BarArrays

MINUTE_NS = 60 * 10**9


def session_times(start: date, n_days: int, timeframe: str = "1m") -> npt.NDArray[np.int64]:
    """Bar open times (UTC ns) of ``n_days`` weekdays from ``start``."""
    days: list[int] = []
    d = np.datetime64(start, "D")
    while len(days) < n_days:
        if np.is_busday(d):
            days.append(kst_midnight_ns(d.astype(object)))
        d += 1
    base = np.array(days, np.int64)
    if timeframe == "1d":
        return base + 9 * 60 * MINUTE_NS
    minutes = (9 * 60 + np.arange(390, dtype=np.int64)) * MINUTE_NS
    return (base[:, None] + minutes[None, :]).ravel()


def random_bars(symbols: list[str], n_days: int = 250, *, timeframe: str = "1m",
                seed: int = 7, start: date = date(2025, 1, 2), price: float = 50_000.0,
                vol: float = 0.001) -> BarArrays:
    """Aligned random bars for ``symbols`` (every symbol has every bar)."""
    ts = session_times(start, n_days, timeframe)
    n = ts.shape[0]
    rng = np.random.default_rng(seed)
    S = len(symbols)
    steps = rng.normal(0.0, vol, (S, n))
    close = round_prices_f64(price * np.exp(np.cumsum(steps, axis=1)))
    prev = np.concatenate([np.full((S, 1), price), close[:, :-1]], axis=1)
    open_ = round_prices_f64(prev * np.exp(rng.normal(0.0, vol / 4, (S, n))))
    spread = np.abs(rng.normal(0.0, vol, (S, n))) * close
    high = round_prices_f64(np.maximum(open_, close) + spread, "up")
    low = round_prices_f64(np.maximum(np.minimum(open_, close) - spread, 1.0), "down")
    volume = np.floor(rng.lognormal(7.0, 1.0, (S, n)))
    value = volume * (open_ + high + low + close) / 4.0
    return BarArrays(list(symbols), timeframe, ts, {
        "open": open_, "high": high, "low": low, "close": close, "volume": volume,
        "value": value})
