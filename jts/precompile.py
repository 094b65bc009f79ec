"""Compile the numba kernels before the daemon connects to anything.

A first start on a fresh machine compiles the surge, strategy and indicator kernels (about
10 s on two cores); later starts load them from numba's on-disk cache. Compiling lazily, on
the first bar or tick, would stall the event loop while a broker's WebSocket waits for its
heartbeat answer (KIS drops a session that does not echo PINGPONG), and the first signal
would come late. So :func:`precompile` runs each kernel once over a few synthetic bars and
ticks in throwaway objects, in a worker thread, before the broker connects.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any

import structlog

from jts.portfolio import Portfolio
from jts.types import Bar, Tick

log = structlog.get_logger(__name__)
_SYMBOLS = ("PRECOMPILE0", "PRECOMPILE1")
_MINUTE = 60 * 1_000_000_000
_T0 = 1_700_000_000 * 1_000_000_000 // _MINUTE * _MINUTE


def _bars(symbol: str, n: int, start: int = 0) -> list[Bar]:
    out = []
    for i in range(start, start + n):
        px = 10_000.0 + 10.0 * (i % 7)
        out.append(Bar(symbol, "1m", _T0 + i * _MINUTE, px, px + 20.0, px - 20.0, px + 10.0,
                       1_000.0 + i, (px + 10.0) * (1_000.0 + i)))
    return out


def precompile(strategies: Sequence[Any], surge_cfg: Any | None) -> float:
    """Run every kernel the daemon will call once; returns the seconds it took.
    Touches no daemon state: the engine and detector here are thrown away."""
    from jts.engine import StrategyEngine

    t0 = time.perf_counter()
    history = {s: _bars(s, 40) for s in _SYMBOLS}
    if strategies:
        engine = StrategyEngine(strategies, list(_SYMBOLS), Portfolio(cash=Decimal(10**9)))
        engine.warm_up(history)
        for i in range(2):
            engine.on_bars([b for s in _SYMBOLS for b in _bars(s, 1, 40 + i)])
        for book in engine.guards.kelly.values():   # kelly sizing calls the backtest kernel
            book.fraction()
    if surge_cfg is not None:
        from jts.surge import SurgeDetector

        surge = SurgeDetector(list(_SYMBOLS), surge_cfg)
        surge.warm_up(history)
        ts = _T0 + 41 * _MINUTE
        ticks = [Tick("krx", s, ts + k * 1_000_000, ts, 10_000.0 + k, 10.0, k)
                 for k in range(8) for s in _SYMBOLS]
        surge.update_ticks(ticks)
        surge.top(5)
    _bar_kernels()
    _tick_path()
    took = time.perf_counter() - t0
    log.info("kernels_ready", seconds=round(took, 3), strategies=len(strategies),
             surge=surge_cfg is not None)
    return took


def _bar_kernels() -> None:
    """The columnar bar builder's fold and close (two minutes of prints, one bar close)."""
    from jts.bars import BarBuilder
    from jts.tick_batch import TickBatch

    index = {s: i for i, s in enumerate(_SYMBOLS)}
    ticks = [Tick("krx", s, _T0 + k * _MINUTE, _T0, 10_000.0, 10.0, k + 1)
             for k in range(2) for s in _SYMBOLS]
    BarBuilder("1m").add(TickBatch.of(ticks, index))


async def _no_feed() -> AsyncIterator[list[Tick]]:
    return
    yield


def _tick_path() -> None:
    """The collector's validation, the last-price array, the paper broker's fold and the
    risk gate's mark estimate."""
    from brokers.paper import PaperBroker
    from jts.clock import FakeClock
    from jts.collector import Collector, Feed
    from jts.prices import LastPrices

    index = {s: i for i, s in enumerate(_SYMBOLS)}
    got: list[Any] = []
    col = Collector([Feed("precompile", _no_feed, venue="krx")], got.append, FakeClock(_T0),
                    symbol_index=index)
    col.ingest("precompile", [Tick("krx", s, _T0 + k, _T0, 10_000.0, 10.0, k)
                              for k in range(2) for s in _SYMBOLS])
    col.ingest("precompile", [Tick("krx", _SYMBOLS[0], _T0 + 5, _T0, 10_000.0, 10.0, 0)])
    cols = got[0].columns
    prices = LastPrices(index)
    prices.update_columns(cols[1], cols[3])
    PaperBroker(clock=FakeClock(_T0)).on_ticks(got[0])
    Portfolio(cash=Decimal(10**9), marks=prices).estimate()    # the risk gate's estimate
