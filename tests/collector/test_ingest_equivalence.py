"""The columnar validation (:mod:`jts.ingest`) against a plain per-tick reference of the
collector's rules: same accepted ticks in the same order, same rejection counts, over hostile
random streams (bad prices and volumes, late and duplicate prints, sequence and content
de-duplication across window rotations, several venues, malformed ticks), fed as ``Tick``
lists or as :class:`TickColumns`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from jts.clock import NS, FakeClock
from jts.collector import REASONS, Collector, Feed
from jts.tick_batch import TickColumns
from jts.types import Tick

T0 = 1_750_000_000 * NS
SYMS = ("A", "B", "C", "")


class Reference:
    """The rules, one tick at a time: malformed → bad price → bad volume → zero volume →
    out of order (beyond ``tol``) → duplicate (key = seq, else (ts, price, volume); the
    last ``window``..2×``window`` keys of a (venue, symbol) remembered)."""

    def __init__(self, window: int, tol: int) -> None:
        self.window, self.tol = window, tol
        self.last: dict[tuple[str, str], int] = {}
        self.recent: dict[tuple[str, str], set[object]] = {}
        self.old: dict[tuple[str, str], set[object]] = {}
        self.rejected = dict.fromkeys(REASONS, 0)

    def ingest(self, batch: list[Any], venue: str, now: int) -> list[Tick]:
        out = []
        for t in batch:
            if not (type(t) is Tick and type(t.symbol) is str and t.symbol
                    and type(t.venue) is str and type(t.ts_ns) is int
                    and type(t.price) in (int, float) and type(t.volume) in (int, float)
                    and type(t.seq) is int):
                self.rejected["malformed"] += 1
                continue
            p, v = float(t.price), float(t.volume)
            if not 0.0 < p < math.inf:
                self.rejected["bad_price"] += 1
                continue
            if not 0.0 <= v < math.inf:
                self.rejected["bad_volume"] += 1
                continue
            if v == 0.0:
                self.rejected["zero_volume"] += 1
                continue
            key = (t.venue or venue, t.symbol)
            last = self.last.get(key, -(1 << 62))
            if t.ts_ns < last - self.tol:
                self.rejected["out_of_order"] += 1
                continue
            dk: object = t.seq if t.seq else (t.ts_ns, p, v)
            recent = self.recent.setdefault(key, set())
            if dk in recent or dk in self.old.get(key, set()):
                self.rejected["duplicate"] += 1
                continue
            recent.add(dk)
            if len(recent) >= self.window:
                self.old[key], self.recent[key] = recent, set()
            self.last[key] = max(last, t.ts_ns)
            out.append(Tick(key[0], t.symbol, t.ts_ns, now, p, v, t.seq))
        return out


price = st.one_of(st.sampled_from([100.0, 101.0, 102.5]), st.floats(-5, 200),
                  st.sampled_from([0.0, math.nan, math.inf, -math.inf]))
volume = st.one_of(st.sampled_from([1.0, 2.0]), st.floats(-1, 5),
                   st.sampled_from([0.0, math.nan, math.inf]))
good = st.builds(lambda v, s, ts, p, q, seq: Tick(v, s, T0 + ts, 0, p, q, seq),
                 st.sampled_from(["krx", "", "nxt"]), st.sampled_from(SYMS),
                 st.integers(-5, 40), price, volume, st.integers(0, 12))
bad = st.sampled_from([None, "tick", Tick("krx", "A", T0, 0, "1", 1.0),  # type: ignore[arg-type]
                       Tick("krx", "A", float(T0), 0, 1.0, 1.0),  # type: ignore[arg-type]
                       Tick("krx", "A", T0, 0, True, 1.0),  # type: ignore[arg-type]
                       Tick("krx", 7, T0, 0, 1.0, 1.0)])  # type: ignore[arg-type]
batches = st.lists(st.lists(st.one_of(good, good, good, bad), max_size=25), max_size=12)


def run_both(bs: list[list[Any]], window: int, tol: int, as_columns: bool) -> None:
    clock = FakeClock(T0)
    got: list[list[Tick]] = []
    col = Collector([Feed("krx", [], venue="krx")], lambda b: got.append(list(b)), clock,
                    dedup_window=window, out_of_order_tolerance_s=tol / NS)
    ref = Reference(window, tol)
    for k, batch in enumerate(bs):
        clock.set(T0 + k)
        if as_columns:
            # a columnar feed carries one venue and well-typed values only
            ok = [t for t in batch if isinstance(t, Tick) and t.venue == "krx"
                  and type(t.ts_ns) is int and type(t.price) is float
                  and type(t.symbol) is str and t.symbol in SYMS]
            cols = TickColumns("krx", SYMS, [SYMS.index(t.symbol) for t in ok],
                               [t.ts_ns for t in ok], [t.price for t in ok],
                               [float(t.volume) for t in ok], [t.seq for t in ok])
            want = ref.ingest([Tick("krx", t.symbol, t.ts_ns, 0, t.price, float(t.volume),
                                    t.seq) for t in ok], "krx", clock.now_ns())
            assert list(col.ingest("krx", cols)) == want, k
            continue
        want = ref.ingest(batch, "krx", clock.now_ns())
        assert list(col.ingest("krx", batch)) == want, k
    assert col.status()[0]["rejected"] == ref.rejected


@settings(max_examples=200, deadline=None)
@given(batches, st.integers(1, 6), st.sampled_from([0, 3 * NS]))
def test_columnar_validation_equals_the_per_tick_rules(bs: list[list[Any]], window: int,
                                                        tol: int) -> None:
    run_both(bs, window, tol, as_columns=False)


@settings(max_examples=120, deadline=None)
@given(batches, st.integers(1, 6))
def test_tick_columns_are_validated_like_ticks(bs: list[list[Any]], window: int) -> None:
    run_both(bs, window, 0, as_columns=True)


def test_the_default_window_rotates_exactly_like_two_generations() -> None:
    rng = np.random.default_rng(3)
    bs = [[Tick("krx", "A", T0 + int(rng.integers(0, 2_000)), 0, 100.0 + float(rng.integers(0, 3)),
                1.0, int(rng.integers(0, 700))) for _ in range(500)] for _ in range(8)]
    run_both(bs, 256, 0, as_columns=False)


def test_a_malformed_columns_batch_is_rejected_whole() -> None:
    col = Collector([Feed("krx", [], venue="krx")], lambda b: None, FakeClock(T0))
    bad = TickColumns("krx", ("A",), [0, 0], [T0], [1.0, 2.0], [1.0, 1.0])   # ts too short
    assert list(col.ingest("krx", bad)) == []
    out_of_range = TickColumns("krx", ("A",), [0, 3, -1], [T0, T0 + 1, T0 + 2],
                               [1.0, 2.0, 3.0], [1.0, 1.0, 1.0])
    assert [t.ts_ns for t in col.ingest("krx", out_of_range)] == [T0]
    rej = col.status()[0]["rejected"]
    assert rej["malformed"] == 4
