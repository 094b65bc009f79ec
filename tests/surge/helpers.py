"""Builders for the surge tests: flat warm-up histories and deterministic tick streams."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from jts.surge import SurgeCandidate, SurgeDetector
from jts.types import Bar

NS = 1_000_000_000
MIN = 60 * NS
DAY0 = (1_750_000_000 // 86_400 + 1) * 86_400 * NS     # 00:00 UTC = 09:00 KST (KRX open)


def names(n: int) -> list[str]:
    return [f"A{i:04d}" for i in range(n)]


def flat_history(symbols: list[str], end_ns: int, minutes: int = 600, vol: float = 600.0,
                 price: float = 10_000.0, noise: float = 0.2, seed: int = 0,
                 shape: dict[int, float] | None = None) -> dict[str, list[Bar]]:
    """1-minute bars ending at ``end_ns``: volume ``vol`` × lognormal(noise) × the optional
    per-KRX-minute multiplier ``shape``; prices flat with a 0.1 % high wick."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[Bar]] = {}
    for s in symbols:
        bars = []
        for k in range(minutes):
            t = end_ns - (minutes - k) * MIN
            mult = (shape or {}).get(int((t % (86_400 * NS)) // MIN), 1.0)
            v = float(round(vol * mult * np.exp(noise * rng.standard_normal())))
            bars.append(Bar(s, "1m", t, price, price * 1.001, price * 0.999, price, v, v * price))
        out[s] = bars
    return out


@dataclass
class Stream:
    """Accumulates ticks (one symbol at a time) and plays them through a detector in batches
    of ``batch_s`` market seconds, collecting every candidate."""

    det: SurgeDetector
    rows: list[tuple[int, int, float, float]] = field(default_factory=list)
    got: list[SurgeCandidate] = field(default_factory=list)

    def trade(self, sym: int, t0: int, seconds: int, qty: float, p0: float,
              p1: float | None = None, per_s: int = 1) -> None:
        """``per_s`` prints a second of ``qty`` shares from ``t0``; price moves linearly from
        ``p0`` to ``p1``."""
        n = seconds * per_s
        p1 = p0 if p1 is None else p1
        for k in range(n):
            t = t0 + (k * NS) // per_s + 1
            self.rows.append((sym, t, p0 + (p1 - p0) * k / max(n - 1, 1), qty))

    def play(self, batch_s: int = 5) -> list[SurgeCandidate]:
        rows = sorted(self.rows, key=lambda r: r[1])
        self.rows = []
        new: list[SurgeCandidate] = []
        i = 0
        while i < len(rows):
            end = (rows[i][1] // (batch_s * NS) + 1) * batch_s * NS
            j = i
            while j < len(rows) and rows[j][1] < end:
                j += 1
            chunk = rows[i:j]
            new += self.det.update(np.array([r[0] for r in chunk]), np.array([r[1] for r in chunk]),
                                   np.array([r[2] for r in chunk]), np.array([r[3] for r in chunk]))
            i = j
        self.got += new
        return new
