"""The detector against the bundled simulated market on seeded runs: it must flag the injected
surges (recall), flag little else (precision), and stay silent in a market without surges.

Ground truth is the simulator's own surge state (``SimMarket._surge_left``), sampled after
every batch; a candidate is a true positive when its symbol was surging within a minute of
the candidate's timestamp.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jts.sim import SimMarket
from jts.sim.profile import SESSION_NS
from jts.surge import SurgeCandidate, SurgeConfig, SurgeDetector

NS = 1_000_000_000
V0 = (1_750_000_000 * NS // SESSION_NS + 1) * SESSION_NS + 60 * 60 * NS   # virtual minute 60
TOL = 60 * NS


@dataclass
class Run:
    surges: list[tuple[int, int, int]]        # (symbol index, start ns, end ns)
    cands: list[SurgeCandidate]
    det: SurgeDetector
    end: int


def run(n_sym: int, hours: float, seed: int, rate: float, batch_s: int = 5) -> Run:
    m = SimMarket(symbols=n_sym, seed=seed, surges_per_symbol_hour=rate, max_catchup_s=1e9)
    det = SurgeDetector(m.symbols, SurgeConfig(session="virtual"))
    det.warm_up(m.history(390, V0))                       # one whole virtual session
    m.advance_to(V0)
    prev = np.zeros(n_sym, dtype=bool)
    opened: dict[int, int] = {}
    surges: list[tuple[int, int, int]] = []
    cands: list[SurgeCandidate] = []
    now, end = V0, V0 + int(hours * 3_600 * NS)
    while now < end:
        now += batch_s * NS
        ticks = m.advance_to(now)
        active = m._surge_left > 0
        for j in np.flatnonzero(active & ~prev).tolist():
            opened[j] = now - batch_s * NS
        for j in np.flatnonzero(prev & ~active).tolist():
            surges.append((j, opened.pop(j), now))
        prev = active
        cands += det.update_ticks(ticks)
    surges += [(j, s0, end) for j, s0 in opened.items()]
    return Run(surges, cands, det, end)


def test_flags_injected_surges_with_high_precision_and_recall() -> None:
    r = run(n_sym=120, hours=2.0, seed=11, rate=0.15)
    idx = r.det.index
    hit: set[int] = set()
    true_pos = 0
    delays: list[float] = []
    for c in r.cands:
        j = idx[c.symbol]
        match = [k for k, (sj, a, b) in enumerate(r.surges) if sj == j and a - TOL <= c.ts_ns
                 <= b + TOL]
        if match:
            true_pos += 1
            if match[0] not in hit:
                delays.append((c.ts_ns - r.surges[match[0]][1]) / NS)
            hit.update(match)
    judged = [k for k, (_, a, _) in enumerate(r.surges) if a < r.end - 150 * NS]
    precision = true_pos / len(r.cands)
    recall = len(hit.intersection(judged)) / len(judged)
    assert len(judged) >= 20                               # enough surges to mean something
    assert precision >= 0.9, (precision, [c for c in r.cands if idx[c.symbol] not in hit])
    assert recall >= 0.85, recall
    assert float(np.median(delays)) <= 90.0                # flagged within a minute and a half
    # each surge is reported once or twice (cool-down), never per tick
    per_symbol = np.bincount([idx[c.symbol] for c in r.cands], minlength=120)
    assert per_symbol.max() <= 4


def test_quiet_market_stays_quiet() -> None:
    r = run(n_sym=120, hours=1.0, seed=12, rate=0.0)
    assert r.surges == []
    assert len(r.cands) <= 1, r.cands
    st = r.det.status()
    assert st["ticks"] > 50_000 and sum(st["dropped"].values()) == 0


def test_batch_size_barely_matters() -> None:
    """The simulator's prints do not depend on how often it is woken, so batching at 1 s or
    at 20 s must flag (nearly) the same surges; only the moment of detection may differ."""
    fine = run(n_sym=60, hours=1.0, seed=13, rate=0.3, batch_s=1)
    coarse = run(n_sym=60, hours=1.0, seed=13, rate=0.3, batch_s=20)
    assert fine.surges and len(fine.cands) >= 8
    a = {c.symbol for c in fine.cands}
    b = {c.symbol for c in coarse.cands}
    assert len(a & b) / len(a | b) >= 0.85, (a ^ b)
