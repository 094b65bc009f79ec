"""The paper broker's batched market-data path: a tick batch folded into the broker's last
prices and daily price-limit bases with the same result as one ``on_tick`` per print, but
Decimal work only where it matters (see ``PaperBroker.on_ticks``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from decimal import Decimal

from jts.calendar import kst_date
from jts.clock import NS
from jts.money import to_decimal
from jts.types import Tick

_INF = math.inf
_DAY = 86_400 * NS
_KST_OFF = 9 * 3_600 * NS


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
