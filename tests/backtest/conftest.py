"""A session time-series store (one embedded ClickHouse per process) with synthetic KRX
bars, and a jts.toml pointing at it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jts.backtest.synth import random_bars
from jts.storage.timeseries import BarArrays, open_timeseries

SYMBOLS = ["005930", "000660"]


@dataclass
class Store:
    config: Path
    url: str
    bars: BarArrays          # what was written (1m, both symbols)
    gappy: str               # a symbol with a missing stretch of bars


def _frame(b: BarArrays, keep: np.ndarray | None = None) -> pd.DataFrame:
    frames = []
    for s, sym in enumerate(b.symbols):
        m = np.ones(b.ts_ns.shape[0], bool) if keep is None else keep
        frames.append(pd.DataFrame({"symbol": sym, "timeframe": b.timeframe,
                                    "ts_ns": b.ts_ns[m], **{f: getattr(b, f)[s][m] for f in (
                                        "open", "high", "low", "close", "volume", "value")}}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    root = tmp_path_factory.mktemp("bt")
    url = f"chdb:///{root / 'ts'}"
    bars = random_bars(SYMBOLS, 8, seed=21, vol=0.0015)
    gap = random_bars(["900100"], 8, seed=5)
    keep = np.ones(gap.ts_ns.shape[0], bool)
    keep[500:530] = False

    async def load() -> None:
        ts = await open_timeseries(url)
        await ts.write_bars(_frame(bars))
        await ts.write_bars(_frame(gap, keep))
        await ts.close()
    asyncio.run(load())
    cfg = root / "jts.toml"
    cfg.write_text(f'[daemon]\nstate_dir = "{root}"\n[storage]\ntimeseries = "{url}"\n'
                   f'documents = "sqlite:///{root / "docs.sqlite3"}"\n', encoding="utf-8")
    return Store(cfg, url, bars, "900100")
