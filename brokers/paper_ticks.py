"""The paper broker's batched market-data path: a tick batch folded into the broker's last
prices and daily price-limit bases with the same result as one ``on_tick`` per print, but
Decimal work only where it matters (see ``PaperBroker.on_ticks``): :func:`fold_ticks` walks a
``Tick`` list; a batch with columns over a symbol index is folded by a numba kernel into
:class:`ColumnarPrints` arrays, stopping only at prints of symbols with open orders."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from decimal import Decimal

import numba as nb
import numpy as np

from jts.calendar import kst_date
from jts.clock import NS
from jts.money import to_decimal
from jts.tick_batch import names_of
from jts.types import Tick

_INF = math.inf
_DAY = 86_400 * NS
_KST_OFF = 9 * 3_600 * NS
_EPOCH_ORD = date(1970, 1, 1).toordinal()


def fold_ticks(ticks: Iterable[Tick], waiting: Mapping[str, list[str]],
               day_base: dict[str, tuple[date, Decimal]], last_px: dict[str, float],
               on_tick: Callable[[Tick], None]) -> None:
    """A symbol with open orders in ``waiting`` (or a print ``on_tick`` ignores or rejects)
    goes through ``on_tick``, after what the batch buffered so far, so the order of effects
    is unchanged. For the others the last print is left in ``last_px`` as a float (converted
    when an order needs it) and the first print of a new KST day becomes the symbol's
    ``day_base``, converted once; the KST day is computed once per day range."""
    first: dict[str, tuple[date, float]] = {}     # a new day's first print, per symbol
    seen: dict[str, date] = {}                    # day whose first print was handled
    day = date.min
    day_lo = day_hi = 0
    for t in ticks:
        sym = t.symbol
        p = t.price
        if waiting.get(sym) or not 0.0 < p < _INF:
            _set_bases(day_base, first)
            first = {}
            seen.pop(sym, None)
            on_tick(t)
            continue
        ts = t.ts_ns
        if not day_lo <= ts < day_hi:              # another KST day: once per batch, usually
            day = kst_date(ts)
            day_lo = (ts + _KST_OFF) // _DAY * _DAY - _KST_OFF
            day_hi = day_lo + _DAY
        if seen.get(sym) is not day:               # the symbol's first print of this day
            seen[sym] = day
            f = first.get(sym)
            b = day_base.get(sym)
            current = f[0] if f is not None else b[0] if b is not None else None
            if current != day:
                first[sym] = (day, p)
        last_px[sym] = p
    _set_bases(day_base, first)


def _set_bases(day_base: dict[str, tuple[date, Decimal]],
               first: dict[str, tuple[date, float]]) -> None:
    for sym, (d, p) in first.items():
        day_base[sym] = (d, to_decimal(p))


NO_DAY = np.iinfo(np.int64).min


@nb.njit(cache=True)
def fold_columns(sym, ts, px, start, stop_at, last_px, fresh, base_day, base_px,  # type: ignore[no-untyped-def]
                 base_fresh):
    """Fold prints ``start..`` into the arrays until one needs ``on_tick``: a symbol
    outside the index, one with open orders (``stop_at``, one extra False at the end for
    row -1), or a price that is not positive and finite. Returns that position (or the
    length). A print of a new KST day becomes its symbol's day base."""
    for i in range(start, sym.shape[0]):
        s = sym[i]
        p = px[i]
        if s < 0 or stop_at[s] or not (p > 0.0 and p < np.inf):
            return i
        day = (ts[i] + _KST_OFF) // _DAY
        if base_day[s] != day:
            base_day[s] = day
            base_px[s] = p
            base_fresh[s] = True
        last_px[s] = p
        fresh[s] = True
    return sym.shape[0]


class ColumnarPrints:
    """The paper broker's last prints and day bases of an index's symbols as arrays, fed
    from a tick batch's columns by :func:`fold_columns`. The broker's dicts stay the truth:
    :meth:`flush` moves a symbol's newer array state into them before anyone reads them,
    and :meth:`synced` records what ``on_tick`` left there."""

    def __init__(self, index: dict[str, int], day_base: dict[str, tuple[date, Decimal]]
                 ) -> None:
        n = len(index)
        self.index = index
        self.names = names_of(index)
        self.px = np.full(n, np.nan)
        self.fresh = np.zeros(n, np.bool_)
        self.base_day = np.full(n, NO_DAY, np.int64)
        self.base_px = np.full(n, np.nan)
        self.base_fresh = np.zeros(n, np.bool_)
        for sym, (d, _) in day_base.items():
            row = index.get(sym)
            if row is not None:
                self.base_day[row] = d.toordinal() - _EPOCH_ORD

    def fold(self, sym: np.ndarray, ts: np.ndarray, px: np.ndarray, start: int,
             stop_at: np.ndarray) -> int:
        return int(fold_columns(sym, ts, px, start, stop_at, self.px, self.fresh,
                                self.base_day, self.base_px, self.base_fresh))

    def flush(self, symbol: str, day_base: dict[str, tuple[date, Decimal]],
              last_px: dict[str, float]) -> None:
        i = self.index.get(symbol)
        if i is None:
            return
        if self.fresh[i]:
            self.fresh[i] = False
            last_px[symbol] = float(self.px[i])
        if self.base_fresh[i]:
            self.base_fresh[i] = False
            day = date.fromordinal(int(self.base_day[i]) + _EPOCH_ORD)
            day_base[symbol] = (day, to_decimal(float(self.base_px[i])))

    def flush_all(self, day_base: dict[str, tuple[date, Decimal]],
                  last_px: dict[str, float]) -> None:
        for i in np.flatnonzero(self.fresh | self.base_fresh).tolist():
            self.flush(self.names[i], day_base, last_px)

    def synced(self, symbol: str, day_base: dict[str, tuple[date, Decimal]]) -> None:
        """``on_tick`` just handled ``symbol``: its dicts are current."""
        i = self.index.get(symbol)
        if i is not None:
            self.fresh[i] = False
            got = day_base.get(symbol)
            if got is not None:
                self.base_day[i] = got[0].toordinal() - _EPOCH_ORD
