"""Live stops (jts.stops) and history-based sizing (jts.live_sizing) against their
references: the batch ATR of jts.indicators and the backtest kernel's Kelly fraction."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from jts.backtest import kernel as K
from jts.indicators import atr as atr_batch
from jts.live_sizing import AtrTracker, KellyBook
from jts.stops import StopBook, StopRule
from jts.strategy.schema import Stops
from jts.types import Tick


def _ticks(symbol: str, prices: list[float]) -> list[Tick]:
    return [Tick("krx", symbol, i, i, p, 1.0, i) for i, p in enumerate(prices)]


def test_stop_rule_from_the_strategy_table() -> None:
    assert StopRule.of(Stops()) is None
    r = StopRule.of(Stops(stop_loss_pct=5.0, trailing_pct=2.5))
    assert r is not None and r.stop_loss == 0.05 and r.trailing == 0.025
    assert math.isnan(r.take_profit)


def test_stop_loss_fires_once_and_rearms() -> None:
    book = StopBook()
    book.open("s", "005930", StopRule(stop_loss=0.05), long=True, entry=10_000.0)
    assert book.on_prints(_ticks("005930", [9_600.0, 9_501.0])) == []
    (hit,) = book.on_prints(_ticks("005930", [9_500.0, 9_000.0]))
    assert (hit.reason, hit.price, hit.level) == ("stop_loss", 9_500.0, 9_500.0)
    assert book.on_prints(_ticks("005930", [8_000.0])) == []           # fired once
    book.rearm("s", "005930")
    assert [h.reason for h in book.on_prints(_ticks("005930", [8_000.0]))] == ["stop_loss"]
    book.close("s", "005930")
    assert len(book) == 0 and book.on_prints(_ticks("005930", [1.0])) == []


def test_trailing_follows_the_best_print_and_beats_a_looser_stop() -> None:
    book = StopBook()
    book.open("s", "A", StopRule(stop_loss=0.10, trailing=0.05), long=True, entry=100.0)
    assert book.on_prints(_ticks("A", [104.0, 120.0, 115.0])) == []
    (hit,) = book.on_prints(_ticks("A", [114.0]))                      # 120 × 0.95 = 114
    assert hit.reason == "trailing_stop" and hit.level == 114.0


def test_take_profit_and_short_positions() -> None:
    book = StopBook()
    book.open("s", "A", StopRule(take_profit=0.10), long=True, entry=100.0)
    book.open("s", "B", StopRule(stop_loss=0.05, take_profit=0.10), long=False, entry=100.0)
    hits = book.on_prints(_ticks("A", [109.0, 111.0]) + _ticks("B", [104.0, 90.0]))
    assert [(h.symbol, h.reason) for h in hits] == [("A", "take_profit"), ("B", "take_profit")]
    book.open("s", "B", StopRule(stop_loss=0.05), long=False, entry=100.0)
    assert [h.reason for h in book.on_prints(_ticks("B", [105.0]))] == ["stop_loss"]


def test_strategies_holding_the_same_symbol_are_independent() -> None:
    book = StopBook()
    book.open("a", "X", StopRule(stop_loss=0.01), long=True, entry=100.0)
    book.open("b", "X", StopRule(stop_loss=0.20), long=True, entry=100.0)
    assert [h.strategy for h in book.on_prints(_ticks("X", [95.0]))] == ["a"]
    book.close("a", "X")
    assert [h.strategy for h in book.on_prints(_ticks("X", [80.0]))] == ["b"]


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 20), st.lists(st.floats(50.0, 150.0), min_size=1, max_size=80),
       st.integers(0, 2**31))
def test_streaming_atr_equals_the_batch_indicator(period: int, closes: list[float],
                                                  seed: int) -> None:
    rng = np.random.default_rng(seed)
    c = np.array(closes)
    h = c + rng.uniform(0.0, 3.0, len(c))
    lo = c - rng.uniform(0.0, 3.0, len(c))
    want = atr_batch(h, lo, c, period)
    tracker = AtrTracker(period)
    got = np.array([tracker.update("S", h[i], lo[i], c[i]) for i in range(len(c))])
    assert np.array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-0.2, 0.3).filter(lambda r: r != 0.0), max_size=70),
       st.floats(0.1, 1.0), st.floats(0.05, 1.0))
def test_kelly_fraction_equals_the_kernel(returns: list[float], mult: float,
                                          cap: float) -> None:
    book = KellyBook(multiplier=mult, max_fraction=cap)
    for r in returns:                  # one round trip per return: buy 1,000, sell at 1,000(1+r)
        book.on_fill("S", True, True, 1_000.0, 0.0, False)
        book.on_fill("S", False, True, 1_000.0 * (1.0 + r), 0.0, True)
    p = np.zeros(24)
    p[K.P_KELLY_WIN], p[K.P_KELLY_MIN], p[K.P_KELLY_PROBE] = 50, 10, 0.01
    p[K.P_SIZE], p[K.P_MAX_FRAC] = mult, cap
    ring = np.zeros(50)
    for i, r in enumerate(book_returns(returns)):
        ring[i % 50] = r
    assert book.fraction() == K._kelly(ring, len(returns), p)


def book_returns(returns: list[float]) -> list[float]:
    return [(1_000.0 * (1.0 + r) - 1_000.0) / 1_000.0 for r in returns]


def test_kelly_uses_fees_and_ignores_positions_it_did_not_see_open() -> None:
    book = KellyBook(multiplier=1.0, max_fraction=0.5, min_trades=1)
    book.on_fill("S", False, True, 500.0, 1.0, True)          # closing an unknown position
    assert len(book.returns) == 0 and book.fraction() == 0.01
    book.on_fill("S", True, True, 1_000.0, 2.0, False)
    book.on_fill("S", False, True, 600.0, 1.0, False)         # partial exit
    book.on_fill("S", False, True, 600.0, 1.0, True)
    assert list(book.returns) == [(1_200.0 - 1_000.0 - 4.0) / 1_000.0]
