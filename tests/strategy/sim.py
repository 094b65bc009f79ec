"""Test helpers: synthetic bars and a minimal long-only position simulator driving both
evaluators the same way (decide on bar t's close with the state in force before it)."""

from __future__ import annotations

import numpy as np

from jts.strategy import CompiledStrategy
from jts.strategy.kernel import eval_bar


def bars(n: int, seed: int = 0, nan_head: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = 100 + np.cumsum(rng.normal(0, 1, n))
    o = c + rng.normal(0, 0.5, n)
    h = np.maximum(o, c) + np.abs(rng.normal(0, 0.5, n))
    lo = np.minimum(o, c) - np.abs(rng.normal(0, 0.5, n))
    v = rng.uniform(1000, 5000, n) * np.where(rng.random(n) < 0.1, 4, 1)
    out = np.stack([o, h, lo, c, v, v * c], axis=1)
    out[:nan_head] = np.nan
    return out


def simulate_stream(cs: CompiledStrategy, data: np.ndarray) -> tuple[list[int], list[int]]:
    ev = cs.stream(1)
    pos, held, ep = 0.0, 0, float("nan")
    entries, exits = [], []
    for t, row in enumerate(data):
        e, x = ev.update(0, *row, position=pos, bars_held=held, entry_price=ep)
        if pos:
            held += 1
        if pos == 0 and e:
            pos, held, ep = 1.0, 0, float(row[3])
            entries.append(t)
        elif pos != 0 and x:
            pos, held, ep = 0.0, 0, float("nan")
            exits.append(t)
    return entries, exits


def simulate_vector(cs: CompiledStrategy, data: np.ndarray) -> tuple[list[int], list[int]]:
    vs = cs.vector(*(data[:, j] for j in range(6)))
    pos, held, ep = 0.0, 0, float("nan")
    entries, exits = [], []
    for t in range(data.shape[0]):
        e, x = eval_bar(vs.ops, vs.tail, vs.regs, t, pos, held, ep, vs.entry_reg, vs.exit_reg)
        if pos:
            held += 1
        if pos == 0 and e:
            pos, held, ep = 1.0, 0, float(data[t, 3])
            entries.append(t)
        elif pos != 0 and x:
            pos, held, ep = 0.0, 0, float("nan")
            exits.append(t)
    return entries, exits
