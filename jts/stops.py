"""Live protective exits: a strategy's ``[stops]`` watched on every trade print.

The backtester triggers stops inside a bar from its high and low (``kernel._stops``); live,
the same levels are checked against each print of a symbol a strategy holds:

* stop-loss at entry × (1 − stop_loss_pct%) for a long (× (1 + …) for a short),
* trailing stop at the best print since entry × (1 − trailing_pct%), the tighter of the two
  winning, checked before
* take-profit at entry × (1 + take_profit_pct%).

A hit fires once: the engine turns it into a closing market order, which the risk gate lets
through in every trading state (closing orders are never blocked). If that order ends
without flattening the position (rejected, cancelled), :meth:`StopBook.rearm` arms the
stop again. The book holds only open positions, so symbols nobody holds cost one dict
lookup per print.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from jts.types import Tick


@dataclass(frozen=True)
class StopRule:
    stop_loss: float = math.nan       # fractions (0.05 = 5 %); NaN = not set
    take_profit: float = math.nan
    trailing: float = math.nan

    @classmethod
    def of(cls, stops: Any) -> StopRule | None:
        """From a strategy's ``[stops]`` table; None when it sets nothing."""
        def pct(name: str) -> float:
            v = getattr(stops, name, None)
            return math.nan if v is None else float(v) / 100.0
        rule = cls(pct("stop_loss_pct"), pct("take_profit_pct"), pct("trailing_pct"))
        return None if rule.empty else rule

    @property
    def empty(self) -> bool:
        return all(math.isnan(x) for x in (self.stop_loss, self.take_profit, self.trailing))


@dataclass
class _Held:
    strategy: str
    rule: StopRule
    long: bool
    entry: float
    peak: float
    fired: bool = False


@dataclass(frozen=True)
class StopHit:
    strategy: str
    symbol: str
    reason: str          # "stop_loss" | "take_profit" | "trailing_stop"
    price: float         # the print that crossed the level
    level: float
    ts_ns: int           # that print's venue time


class StopBook:
    def __init__(self) -> None:
        self._by_symbol: dict[str, list[_Held]] = {}
        self.version = 0        # moves whenever the set of watched symbols may have changed

    def symbols(self) -> Collection[str]:
        """The symbols with a position under a stop."""
        return self._by_symbol.keys()

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_symbol.values())

    def open(self, strategy: str, symbol: str, rule: StopRule, *, long: bool,
             entry: float) -> None:
        """A position opened (or its entry price changed): watch it."""
        self.close(strategy, symbol)
        self.version += 1
        self._by_symbol.setdefault(symbol, []).append(
            _Held(strategy, rule, long, entry, entry))

    def close(self, strategy: str, symbol: str) -> None:
        held = self._by_symbol.get(symbol)
        if not held:
            return
        rest = [h for h in held if h.strategy != strategy]
        self.version += 1
        if rest:
            self._by_symbol[symbol] = rest
        else:
            del self._by_symbol[symbol]

    def rearm(self, strategy: str, symbol: str) -> None:
        for h in self._by_symbol.get(symbol, ()):
            if h.strategy == strategy:
                h.fired = False

    def on_prints(self, ticks: Iterable[Tick]) -> list[StopHit]:
        book = self._by_symbol
        if not book:
            return []
        hits: list[StopHit] = []
        for t in ticks:
            held = book.get(t.symbol)
            if held is None:
                continue
            for h in held:
                if h.fired:
                    continue
                hit = _check(h, t.price)
                if hit is not None:
                    h.fired = True
                    hits.append(StopHit(h.strategy, t.symbol, hit[0], t.price, hit[1], t.ts_ns))
                elif h.long:
                    h.peak = max(h.peak, t.price)
                else:
                    h.peak = min(h.peak, t.price)
        return hits


def _check(h: _Held, px: float) -> tuple[str, float] | None:
    r, e = h.rule, h.entry
    sign = 1.0 if h.long else -1.0
    level, reason = math.nan, ""
    if not math.isnan(r.stop_loss):
        level, reason = e * (1.0 - sign * r.stop_loss), "stop_loss"
    if not math.isnan(r.trailing):
        tl = h.peak * (1.0 - sign * r.trailing)
        if math.isnan(level) or (tl > level if h.long else tl < level):
            level, reason = tl, "trailing_stop"
    if not math.isnan(level) and (px <= level if h.long else px >= level):
        return reason, level
    if not math.isnan(r.take_profit):
        tp = e * (1.0 + sign * r.take_profit)
        if px >= tp if h.long else px <= tp:
            return "take_profit", tp
    return None
