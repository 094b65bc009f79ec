"""Properties over arbitrary (often hostile) tick batches: never a crash, every tick counted,
candidates ranked, and no symbol re-emitted inside its cool-down (market time)."""

from __future__ import annotations

import itertools

import msgspec
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from jts.surge import SurgeConfig, SurgeDetector
from tests.surge.helpers import MIN, NS, flat_history, names

N = 5
T = (1_750_000_000 // 86_400 + 1) * 86_400 * NS + 120 * MIN
COOL = 120
CFG = msgspec.convert({"session": "24h", "cooldown_s": COOL, "volume_z_min": 1.0,
                       "require_price_move": False}, SurgeConfig)
HIST = flat_history(names(N), T, minutes=60)

price = st.one_of(st.floats(9_000, 11_000), st.sampled_from([0.0, -5.0, float("nan"),
                                                              float("inf")]))
volume = st.one_of(st.floats(1, 5_000), st.sampled_from([0.0, -1.0, float("nan")]))
tick = st.tuples(st.integers(-1, N), st.integers(-30, 600), price, volume)
batches = st.lists(st.lists(tick, max_size=40), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(batches)
def test_hostile_batches(bs: list[list[tuple[int, int, float, float]]]) -> None:
    det = SurgeDetector(names(N), CFG)
    det.warm_up(HIST)
    emitted: dict[str, list[int]] = {}
    total = 0
    for b_no, batch in enumerate(bs):
        base = T + b_no * 60 * NS
        rows = [(s, base + dt * NS, p, v) for s, dt, p, v in batch]
        cols = [np.array(c) for c in zip(*rows, strict=True)] if rows else [[], [], [], []]
        got = det.update(*cols)
        total += len(rows)
        assert all(a.score >= b.score for a, b in itertools.pairwise(got))
        assert len({c.symbol for c in got}) == len(got)
        for c in got:
            assert c.symbol in det.index and c.reasons and c.reasons[0].startswith("volume_z=")
            emitted.setdefault(c.symbol, []).append(c.ts_ns)
    status = det.status()
    assert status["ticks"] == total
    for times in emitted.values():
        assert all(b - a >= COOL * NS for a, b in itertools.pairwise(times))
