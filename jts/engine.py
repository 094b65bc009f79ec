"""The live strategy engine: closed bars in, order intents out.

Each strategy runs its compiled streaming evaluator (the same compiled formulas the
backtester vectorizes) over its universe, one batched call per bar batch. The engine keeps
each strategy's own position state (quantity, entry price, bars held) from the fills tagged
with its name, sizes entries, and never sends a second order for a (strategy, symbol) while
one is in flight. A strategy that raises is disabled and reported; the others go on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import numpy as np
import structlog

from jts.money import to_decimal
from jts.portfolio import Portfolio
from jts.types import Bar, Fill, OrderIntent, Side

log = structlog.get_logger(__name__)
ZERO = Decimal(0)


@dataclass
class _Slot:
    position: Decimal = ZERO
    entry_price: float = math.nan
    bars_held: int = 0
    pending: bool = False


@dataclass
class StrategyRun:
    compiled: Any                       # jts.strategy.CompiledStrategy
    symbols: list[str]
    evaluator: Any
    index: dict[str, int]
    slots: list[_Slot]
    enabled: bool = True
    surge_only: bool = False            # universe "surge": enter only on fresh candidates
    error: str = ""
    bars: int = 0
    entries: int = 0
    exits: int = 0
    capped: int = 0                     # entries skipped at the strategy's max_positions
    intents: list[OrderIntent] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.compiled.name)


def resolve_universe(universe: object, feed_symbols: Sequence[str]) -> list[str]:
    if isinstance(universe, str):
        if universe in ("all", "*", "surge"):
            return list(feed_symbols)
        return []    # markets (KOSPI200, …) need index membership data: not bundled yet
    carried = set(feed_symbols)
    return [s for s in universe if s in carried]  # type: ignore[attr-defined]


class StrategyEngine:
    def __init__(self, strategies: Sequence[Any], feed_symbols: Sequence[str],
                 portfolio: Portfolio) -> None:
        self.portfolio = portfolio
        self.runs: list[StrategyRun] = []
        for cs in strategies:
            syms = resolve_universe(cs.universe, feed_symbols)
            self.runs.append(StrategyRun(cs, syms, cs.stream(max(1, len(syms))),
                                         {s: i for i, s in enumerate(syms)},
                                         [_Slot() for _ in syms],
                                         surge_only=cs.universe == "surge"))
        self.hot: dict[str, int] = {}      # surge candidates → market time they were flagged
        self.hot_window_ns = 30 * 60 * 1_000_000_000

    def warm_up(self, history: dict[str, list[Bar]]) -> None:
        """Feed stored bars through every evaluator, flat, without emitting intents."""
        for run in self.runs:
            series = [history.get(s, []) for s in run.symbols]
            longest = max((len(b) for b in series), default=0)
            for i in range(longest):
                batch = [b[i] for b in series if i < len(b)]
                if batch:
                    self._evaluate(run, batch, emit=False)

    def on_candidates(self, found: Sequence[Any]) -> None:
        """Surge candidates (``jts.surge.SurgeCandidate``) open the door for "surge"
        strategies for ``hot_window_ns`` of market time."""
        for c in found:
            self.hot[c.symbol] = c.ts_ns

    def _is_hot(self, symbol: str, now_ns: int) -> bool:
        t = self.hot.get(symbol)
        return t is not None and now_ns - t <= self.hot_window_ns

    def on_bars(self, bars: list[Bar]) -> list[OrderIntent]:
        out: list[OrderIntent] = []
        for run in self.runs:
            if not run.enabled:
                continue
            mine = [b for b in bars if b.symbol in run.index]
            if mine:
                out.extend(self._evaluate(run, mine, emit=True))
        return out

    def _evaluate(self, run: StrategyRun, bars: list[Bar], *, emit: bool) -> list[OrderIntent]:
        k = len(bars)
        idx = np.fromiter((run.index[b.symbol] for b in bars), np.int64, k)
        ohlcvv = np.array([(b.open, b.high, b.low, b.close, b.volume, b.value) for b in bars],
                          dtype=np.float64).reshape(k, 6)
        slots = [run.slots[i] for i in idx]
        for s in slots:
            if s.position != 0:
                s.bars_held += 1
        position = np.array([float(s.position) for s in slots], dtype=np.float64)
        held = np.array([s.bars_held for s in slots], dtype=np.int64)
        entry_px = np.array([s.entry_price for s in slots], dtype=np.float64)
        try:
            entry, exit_ = run.evaluator.update_batch(idx, ohlcvv, position, held, entry_px)
        except Exception as exc:  # a strategy bug must not take the daemon down
            run.enabled = False
            run.error = f"{type(exc).__name__}: {exc}"
            log.error("strategy_disabled", strategy=run.name, error=run.error)
            return []
        run.bars += k
        if not emit:
            return []
        intents: list[OrderIntent] = []
        cap = getattr(run.compiled, "max_positions", None)
        busy = sum(1 for s in run.slots if s.position != 0 or s.pending)
        for j, bar in enumerate(bars):
            s = slots[j]
            if s.pending:
                continue
            if s.position == 0 and entry[j] and (
                    not run.surge_only or self._is_hot(bar.symbol, bar.ts_ns)):
                if cap is not None and busy >= cap:
                    run.capped += 1
                    continue
                qty = self._size(run, bar.close)
                if qty > 0:
                    busy += 1
                    intents.append(OrderIntent(run.name, bar.symbol, Side.BUY, qty,
                                               bar.ts_ns, reason="entry"))
                    run.entries += 1
                    s.pending = True
            elif s.position > 0 and exit_[j]:
                intents.append(OrderIntent(run.name, bar.symbol, Side.SELL, s.position,
                                           bar.ts_ns, closing=True, reason="exit"))
                run.exits += 1
                s.pending = True
        return intents

    def _size(self, run: StrategyRun, price: float) -> Decimal:
        sizing = getattr(run.compiled, "sizing", None)
        method = getattr(sizing, "method", "fixed_notional")
        value = to_decimal(float(getattr(sizing, "value", 1_000_000)))
        if price <= 0 or not math.isfinite(price):
            return ZERO
        px = to_decimal(price)
        if method == "fixed_quantity":
            return value.to_integral_value(ROUND_FLOOR)
        if method == "percent_equity":
            return (self.portfolio.equity() * value / 100 / px).to_integral_value(ROUND_FLOOR)
        return (value / px).to_integral_value(ROUND_FLOOR)

    def _slot(self, strategy: str, symbol: str) -> _Slot | None:
        for run in self.runs:
            if run.name == strategy and symbol in run.index:
                return run.slots[run.index[symbol]]
        return None

    def on_fill(self, fill: Fill) -> None:
        s = self._slot(fill.strategy, fill.symbol)
        if s is None:
            return
        before = s.position
        s.position += fill.quantity * fill.side.sign
        if before == 0 and s.position != 0:
            s.entry_price = float(fill.price)
            s.bars_held = 0
        elif s.position == 0:
            s.entry_price = math.nan
            s.bars_held = 0

    def on_order_done(self, strategy: str, symbol: str) -> None:
        s = self._slot(strategy, symbol)
        if s is not None:
            s.pending = False

    def status(self) -> list[dict[str, object]]:
        return [{"name": r.name, "enabled": r.enabled, "error": r.error,
                 "symbols": len(r.symbols), "bars": r.bars, "entries": r.entries,
                 "exits": r.exits, "capped": r.capped,
                 "timeframe": str(getattr(r.compiled, "timeframe", "1m"))}
                for r in self.runs]
