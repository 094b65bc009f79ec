"""The vectorized and streaming evaluators agree signal for signal; batches equal single
updates; every DSL function is exercised."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from jts.strategy import load_strategy
from tests.strategy.sim import bars, simulate_stream, simulate_vector

EXIT = ("bars_held >= 5 or unrealized_pct <= -1 or unrealized_pct >= 2 or position < 0 "
        "or entry_price > close * 2")
FORMULAS = [
    "crossover(sma(close, 5), wma(close, 10)) or crossunder(dema(close, 4), tema(close, 4))",
    "kama(close, 10) > hma(close, 9) and vwap(10) < close",
    "rsi(close, 14) < 40 or stochrsi_k(close, 14, 5, 3) > stochrsi_d(close, 14, 5, 3)",
    "stoch_k(5, 3, 3) > stoch_d(5, 3, 3) and willr(14) > -50",
    "cci(14) > 0 and mfi(14) > 50",
    "roc(close, 5) > 0 and mom(close, 5) > 0 and ppo(close, 5, 10) > 0",
    "macd(close, 6, 13, 4) > macd_signal(close, 6, 13, 4) and macd_hist(close, 6, 13, 4) > 0",
    "adx(7) > 20 and plus_di(7) > minus_di(7)",
    "aroon_up(10) > aroon_down(10)",
    "atr(14) > natr(14) / 100 * close * 0.5 and trange() > 0",
    "close > bb_upper(close, 20, 2, 2) or close < bb_lower(close, 20, 2, 2) or "
    "bb_pctb(close, 20) > 0.5 and bb_width(close, 20) > 1% and bb_middle(close, 20) > 0",
    "close > kc_upper(10, 1.5, 5) or close < dc_lower(10) or close > kc_middle(10) "
    "and dc_middle(10) < dc_upper(10) and kc_lower(10) < close",
    "zscore(close, 20) > 1 or stddev(close, 10) > 2",
    "highest(high, 10)[1] < close or lowest(low, 10)[1] > close",
    "linearreg_slope(close, 10) > 0 and rising(close, 2)",
    "falling(close) or obv() > obv()[5] and ad() > 0 or adosc(3, 10) > 0",
    "vol_ratio(10) > 1.5 or surge(10) > 2",
    "doji() > 0 or engulfing() != 0 or hammer() > 0 or gap_up() > 0 or gap_down() > 0",
    "if(close > open, close - open, open - close) > abs(close - open) - 0.001 and "
    "min(open, close) <= max(open, close) and close / (volume - volume) != 1",
    "not (close[1] >= close) and true",
]


@pytest.mark.parametrize("formula", FORMULAS)
def test_vector_equals_stream(write: Callable[..., Path], formula: str) -> None:
    cs = load_strategy(write(entry=formula, exit_=EXIT))
    for data in (bars(600, 3), bars(300, 4, nan_head=5)):
        s = simulate_stream(cs, data)
        v = simulate_vector(cs, data)
        assert s == v
    assert s[0], "formula never fired: the test would prove nothing"


@pytest.mark.parametrize("path", sorted(Path("strategies").glob("*.toml")))
def test_shipped_strategies_agree_and_trade(path: Path) -> None:
    cs = load_strategy(path)
    data = bars(2000, 11)
    s = simulate_stream(cs, data)
    assert s == simulate_vector(cs, data)
    assert len(s[0]) >= 2


def test_paper_momentum_trades_often() -> None:
    cs = load_strategy("strategies/paper_momentum.toml")
    assert cs.universe == "all" and cs.timeframe == "1m" and cs.max_positions == 20
    assert cs.sizing.method == "fixed_notional" and cs.sizing.value == 1_000_000
    assert cs.warmup_bars <= 60
    entries, _ = simulate_stream(cs, bars(200, 5))
    assert len(entries) >= 10


def test_update_batch_equals_single_updates() -> None:
    cs = load_strategy("strategies/ema_cross_rsi.toml")
    n_sym, n = 3, 200
    data = [bars(n, 20 + s) for s in range(n_sym)]
    single = [cs.stream(1) for _ in range(n_sym)]
    batch = cs.stream(n_sym)
    rng = np.random.default_rng(0)
    for t in range(n):
        sym = np.arange(n_sym, dtype=np.int64)
        ohlcvv = np.stack([d[t] for d in data])
        pos = rng.choice([0.0, 10.0], n_sym)
        held = rng.integers(0, 40, n_sym)
        ep = np.where(pos > 0, ohlcvv[:, 3] * rng.uniform(0.95, 1.05, n_sym), np.nan)
        e, x = batch.update_batch(sym, ohlcvv, pos, held, ep)
        for s in range(n_sym):
            assert (bool(e[s]), bool(x[s])) == single[s].update(
                0, *ohlcvv[s], position=pos[s], bars_held=int(held[s]), entry_price=ep[s])


def test_vector_without_position_terms_is_complete(write: Callable[..., Path]) -> None:
    cs = load_strategy(write(entry="crossover(ema(close, 3), ema(close, 8))",
                             exit_="crossunder(ema(close, 3), ema(close, 8))"))
    d = bars(300, 2)
    vs = cs.vector(*(d[:, j] for j in range(6)))
    assert not vs.position_dependent and vs.entry is not None and vs.exit is not None
    ev = cs.stream(1)
    got = [ev.update(0, *row) for row in d]
    assert [g[0] for g in got] == vs.entry.tolist()
    assert [g[1] for g in got] == vs.exit.tolist()


def test_division_by_zero_is_nan_and_false(write: Callable[..., Path]) -> None:
    cs = load_strategy(write(entry="close / (close - close) > 0 or close / 0 <= 0",
                             exit_="not (close / 0 == close / 0)"))
    d = bars(20, 1)
    vs = cs.vector(*(d[:, j] for j in range(6)))
    assert vs.entry is not None and not vs.entry.any()
    assert vs.exit is not None and vs.exit.all()  # NaN == NaN is false


def test_short_data_gives_no_signals(write: Callable[..., Path]) -> None:
    cs = load_strategy(write(entry="close > sma(close, 50)"))
    d = bars(10, 1)
    vs = cs.vector(*(d[:, j] for j in range(6)))
    assert vs.entry is not None and not vs.entry.any()
    assert cs.warmup_bars == 49
