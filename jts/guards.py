"""Per-strategy state the live engine keeps beside its evaluators: ``[stops]`` and the
sizing methods that need history (``atr_target``, ``kelly``).

:class:`StrategyGuards` is owned by :class:`jts.engine.StrategyEngine`. The engine tells
it about closed bars (ATR), fills (Kelly returns, stop entry and exit) and finished orders
(re-arming a stop whose closing order did not flatten the position); it answers the size
of an entry and, for trade prints, which held positions crossed a stop level. The sizing
follows the backtest kernel's formulas (``kernel._size``), so a replay over stored bars
sizes exactly as ``jts backtest`` does; stops trigger on the same levels, on prints.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from jts.live_sizing import AtrTracker, KellyBook
from jts.money import to_decimal
from jts.stops import StopBook, StopHit, StopRule
from jts.types import Bar, Fill, Tick

ZERO = Decimal(0)


class StrategyGuards:
    def __init__(self, strategies: Sequence[Any]) -> None:
        self.rules: dict[str, StopRule] = {}
        self.atr: dict[str, AtrTracker] = {}
        self.kelly: dict[str, KellyBook] = {}
        self.stops = StopBook()
        self.stop_exits: dict[str, int] = {}    # closing orders sent on a stop, per strategy
        for cs in strategies:
            name = str(cs.name)
            rule = StopRule.of(getattr(cs, "stops", None))
            if rule is not None:
                self.rules[name] = rule
            sizing: Any = getattr(cs, "sizing", None)
            method = getattr(sizing, "method", "")
            if method == "atr_target":
                self.atr[name] = AtrTracker(int(sizing.atr_period))
            elif method == "kelly":
                self.kelly[name] = KellyBook(float(sizing.value),
                                             float(sizing.max_fraction))

    @property
    def watching(self) -> bool:
        """Whether any position is under a stop (the tick path can skip us otherwise)."""
        return len(self.stops) > 0

    def on_bars(self, strategy: str, bars: Iterable[Bar]) -> None:
        tracker = self.atr.get(strategy)
        if tracker is not None:
            for b in bars:
                tracker.update(b.symbol, b.high, b.low, b.close)

    def size(self, strategy: str, symbol: str, price: float, equity: Decimal, value: float
             ) -> Decimal | None:
        """Whole shares for an entry, or None when the method is not one of ours."""
        if strategy in self.atr:
            a = self.atr[strategy].value(symbol)
            if not a > 0.0 or not math.isfinite(a):
                return ZERO
            q = float(equity) * value / 100.0 / a
        elif strategy in self.kelly:
            q = float(equity) * self.kelly[strategy].fraction() / price
        else:
            return None
        if not math.isfinite(q) or q <= 0:
            return ZERO
        return to_decimal(math.floor(q)).to_integral_value(ROUND_FLOOR)

    def on_fill(self, fill: Fill, before: Decimal, after: Decimal, entry_price: float) -> None:
        name = fill.strategy
        book = self.kelly.get(name)
        if book is not None:
            opening = before == 0 or (before > 0) == (fill.side.sign > 0)
            book.on_fill(fill.symbol, opening, after > 0 or before > 0,
                         float(fill.quantity * fill.price), float(fill.fees), after == 0)
        rule = self.rules.get(name)
        if rule is None:
            return
        if after == 0:
            self.stops.close(name, fill.symbol)
        elif before == 0:
            self.stops.open(name, fill.symbol, rule, long=after > 0, entry=entry_price)

    def on_order_done(self, strategy: str, symbol: str, position: Decimal) -> None:
        if position != 0:
            self.stops.rearm(strategy, symbol)

    def on_ticks(self, ticks: Iterable[Tick]) -> list[StopHit]:
        return self.stops.on_prints(ticks)

    def count_exit(self, strategy: str) -> None:
        self.stop_exits[strategy] = self.stop_exits.get(strategy, 0) + 1

    def stop_exits_of(self, strategy: str) -> int:
        return self.stop_exits.get(strategy, 0)
