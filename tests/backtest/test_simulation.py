"""Simulation rules: stops, price limits, participation cap, sizing, portfolio limits,
shorting rules, tick grid."""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from jts.backtest import Settings, run_backtest
from jts.backtest.synth import random_bars
from jts.costs import CostModel
from jts.errors import ConfigError
from jts.krx import on_tick, price_limits
from jts.strategy import load_strategy
from tests.backtest.helpers import bars_from, strategy

FREE = CostModel(slippage_bps=Decimal(0))
ALWAYS = "close > 0"
NEVER = "close < 0"


def test_stop_loss_gap_fills_at_the_open(tmp_path: Path) -> None:
    cs = load_strategy(strategy(tmp_path, ALWAYS, NEVER, stops={"stop_loss_pct": 5}))
    rows = [(10000, 10000, 10000, 10000), (10000, 10100, 9990, 10050),
            (9000, 9100, 8800, 9050), (9050, 9100, 9000, 9050)]
    res = run_backtest(cs, bars_from(rows), FREE)
    first = res.trades[0]
    assert (first.entry_bar, first.entry_price) == (1, 10000)
    assert (first.exit_bar, first.exit_price, first.exit_reason) == (2, 9000, "stop_loss")


def test_take_profit_and_trailing(tmp_path: Path) -> None:
    cs = load_strategy(strategy(tmp_path, ALWAYS, NEVER, stops={"take_profit_pct": 10}))
    rows = [(10000, 10000, 10000, 10000), (10000, 10500, 9990, 10400),
            (10400, 11500, 10300, 11200), (11200, 11300, 11100, 11200)]
    tr = run_backtest(cs, bars_from(rows), FREE).trades[0]
    assert (tr.exit_bar, tr.exit_price, tr.exit_reason) == (2, 11000, "take_profit")
    cs = load_strategy(strategy(tmp_path, ALWAYS, NEVER, stops={"trailing_pct": 5}))
    rows = [(10000, 10000, 10000, 10000), (10000, 12000, 9990, 11900),
            (11900, 11950, 11300, 11500), (11500, 11600, 11000, 11100)]
    tr = run_backtest(cs, bars_from(rows), FREE).trades[0]
    # peak 12000 after bar 1 -> level 11400, hit on bar 2's low
    assert (tr.exit_bar, tr.exit_price, tr.exit_reason) == (2, 11400, "trailing_stop")


def test_buy_never_fills_beyond_the_upper_price_limit(tmp_path: Path) -> None:
    cs = load_strategy(strategy(tmp_path, ALWAYS, NEVER))
    rows = [(10000, 10000, 10000, 10000), (14500, 14500, 14500, 14500)]
    res = run_backtest(cs, bars_from(rows), CostModel())
    _, hi = price_limits(Decimal(10000))
    assert res.trades[0].entry_price == float(hi) == 13000
    free = run_backtest(cs, bars_from(rows), CostModel(), Settings(price_limits=False))
    assert free.trades[0].entry_price > 14500


def test_participation_cap_gives_partial_fills(tmp_path: Path) -> None:
    cs = load_strategy(strategy(tmp_path, ALWAYS, NEVER, method="fixed_quantity", value=100))
    rows = [(10000, 10000, 10000, 10000)] * 6
    res = run_backtest(cs, bars_from(rows, volume=1000), FREE,
                       Settings(participation_cap=0.03))
    tr = res.trades[0]
    assert tr.quantity == 100 and res.capped_fills == 3    # 30 + 30 + 30 + 10
    assert res.fills == 4


def test_sizing_methods(tmp_path: Path) -> None:
    bars = random_bars(["005930"], 3, seed=9)
    entry = "crossover(ema(close, 3), ema(close, 9))"
    exit_ = "crossunder(ema(close, 3), ema(close, 9))"
    qty = {}
    for method, value in (("fixed_quantity", 7), ("fixed_notional", 2_000_000),
                          ("percent_equity", 10), ("atr_target", 0.5), ("kelly", 0.5)):
        cs = load_strategy(strategy(tmp_path, entry, exit_, method=method, value=value,
                                    name=method))
        res = run_backtest(cs, bars)
        assert res.trades, method
        qty[method] = [t.quantity for t in res.trades]
        px = res.trades[0].entry_price
        if method == "fixed_quantity":
            assert set(qty[method]) == {7}
        elif method == "fixed_notional":
            assert all(q * 50_000 * 0.8 < 2_000_000 for q in qty[method])
        elif method == "percent_equity":
            signal_close = bars.close[0, res.trades[0].entry_bar - 1]
            assert qty[method][0] == int(100_000_000 * 0.10 / signal_close)
        elif method == "kelly":     # probe fraction until 10 trades closed
            signal_close = bars.close[0, res.trades[0].entry_bar - 1]
            assert qty[method][0] == int(100_000_000 * 0.01 / signal_close)
        assert px > 0
    assert len(set(qty["atr_target"])) > 1


def test_max_positions_and_shared_cash(tmp_path: Path) -> None:
    cs = load_strategy(strategy(tmp_path, "crossover(ema(close, 3), ema(close, 9))",
                                "crossunder(ema(close, 3), ema(close, 9))",
                                extra="max_positions = 1"))
    bars = random_bars(["005930", "000660", "035420"], 3, seed=2)
    res = run_backtest(cs, bars)
    spans = sorted((t.entry_bar, t.exit_bar if t.exit_bar >= 0 else 10**9) for t in res.trades)
    assert len({t.symbol for t in res.trades}) > 1
    for (_, a1), (b0, _) in itertools.pairwise(spans):
        assert b0 >= a1          # never two open at once
    # one shared cash balance: after a 99 % position the others get only what is left
    cs2 = load_strategy(strategy(tmp_path, "close > 0", NEVER, method="percent_equity",
                                 value=99, name="allin"))
    res2 = run_backtest(cs2, bars, FREE)
    spent = [t.quantity * t.entry_price for t in res2.trades]
    assert spent[0] > 98_000_000 and sum(spent) <= 100_000_000
    assert len(res2.trades) >= 2 and max(spent[1:]) < 2_000_000


def test_short_is_refused_on_krx_and_works_on_crypto(tmp_path: Path) -> None:
    cs = load_strategy(strategy(tmp_path, ALWAYS, NEVER, method="fixed_quantity", value=2))
    rows = [(100.0, 100, 100, 100), (100, 101, 99, 100), (90, 91, 89, 90)]
    with pytest.raises(ConfigError, match="short"):
        run_backtest(cs, bars_from(rows), settings=Settings(direction="short"))
    res = run_backtest(cs, bars_from(rows), CostModel(slippage_bps=Decimal(0)),
                       Settings(direction="short", venue="binance"))
    tr = res.trades[0]
    assert tr.side == "short" and tr.exit_reason == "open"
    fees = 2 * 100 * 0.001
    assert tr.pnl == pytest.approx((100 - 90) * 2 - fees)
    assert res.final_equity == pytest.approx(100_000_000 + 20 - fees)


def test_fills_are_on_the_tick_grid(tmp_path: Path) -> None:
    cs = load_strategy(strategy(tmp_path, "crossover(ema(close, 3), ema(close, 9))",
                                "crossunder(ema(close, 3), ema(close, 9))"))
    res = run_backtest(cs, random_bars(["005930"], 2, seed=1, price=4_000),
                       CostModel(slippage_bps=Decimal("7.3")), Settings(impact_bps=20))
    assert res.trades
    for t in res.trades:
        assert on_tick(t.entry_price) and on_tick(t.exit_price)
    assert np.isfinite(res.equity).all()
