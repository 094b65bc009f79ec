"""The collector's columnar batches: the columns are exactly the accepted ticks (bad ticks
left out, symbols outside the index at -1), joining keeps them, and the surge detector
scores a batch from its columns exactly as from its ticks."""

from __future__ import annotations

import numpy as np

from jts.clock import FakeClock
from jts.collector import Collector, Feed
from jts.surge import SurgeConfig, SurgeDetector
from jts.tick_batch import TickBatch
from jts.types import Tick
from tests.collector.helpers import T0, tick
from tests.surge.helpers import DAY0, MIN, flat_history, names


def _collector(index: dict[str, int] | None) -> tuple[Collector, list[list[Tick]]]:
    got: list[list[Tick]] = []
    return Collector([Feed("f", [], venue="krx")], got.append, FakeClock(T0),
                     symbol_index=index), got


def test_columns_are_the_accepted_ticks() -> None:
    index = {"A": 0, "B": 1}
    col, got = _collector(index)
    batch = [tick("A", T0 + 1, 100.0, 5.0, seq=1), tick("B", T0 + 2, -1.0, seq=2),
             tick("Z", T0 + 3, 7.0, 2.0, seq=3), tick("A", T0 + 4, 101.0, 1.0, seq=1),
             tick("B", T0 + 5, 50.0, 3.0, seq=4)]
    col.ingest("f", batch)
    [out] = got
    assert isinstance(out, TickBatch) and out.columns is not None
    idx, s, t, p, v = out.columns
    assert idx is index
    assert s.tolist() == [0, -1, 1]                        # bad price and duplicate left out
    assert t.tolist() == [x.ts_ns for x in out] and p.tolist() == [x.price for x in out]
    assert v.tolist() == [x.volume for x in out] and [x.symbol for x in out] == ["A", "Z", "B"]
    col.ingest("f", [tick("B", T0 + 9, 51.0, 1.0, seq=9)])
    joined = TickBatch.join(got)
    assert isinstance(joined, TickBatch) and joined.columns is not None
    assert joined.columns[1].tolist() == [0, -1, 1, 1] and list(joined) == [*got[0], *got[1]]


def test_without_an_index_batches_are_plain() -> None:
    col, got = _collector(None)
    col.ingest("f", [tick("A", T0, seq=1)])
    assert getattr(got[0], "columns", None) is None
    assert TickBatch.join([got[0], [tick("B", T0)]]) == [got[0][0], tick("B", T0)]


def test_surge_scores_columns_as_ticks() -> None:
    syms = names(20)
    start = DAY0 + 60 * MIN
    hist = flat_history(syms, start, minutes=120)
    by_cols, by_ticks = (SurgeDetector(syms, SurgeConfig()) for _ in range(2))
    for det in (by_cols, by_ticks):
        det.warm_up(hist)
    col, got = _collector(by_cols.index)
    rng = np.random.default_rng(5)
    seq = 0
    for b in range(30):
        batch = []
        for _ in range(200):
            seq += 1
            i = int(rng.integers(0, 22))             # two symbols outside the universe
            sym = syms[i] if i < 20 else f"X{i}"
            hot = 8.0 if i == 3 and b > 15 else 1.0
            batch.append(Tick("krx", sym, start + seq * 50_000_000, 0,
                              10_000.0 * (1 + 0.002 * hot * b / 30), 10.0 * hot, seq))
        col.ingest("f", batch)
        found_cols = by_cols.update_ticks(got[-1])
        found_ticks = by_ticks.update_ticks(list(got[-1]))
        assert found_cols == found_ticks
    assert np.array_equal(by_cols._score, by_ticks._score)
