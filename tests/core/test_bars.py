"""Bar building from ticks, closed by market time."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jts.bars import BarBatch, BarBuilder, timeframe_ns
from jts.clock import NS
from jts.errors import ConfigError
from jts.tick_batch import TickBatch
from jts.types import Tick

T0 = 1_764_000_000 * NS - (1_764_000_000 * NS) % (60 * NS)   # a minute boundary


def tick(sym: str, sec: float, price: float, vol: float = 10) -> Tick:
    return Tick("krx", sym, T0 + int(sec * NS), T0 + int(sec * NS), price, vol)


def test_ohlcv_and_value() -> None:
    b = BarBuilder("1m")
    assert b.add([tick("A", 1, 100), tick("A", 20, 105, 5), tick("A", 40, 99, 1),
                  tick("A", 59, 101, 4)]) == []
    (bar,) = b.add([tick("A", 61, 102)])
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (100, 105, 99, 101, 20)
    assert bar.value == 100 * 10 + 105 * 5 + 99 * 1 + 101 * 4
    assert bar.ts_ns == T0 and bar.timeframe == "1m"


def test_other_symbols_close_on_time_and_gaps_are_not_invented() -> None:
    b = BarBuilder("1m")
    b.add([tick("A", 1, 100), tick("B", 2, 50)])
    bars = b.add([tick("A", 130, 101)])        # two minutes later
    assert [(x.symbol, x.ts_ns) for x in bars] == [("A", T0), ("B", T0)]
    assert b.close_until(T0 + 200 * NS)[0].ts_ns == T0 + 120 * NS


def test_late_ticks_are_counted_and_ignored() -> None:
    b = BarBuilder("1m")
    b.add([tick("A", 61, 100)])
    assert b.add([tick("A", 5, 999)]) == []
    assert b.late_ticks == 1


@pytest.mark.parametrize(("tf", "seconds"), [("1m", 60), ("5m", 300), ("1h", 3600),
                                             ("1d", 86400), ("30s", 30)])
def test_timeframes(tf: str, seconds: int) -> None:
    assert timeframe_ns(tf) == seconds * NS


@pytest.mark.parametrize("tf", ["", "0m", "1w", "m1", "1.5m"])
def test_bad_timeframe(tf: str) -> None:
    with pytest.raises(ConfigError, match="unknown timeframe"):
        timeframe_ns(tf)


def _reference_bars(batches: list[list[Tick]], tf_s: int) -> tuple[list[tuple[object, ...]], int]:
    """The plain algorithm: bucket every tick, close a symbol's bar on its first tick of a
    later bucket and every bar whose bucket ended by the batch's newest tick."""
    tf = tf_s * NS
    off = 9 * 3600 * NS
    start = lambda ts: ((ts + off) // tf) * tf - off  # noqa: E731
    opened: dict[str, list[float]] = {}
    starts: dict[str, int] = {}
    out: list[tuple[object, ...]] = []
    late = 0
    for batch in batches:
        closed: list[tuple[object, ...]] = []
        for t in batch:
            s = start(t.ts_ns)
            if t.symbol in opened and s < starts[t.symbol]:
                late += 1
                continue
            if t.symbol in opened and s == starts[t.symbol]:
                o = opened[t.symbol]
                o[1], o[2], o[3] = max(o[1], t.price), min(o[2], t.price), t.price
                o[4] += t.volume
                o[5] += t.price * t.volume
                continue
            if t.symbol in opened:
                closed.append((starts[t.symbol], t.symbol, *opened[t.symbol]))
            opened[t.symbol] = [t.price, t.price, t.price, t.price, t.volume, t.price * t.volume]
            starts[t.symbol] = s
        if batch:
            edge = start(max(t.ts_ns for t in batch))
            for sym in [s for s, t0 in starts.items() if s in opened and t0 < edge]:
                closed.append((starts[sym], sym, *opened.pop(sym)))
        out.extend(sorted(closed, key=lambda b: (b[0], b[1])))
    return out, late


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.tuples(st.sampled_from("ABC"), st.integers(0, 400),
                                   st.sampled_from([99.0, 100.0, 100.5, 101.0]),
                                   st.sampled_from([1.0, 2.5])), max_size=15),
                max_size=6),
       st.sampled_from([1, 60, 300]))
def test_fast_path_builds_the_same_bars_as_the_plain_algorithm(
        raw: list[list[tuple[str, int, float, float]]], tf_s: int) -> None:
    batches = [[tick(s, sec, p, v) for s, sec, p, v in b] for b in raw]
    b = BarBuilder({1: "1s", 60: "1m", 300: "5m"}[tf_s])
    got = [(x.ts_ns, x.symbol, x.open, x.high, x.low, x.close, x.volume, x.value)
           for batch in batches for x in b.add(batch)]
    want, late = _reference_bars(batches, tf_s)
    assert got == want and b.late_ticks == late


def _columns(batch: list[Tick], index: dict[str, int]) -> TickBatch:
    """The batch as the collector publishes it over ``index`` (-1: outside the index)."""
    return TickBatch.of(batch, index)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.lists(st.tuples(st.sampled_from("ABCZ"), st.integers(0, 400),
                                             st.sampled_from([99.0, 100.1, 100.5, 101.3]),
                                             st.sampled_from([1.0, 2.5, 0.7])), max_size=15),
                          st.booleans()), max_size=6),
       st.sampled_from([1, 60, 300]))
def test_columnar_path_builds_the_same_bars_as_the_plain_algorithm(
        raw: list[tuple[list[tuple[str, int, float, float]], bool]], tf_s: int) -> None:
    # "Z" is outside the index; a batch without columns (False) may come at any point,
    # also before the first one with columns (then the open bars move into the arrays)
    index = {"C": 0, "A": 1, "B": 2}
    batches = [[tick(s, sec, p, v) for s, sec, p, v in b] for b, _ in raw]
    b = BarBuilder({1: "1s", 60: "1m", 300: "5m"}[tf_s])
    got = []
    for batch, (_, with_cols) in zip(batches, raw, strict=True):
        out = b.add(_columns(batch, index) if with_cols else batch)
        got.extend((x.ts_ns, x.symbol, x.open, x.high, x.low, x.close, x.volume, x.value)
                   for x in out)
        if isinstance(out, BarBatch) and out.columns is not None:
            ix, rows, ts, ohlcvv = out.columns
            assert ix is index
            assert [x.symbol for x in out] == [next(k for k, v in index.items() if v == r)
                                              for r in rows.tolist()]
            assert ts.tolist() == [x.ts_ns for x in out]
            assert ohlcvv.tolist() == [[x.open, x.high, x.low, x.close, x.volume, x.value]
                                       for x in out]
    want, late = _reference_bars(batches, tf_s)
    assert got == want and b.late_ticks == late


def test_close_until_closes_array_and_dict_bars_in_order() -> None:
    index = {"B": 0, "A": 1}
    b = BarBuilder("1m")
    assert b.add(_columns([tick("B", 1, 50), tick("Z", 2, 7), tick("A", 3, 100)], index)) == []
    bars = b.close_until(T0 + 61 * NS)
    assert [(x.symbol, x.ts_ns, x.close) for x in bars] == [("A", T0, 100), ("B", T0, 50),
                                                             ("Z", T0, 7)]
    assert b.close_until(T0 + 200 * NS) == []
