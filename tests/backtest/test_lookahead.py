"""No look-ahead: next-open fills come after their signal bar, and changing the future
never changes the past (equity and trades before the change are bit-identical)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jts.backtest import Settings, run_backtest
from jts.backtest.synth import random_bars
from jts.krx import round_prices_f64
from jts.storage.timeseries import BarArrays
from jts.strategy import load_strategy
from tests.backtest.helpers import strategy


def perturb(b: BarArrays, k: int, seed: int) -> BarArrays:
    rng = np.random.default_rng(seed)
    f = np.exp(rng.normal(0, 0.01, b.close.shape))
    f[:, :k] = 1.0
    o, c = round_prices_f64(b.open * f), round_prices_f64(b.close * f[:, ::-1])
    c[:, :k] = b.close[:, :k]
    o[:, :k] = b.open[:, :k]
    h = np.maximum(np.maximum(o, c), b.high)
    lo = np.minimum(np.minimum(o, c), b.low)
    later = np.arange(b.close.shape[1]) >= k
    v = b.volume * np.where(later, 3.0, 1.0)
    return BarArrays(b.symbols, b.timeframe, b.ts_ns, {
        "open": o, "high": h, "low": lo, "close": c, "volume": v,
        "value": np.where(later, v * c, b.value)})


def _key(tr: object) -> tuple[object, ...]:
    return tuple(getattr(tr, f) for f in ("symbol", "entry_bar", "exit_bar", "quantity",
                                          "entry_price", "exit_price", "fees", "pnl"))


CASES = {
    "sma": ("crossover(sma(close, 5), sma(close, 20))",
            "crossunder(sma(close, 5), sma(close, 20))", None, "fixed_notional"),
    "position_dependent": ("crossover(ema(close, 3), ema(close, 9)) and rsi(close, 7) < 80",
                           "bars_held >= 12 or unrealized_pct <= -0.3 or unrealized_pct >= 0.4",
                           {"stop_loss_pct": 0.5, "trailing_pct": 0.4}, "percent_equity"),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("fill", ["next_open", "next_vwap"])
def test_future_changes_never_alter_the_past(tmp_path: Path, case: str, fill: str) -> None:
    entry, exit_, stops, method = CASES[case]
    cs = load_strategy(strategy(tmp_path, entry, exit_, stops=stops, method=method,
                                value=20 if method == "percent_equity" else 1_000_000,
                                extra="max_positions = 2"))
    bars = random_bars(["005930", "000660", "035420"], 4, seed=11, vol=0.002)
    st = Settings(fill=fill, participation_cap=0.05, impact_bps=10)  # type: ignore[arg-type]
    base = run_backtest(cs, bars, settings=st)
    assert len(base.trades) > 30
    for k in (200, 777, 1234):
        other = run_backtest(cs, perturb(bars, k, k), settings=st)
        np.testing.assert_array_equal(base.equity[:k], other.equity[:k])
        before = [_key(t) for t in base.trades if 0 <= t.exit_bar < k]
        assert before == [_key(t) for t in other.trades if 0 <= t.exit_bar < k]
        assert [_key(t)[:2] for t in base.trades if t.entry_bar < k] == \
            [_key(t)[:2] for t in other.trades if t.entry_bar < k]
        assert not np.array_equal(base.equity[k:], other.equity[k:])   # the change mattered


def test_next_open_fill_is_the_bar_after_the_signal(tmp_path: Path) -> None:
    cs = load_strategy(strategy(tmp_path, "crossover(sma(close, 5), sma(close, 20))",
                                "crossunder(sma(close, 5), sma(close, 20))"))
    bars = random_bars(["005930"], 3, seed=3)
    res = run_backtest(cs, bars)
    sig = cs.vector(bars.open[0], bars.high[0], bars.low[0], bars.close[0], bars.volume[0],
                    bars.value[0])
    assert sig.entry is not None
    assert res.trades
    for tr in res.trades:
        s = int(np.searchsorted(bars.ts_ns, tr.signal_ts_ns))
        assert sig.entry[s]                          # the signal fired on bar s's close
        assert tr.entry_bar == s + 1                 # ... and filled on the next bar
        assert tr.entry_ts_ns > tr.signal_ts_ns
        # the fill price comes from bar s+1's open (5 bps up, rounded up to the tick)
        ref = bars.open[0, s + 1] * 1.0005
        assert ref <= tr.entry_price < ref + 100


def test_close_fill_uses_the_signal_bar(tmp_path: Path) -> None:
    cs = load_strategy(strategy(tmp_path, "crossover(sma(close, 5), sma(close, 20))",
                                "crossunder(sma(close, 5), sma(close, 20))"))
    bars = random_bars(["005930"], 2, seed=4)
    res = run_backtest(cs, bars, settings=Settings(fill="close"))
    assert res.trades
    for tr in res.trades:
        assert tr.entry_ts_ns == tr.signal_ts_ns
        c = bars.close[0, tr.entry_bar]
        assert c * 1.0005 <= tr.entry_price < c * 1.0005 + 100
