"""One session time-series store (the embedded ClickHouse allows one data directory per
process; CI runs tests/replay in its own pytest process) holding synthetic KRX minute bars
built to exercise the simulation rules: several days (price-limit bases, tax by day), a
+40 % overnight gap up and a -40 % gap down (fills clamped into the ±30 % limits), and a
symbol with a hole of missing bars (the union time axis)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jts.calendar import kst_midnight_ns
from jts.krx import round_prices_f64
from jts.storage.timeseries import open_timeseries

DAYS = [date(2025, 3, 3), date(2025, 3, 4), date(2025, 3, 5)]
SYMBOLS = ["005930", "000660", "035420", "900100"]
JUMP = {"000660": 1.4, "035420": 0.6}        # price factor from the third day's open on
HOLE = ("000660", 200, 261)                  # bars [200, 261) of that symbol are missing
MINUTE_NS = 60 * 10**9


@dataclass
class Store:
    config: Path
    root: Path
    frame: pd.DataFrame


def _symbol_frame(sym: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = np.array([kst_midnight_ns(d) + (9 * 60 + m) * MINUTE_NS
                   for d in DAYS for m in range(390)], np.int64)
    n = ts.shape[0]
    level = 20_000.0 + 15_000.0 * (seed % 3)
    factor = np.ones(n)
    if sym in JUMP:
        factor[2 * 390:] = JUMP[sym]
    mid = level * np.exp(np.cumsum(rng.normal(0.0, 0.002, n))) * factor
    close = round_prices_f64(mid)
    open_ = round_prices_f64(np.r_[level, close[:-1]] * np.exp(rng.normal(0.0, 0.0005, n)))
    open_[2 * 390] = round_prices_f64(np.array([close[2 * 390 - 1] * factor[2 * 390]]))[0] \
        if sym in JUMP else open_[2 * 390]
    wick = np.abs(rng.normal(0.0, 0.0015, n)) * close
    high = round_prices_f64(np.maximum(open_, close) + wick, "up")
    low = round_prices_f64(np.minimum(open_, close) - wick, "down")
    volume = np.floor(rng.lognormal(7.0, 1.0, n)) + 1.0
    value = volume * (open_ + high + low + close) / 4.0
    keep = np.ones(n, bool)
    if sym == HOLE[0]:
        keep[HOLE[1]:HOLE[2]] = False
    return pd.DataFrame({"symbol": sym, "timeframe": "1m", "ts_ns": ts[keep],
                         "open": open_[keep], "high": high[keep], "low": low[keep],
                         "close": close[keep], "volume": volume[keep], "value": value[keep]})


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    root = tmp_path_factory.mktemp("replay")
    url = f"chdb:///{root / 'ts'}"
    frame = pd.concat([_symbol_frame(s, i + 11) for i, s in enumerate(SYMBOLS)],
                      ignore_index=True)

    async def load() -> None:
        ts = await open_timeseries(url)
        try:
            await ts.write_bars(frame)
        finally:
            await ts.close()
    asyncio.run(load())
    cfg = root / "jts.toml"
    cfg.write_text(f'[daemon]\nstate_dir = "{root}"\n[storage]\ntimeseries = "{url}"\n'
                   f'documents = "sqlite:///{root / "docs.sqlite3"}"\n', encoding="utf-8")
    return Store(cfg, root, frame)
