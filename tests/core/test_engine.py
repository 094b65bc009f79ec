"""The live strategy engine over real compiled strategies: entries only when flat, exits
only when holding, one order in flight per (strategy, symbol), max_positions, the "surge"
universe gated by surge candidates, and a failing strategy disabled alone."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np

from jts.bars import BarBatch
from jts.clock import NS
from jts.engine import StrategyEngine
from jts.portfolio import Portfolio
from jts.strategy import load_strategy
from jts.surge import SurgeCandidate
from jts.types import Bar, Fill, Side, Tick

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


def _held_strategy(tmp_path: Path, name: str, universe: str) -> object:
    p = tmp_path / f"{name}.toml"
    p.write_text(f'[strategy]\nname = "{name}"\nuniverse = {universe}\ntimeframe = "1m"\n'
                 '[rules]\nentry = "close > close[1]"\n'
                 'exit = "close < close[1] or bars_held >= 3"\n'
                 '[sizing]\nmethod = "fixed_notional"\nvalue = 100000\n')
    return load_strategy(p)


def test_a_bar_close_in_one_batch_equals_bar_by_bar(tmp_path: Path) -> None:
    """The columnar bar close (one kernel call per strategy, only signalled rows visited)
    decides exactly what evaluating each bar alone decides: entries, exits, bars_held,
    pending, fills, and a universe that covers part of the batch."""
    syms = [f"S{i}" for i in range(12)]
    strategies = [_held_strategy(tmp_path, "all", '"all"'),
                  _held_strategy(tmp_path, "part", '["S1", "S4", "S7", "S9"]')]
    batch = StrategyEngine(strategies, syms, Portfolio(cash=Decimal(10**9)))
    single = StrategyEngine(strategies, syms, Portfolio(cash=Decimal(10**9)))
    # bars as the bar builder publishes them: with columns over its own index (another
    # order, and a symbol no strategy carries)
    columnar = StrategyEngine(strategies, syms, Portfolio(cash=Decimal(10**9)))
    index = {s: i for i, s in enumerate(reversed([*syms, "X"]))}
    rng = np.random.default_rng(3)
    px = dict.fromkeys(syms, 1000.0)
    seen = 0
    for i in range(40):
        px = {s: max(10.0, p * (1 + rng.normal(0, 0.02))) for s, p in px.items()}
        closing = bars({s: px[s] for s in syms if rng.random() < 0.8}, i)
        got_batch = batch.on_bars(closing)
        got_single = [it for b in closing for it in single.on_bars([b])]
        with_x = [*closing, *bars({"X": 5.0}, i)]
        got_cols = columnar.on_bars(BarBatch(with_x, (
            index, np.array([index[b.symbol] for b in with_x], np.int64),
            np.array([b.ts_ns for b in with_x], np.int64),
            np.array([(b.open, b.high, b.low, b.close, b.volume, b.value) for b in with_x]))))
        key = sorted((it.strategy, it.symbol, it.side, it.quantity) for it in got_batch)
        assert key == sorted((it.strategy, it.symbol, it.side, it.quantity)
                             for it in got_single)
        assert [(it.strategy, it.symbol, it.side, it.quantity) for it in got_batch] == \
            [(it.strategy, it.symbol, it.side, it.quantity) for it in got_cols]
        seen += len(got_batch)
        for n, it in enumerate(got_batch):         # fill half, leave the rest in flight
            if n % 2 == 0:
                for eng in (batch, single, columnar):
                    eng.on_fill(Fill("p", "a", f"t{i}-{n}", "c", it.symbol, it.side,
                                     it.quantity, Decimal(100), Decimal(0), Decimal(0), T0,
                                     it.strategy))
                    eng.on_order_done(it.strategy, it.symbol)
        for rb, rs, rc in zip(batch.runs, single.runs, columnar.runs, strict=True):
            assert [(s.position, s.bars_held, s.pending) for s in rb.slots] == \
                [(s.position, s.bars_held, s.pending) for s in rs.slots] == \
                [(s.position, s.bars_held, s.pending) for s in rc.slots]
    assert seen > 20


def _stop_strategy(tmp_path: Path) -> object:
    p = tmp_path / "stop.toml"
    p.write_text('[strategy]\nname = "st"\nuniverse = "all"\ntimeframe = "1m"\n'
                 '[rules]\nentry = "close > close[1]"\nexit = "bars_held >= 100"\n'
                 '[sizing]\nmethod = "fixed_quantity"\nvalue = 10\n'
                 '[stops]\nstop_loss_pct = 5\n')
    return load_strategy(p)


def _tick(symbol: str, price: float, i: int) -> Tick:
    return Tick("krx", symbol, T0 + i * NS, T0 + i * NS, price, 1.0, i)


def test_stop_loss_on_prints_closes_once_and_rearms(tmp_path: Path) -> None:
    eng = StrategyEngine([_stop_strategy(tmp_path)], ["A"], Portfolio(cash=Decimal(10**9)))
    assert eng.on_ticks([_tick("A", 1.0, 0)]) == []           # nothing held: nothing watched
    eng.on_fill(Fill("p", "a", "t1", "c1", "A", Side.BUY, Decimal(10), Decimal(1000),
                     Decimal(0), Decimal(0), T0, "st"))
    eng.on_order_done("st", "A")
    assert eng.on_ticks([_tick("A", 960.0, 1)]) == []         # above 950
    (x,) = eng.on_ticks([_tick("A", 949.0, 2), _tick("A", 940.0, 3)])
    assert (x.side, x.quantity, x.closing, x.reason) == (Side.SELL, Decimal(10), True,
                                                         "stop_loss")
    assert eng.on_ticks([_tick("A", 900.0, 4)]) == []         # in flight: no second order
    eng.on_order_done("st", "A")                              # refused: still holding
    (again,) = eng.on_ticks([_tick("A", 900.0, 5)])
    assert again.reason == "stop_loss"
    eng.on_fill(Fill("p", "a", "t2", "c2", "A", Side.SELL, Decimal(10), Decimal(900),
                     Decimal(0), Decimal(0), T0, "st"))
    eng.on_order_done("st", "A")
    assert eng.on_ticks([_tick("A", 1.0, 6)]) == [] and not eng.guards.watching
    assert eng.status()[0]["stop_exits"] == 2
