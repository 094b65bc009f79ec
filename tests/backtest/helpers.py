"""Small builders for backtest tests: strategy files and hand-made bar arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jts.backtest.synth import session_times
from jts.storage.timeseries import BarArrays

STRATEGY = """
[strategy]
name = "{name}"
universe = {universe}
timeframe = "{timeframe}"
{extra}
[rules]
entry = "{entry}"
exit = "{exit}"
[sizing]
method = "{method}"
value = {value}
{more}
"""


def strategy(tmp: Path, entry: str, exit: str, *, method: str = "fixed_notional",
             value: float = 1_000_000, stops: dict[str, float] | None = None,
             name: str = "t", universe: str = '["005930"]', timeframe: str = "1m",
             extra: str = "", sizing_extra: str = "") -> Path:
    more = sizing_extra
    if stops:
        more += "\n[stops]\n" + "\n".join(f"{k} = {v}" for k, v in stops.items())
    p = tmp / f"{name}.toml"
    p.write_text(STRATEGY.format(name=name, universe=universe, timeframe=timeframe, extra=extra,
                                 entry=entry, exit=exit, method=method, value=value, more=more),
                 encoding="utf-8")
    return p


def bars_from(rows: list[tuple[float, float, float, float]], *, volume: float = 1e6,
              timeframe: str = "1d", symbol: str = "005930") -> BarArrays:
    """One symbol from (open, high, low, close) rows on consecutive sessions."""
    ts = session_times(__import__("datetime").date(2025, 3, 3), len(rows), timeframe) \
        if timeframe == "1d" else session_times(__import__("datetime").date(2025, 3, 3), 1)[
            : len(rows)]
    a = np.array(rows, dtype=np.float64).T
    vol = np.full(len(rows), volume)
    return BarArrays([symbol], timeframe, ts, {
        "open": a[0:1], "high": a[1:2], "low": a[2:3], "close": a[3:4],
        "volume": vol[None, :], "value": (vol * a[3])[None, :]})
