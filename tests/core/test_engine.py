"""The live strategy engine over real compiled strategies: entries only when flat, exits
only when holding, one order in flight per (strategy, symbol), max_positions, the "surge"
universe gated by surge candidates, and a failing strategy disabled alone."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np

from jts.clock import NS
from jts.engine import StrategyEngine
from jts.portfolio import Portfolio
from jts.strategy import load_strategy
from jts.surge import SurgeCandidate
from jts.types import Bar, Fill, Side

T0 = 1_764_000_000 * NS


def strategy(tmp_path: Path, universe: str = '"all"', extra: str = "") -> object:
    p = tmp_path / "s.toml"
    p.write_text(f'[strategy]\nname = "s"\nuniverse = {universe}\ntimeframe = "1m"\n{extra}\n'
                 '[rules]\nentry = "close > close[1]"\nexit = "close < close[1]"\n'
                 '[sizing]\nmethod = "fixed_notional"\nvalue = 100000\n')
    return load_strategy(p)


def bars(prices: dict[str, float], i: int) -> list[Bar]:
    return [Bar(s, "1m", T0 + i * 60 * NS, p, p, p, p, 100.0, p * 100) for s, p in prices.items()]


def test_entry_exit_and_pending(tmp_path: Path) -> None:
    eng = StrategyEngine([strategy(tmp_path)], ["A", "B"], Portfolio(cash=Decimal(10**9)))
    assert eng.on_bars(bars({"A": 100, "B": 100}, 0)) == []
    (i1, i2) = eng.on_bars(bars({"A": 101, "B": 101}, 1))
    assert {i1.symbol, i2.symbol} == {"A", "B"} and i1.side is Side.BUY
    assert i1.quantity == Decimal(990)                         # 100,000 / 101, floored
    assert eng.on_bars(bars({"A": 102, "B": 102}, 2)) == []    # pending: no second order
    eng.on_fill(Fill("p", "a", "t1", "c1", "A", Side.BUY, Decimal(990), Decimal(101),
                     Decimal(0), Decimal(0), T0, "s"))
    eng.on_order_done("s", "A")
    (x,) = eng.on_bars(bars({"A": 100}, 3))
    assert x.side is Side.SELL and x.closing and x.quantity == Decimal(990)


def test_max_positions_caps_entries(tmp_path: Path) -> None:
    eng = StrategyEngine([strategy(tmp_path, extra="max_positions = 1")], ["A", "B", "C"],
                         Portfolio(cash=Decimal(10**9)))
    eng.on_bars(bars({"A": 100, "B": 100, "C": 100}, 0))
    out = eng.on_bars(bars({"A": 101, "B": 101, "C": 101}, 1))
    assert len(out) == 1 and eng.runs[0].capped == 2


def test_surge_universe_enters_only_on_candidates(tmp_path: Path) -> None:
    eng = StrategyEngine([strategy(tmp_path, '"surge"')], ["A", "B"],
                         Portfolio(cash=Decimal(10**9)))
    eng.on_bars(bars({"A": 100, "B": 100}, 0))
    assert eng.on_bars(bars({"A": 101, "B": 101}, 1)) == []
    eng.on_candidates([SurgeCandidate("B", 5.0, ("volume_z=6",), T0 + 2 * 60 * NS, 6.0,
                                      0.01, None, None)])
    out = eng.on_bars(bars({"A": 102, "B": 102}, 2))
    assert [i.symbol for i in out] == ["B"]


def test_failing_strategy_is_disabled_alone(tmp_path: Path) -> None:
    good = strategy(tmp_path)
    (tmp_path / "b").mkdir()
    bad = strategy(tmp_path / "b")
    eng = StrategyEngine([good, bad], ["A"], Portfolio(cash=Decimal(10**9)))

    class Boom:
        def update_batch(self, *a: object) -> tuple[np.ndarray, np.ndarray]:
            raise ZeroDivisionError("bad formula state")

    eng.runs[1].evaluator = Boom()
    eng.on_bars(bars({"A": 100}, 0))
    out = eng.on_bars(bars({"A": 101}, 1))
    assert len(out) == 1
    assert not eng.runs[1].enabled and "bad formula state" in eng.runs[1].error
    assert eng.runs[0].enabled
