"""Float estimates, with proven error bounds, of the portfolio's unrealized P&L and exposure,
read straight from the last-price array (:class:`jts.prices.LastPrices`).

The risk gate asks "is the daily loss limit, or the exposure limit, anywhere near?" on every
intent. The exact answer (:class:`jts.portfolio.Portfolio`'s Decimal running sums) costs
~5–10 µs per held position whose mark moved since the last read; at a bar close that is every
traded position at once. The estimate costs a few numpy operations over the open positions,
whatever moved. The gate decides from it only when the exact value is certainly on the safe
side of the limit (the estimate is further from it than its error bound) and falls back to the
exact sums otherwise, so every decision is the one the exact sums give.

Error bound: a term ``(P - A)·Q`` (P the mark as the exact sums read it — the Decimal of the
float's shortest repr, within half an ulp of the float —, A the average price, Q the
quantity) computed in float64 from ``float(A)``, ``float(Q)`` and the float mark is off by at
most ``4u·|Q|(|P| + |A|)`` (u = 2⁻⁵³), and a sum of n terms adds at most ``n·u`` times the sum
of their magnitudes; so ``(n + 8)·2u·Σ|Q|(|P| + |A|)`` bounds the total error (a factor of
two to spare). The exposure ``Σ|Q|·P`` (A where there is no mark yet) likewise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, NamedTuple

import numba as nb
import numpy as np

_TWO_U = 2.0 ** -52          # 2u, u = the unit roundoff of float64


class Estimate(NamedTuple):
    """Float estimates with their error bounds, and the exact count of open positions."""

    unrealized: float
    unrealized_bound: float
    exposure: float
    exposure_bound: float
    open: int

    def unrealized_above(self, limit: Decimal) -> bool:
        """Whether the exact unrealized P&L is certainly > ``limit``."""
        return surely_above(self.unrealized, self.unrealized_bound, limit)

    def exposure_below(self, limit: Decimal) -> bool:
        """Whether the exact exposure is certainly < ``limit``."""
        return surely_below(self.exposure, self.exposure_bound, limit)


@nb.njit(cache=True)
def _sums(px_all, rows, qty, avg, n):  # type: ignore[no-untyped-def]
    """One pass over the first ``n`` slots: (unrealized, exposure, their magnitude sums,
    open positions, usable)."""
    unreal = expo = mag_u = mag_e = 0.0
    n_open = 0
    for k in range(n):
        q = qty[k]
        if q == 0.0:
            continue
        n_open += 1
        r = rows[k]
        a = avg[k]
        if r < 0 or not (math.isfinite(q) and math.isfinite(a)):
            return 0.0, 0.0, 0.0, 0.0, n_open, False
        p = px_all[r]
        aq = abs(q)
        if math.isnan(p):                   # no mark yet: no P&L, exposure at cost
            expo += aq * a
            mag_e += aq * abs(a)
            mag_u += aq * abs(a)
        else:
            unreal += (p - a) * q
            expo += aq * p
            mag_u += aq * (abs(p) + abs(a))
            mag_e += aq * abs(p)
    return unreal, expo, mag_u, mag_e, n_open, True


class MarkEstimate:
    """Every symbol the portfolio ever held, as slots of arrays (row of the price index,
    float quantity and average price); a fill updates its symbol's slot (``touch``)."""

    def __init__(self) -> None:
        self._slot: dict[str, int] = {}
        self._dirty: set[str] = set()
        self._holdings: object = None
        self.rows = np.zeros(16, np.int64)
        self.qty = np.zeros(16)
        self.avg = np.zeros(16)

    def touch(self, symbol: str) -> None:
        """``symbol``'s holding changed (a fill)."""
        self._dirty.add(symbol)

    def _update(self, holdings: Mapping[str, Any], index: Mapping[str, int]) -> None:
        if self._holdings is not holdings:           # a new book: every holding again
            self._holdings = holdings
            self._slot.clear()
            self._dirty = set(holdings)
        for sym in self._dirty:
            h = holdings.get(sym)
            if h is None:
                continue
            k = self._slot.get(sym)
            if k is None:
                k = self._slot[sym] = len(self._slot)
                if k >= len(self.qty):
                    self.rows = np.concatenate([self.rows, np.zeros_like(self.rows)])
                    self.qty = np.concatenate([self.qty, np.zeros_like(self.qty)])
                    self.avg = np.concatenate([self.avg, np.zeros_like(self.avg)])
                self.rows[k] = index.get(sym, -1)
            self.qty[k] = float(h.quantity)
            self.avg[k] = float(h.avg_price)
        self._dirty.clear()

    def estimate(self, holdings: Mapping[str, Any], marks: object) -> Estimate | None:
        """The estimate, or None when the marks are not a price array or a held symbol is
        outside it."""
        px_all = getattr(marks, "px", None)
        index = getattr(marks, "index", None)
        if px_all is None or index is None:
            return None
        if self._dirty or self._holdings is not holdings:
            self._update(holdings, index)
        unreal, expo, mag_u, mag_e, n_open, ok = _sums(px_all, self.rows, self.qty, self.avg,
                                                       len(self._slot))
        if not ok:
            return None
        scale = (n_open + 8) * _TWO_U * 1.01
        u_bound, e_bound = scale * mag_u + 1e-300, scale * mag_e + 1e-300
        if not (math.isfinite(unreal) and math.isfinite(expo) and math.isfinite(u_bound)
                and math.isfinite(e_bound)):
            return None
        return Estimate(unreal, u_bound, expo, e_bound, n_open)


def surely_above(value: float, bound: float, limit: Decimal) -> bool:
    """Whether the exact quantity estimated by ``value ± bound`` is certainly > ``limit``."""
    lim = float(limit)
    return value - bound > lim + abs(lim) * _TWO_U


def surely_below(value: float, bound: float, limit: Decimal) -> bool:
    """Whether the exact quantity estimated by ``value ± bound`` is certainly < ``limit``."""
    lim = float(limit)
    return value + bound < lim - abs(lim) * _TWO_U
