"""The kernel against the independent plain-Python reference loop (trades, final equity)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from jts.backtest import Settings, run_backtest
from jts.backtest.synth import random_bars
from jts.costs import CostModel
from jts.strategy import load_strategy
from tests.backtest.reference import reference_sma_cross

SMA = """
[strategy]
name = "sma_cross"
universe = ["005930"]
timeframe = "1m"
[params]
fast = {{ default = 10, min = 2, max = 40, step = 1 }}
slow = {{ default = 30, min = 5, max = 150, step = 5 }}
[rules]
entry = "crossover(sma(close, fast), sma(close, slow))"
exit = "crossunder(sma(close, fast), sma(close, slow))"
[sizing]
method = "fixed_notional"
value = {notional}
{stops}
"""


def write_sma(tmp: Path, notional: int = 1_000_000, stops: str = "") -> Path:
    p = tmp / "sma.toml"
    p.write_text(SMA.format(notional=notional, stops=stops), encoding="utf-8")
    return p


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1.0)


@pytest.mark.parametrize(("seed", "fast", "slow", "cash", "notional", "slip", "stop"), [
    (1, 5, 20, 100_000_000, 1_000_000, 5, None),
    (2, 10, 30, 3_000_000, 2_500_000, 0, None),        # cash binds: quantities shrink
    (3, 3, 8, 50_000_000, 10_000_000, 12.5, 1.0),      # stop-loss
    (4, 7, 50, 10_000_000, 9_000_000, 5, 0.5),
])
def test_kernel_matches_reference(tmp_path: Path, seed: int, fast: int, slow: int, cash: int,
                                  notional: int, slip: float, stop: float | None) -> None:
    stops = f"[stops]\nstop_loss_pct = {stop}\n" if stop else ""
    cs = load_strategy(write_sma(tmp_path, notional, stops), {"fast": fast, "slow": slow})
    bars = random_bars(["005930"], 12, seed=seed, vol=0.002)
    costs = CostModel(slippage_bps=Decimal(str(slip)))
    res = run_backtest(cs, bars, costs, Settings(initial_cash=cash))
    ref, ref_equity = reference_sma_cross(
        bars.ts_ns.tolist(), bars.open[0].tolist(), bars.high[0].tolist(),
        bars.low[0].tolist(), bars.close[0].tolist(), fast, slow, notional, cash, costs, stop)
    assert len(ref) > 20
    assert len(res.trades) == len(ref)
    for got, want in zip(res.trades, ref, strict=True):
        assert got.entry_bar == want.entry_bar
        assert (got.exit_bar if got.exit_bar >= 0 else None) == want.exit_bar
        assert got.quantity == want.quantity
        assert rel(got.entry_price, float(want.entry_price)) <= 1e-9
        assert want.exit_price is not None
        assert rel(got.exit_price, float(want.exit_price)) <= 1e-9
        assert rel(got.fees, float(want.fees)) <= 1e-9
        assert rel(got.pnl, float(want.pnl)) <= 1e-9
    assert rel(res.final_equity, float(ref_equity)) <= 1e-9
    if stop:
        assert any(t.exit_reason == "stop_loss" for t in res.trades)


def test_fast_evaluator_equals_strategy_vector(tmp_path: Path) -> None:
    """The backtester's evaluator gives the DSL's own vectorized registers."""
    from jts.backtest.signals import evaluate
    cs = load_strategy(Path("strategies/ema_cross_rsi.toml"))
    b = random_bars(["005930"], 3, seed=5)
    cols = [getattr(b, f)[0] for f in ("open", "high", "low", "close", "volume", "value")]
    mine = evaluate(cs, *cols)
    theirs = cs.vector(*cols)
    tail = set(cs.program.tail.tolist())
    rows = [int(cs.program.ops[i, 1]) for i in range(cs.program.ops.shape[0]) if i not in tail]
    np.testing.assert_array_equal(mine.regs[rows], theirs.regs[rows])
