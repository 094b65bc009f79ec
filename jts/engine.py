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

from jts.guards import StrategyGuards
from jts.money import to_decimal
from jts.portfolio import Portfolio
from jts.types import Bar, Fill, OrderIntent, Side, Tick

log = structlog.get_logger(__name__)
ZERO = Decimal(0)


class _Book:
    """One strategy's position state over its universe as arrays (row = symbol index), so a
    bar close reads and updates it without a Python step per symbol."""

    __slots__ = ("bars_held", "entry_price", "pending", "pos", "qty")

    def __init__(self, n: int) -> None:
        self.qty: list[Decimal] = [ZERO] * n           # the exact position
        self.pos = np.zeros(n, dtype=np.float64)       # float(qty), for the kernel
        self.entry_price = np.full(n, math.nan, dtype=np.float64)
        self.bars_held = np.zeros(n, dtype=np.int64)
        self.pending = np.zeros(n, dtype=np.bool_)


class _Slot:
    """One (strategy, symbol) of a :class:`_Book`, read and written like a record."""

    __slots__ = ("_book", "_i")

    def __init__(self, book: _Book, i: int) -> None:
        self._book, self._i = book, i

    @property
    def position(self) -> Decimal:
        return self._book.qty[self._i]

    @position.setter
    def position(self, value: Decimal) -> None:
        self._book.qty[self._i] = value
        self._book.pos[self._i] = float(value)

    @property
    def entry_price(self) -> float:
        return float(self._book.entry_price[self._i])

    @entry_price.setter
    def entry_price(self, value: float) -> None:
        self._book.entry_price[self._i] = value

    @property
    def bars_held(self) -> int:
        return int(self._book.bars_held[self._i])

    @bars_held.setter
    def bars_held(self, value: int) -> None:
        self._book.bars_held[self._i] = value

    @property
    def pending(self) -> bool:
        return bool(self._book.pending[self._i])

    @pending.setter
    def pending(self, value: bool) -> None:
        self._book.pending[self._i] = value


@dataclass
class StrategyRun:
    compiled: Any                       # jts.strategy.CompiledStrategy
    symbols: list[str]
    evaluator: Any
    index: dict[str, int]
    book: _Book
    enabled: bool = True
    surge_only: bool = False            # universe "surge": enter only on fresh candidates
    error: str = ""
    bars: int = 0
    entries: int = 0
    exits: int = 0
    capped: int = 0                     # entries skipped at the strategy's max_positions
    intents: list[OrderIntent] = field(default_factory=list)
    slots: list[_Slot] = field(default_factory=list)
    # id(symbol index of a bar batch) → (that index, its rows → this universe's rows)
    maps: dict[int, tuple[dict[str, int], np.ndarray]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.slots = [_Slot(self.book, i) for i in range(len(self.symbols))]

    @property
    def name(self) -> str:
        return str(self.compiled.name)


class _Columns:
    """A bar batch as columns, built once and shared by every strategy: the symbols and
    the OHLCV+value matrix (``k × 6``). From a :class:`jts.bars.BarBatch` they are taken as
    they are (``index``/``rows``: each bar's row in the bar builder's symbol index), and a
    strategy's rows are found through a cached index → universe map, not by name."""

    __slots__ = ("_names", "index", "ohlcvv", "rows", "symbols", "ts", "unique")

    def __init__(self, bars: Sequence[Bar], symbols: list[str] | None = None,
                 ohlcvv: np.ndarray | None = None) -> None:
        self.index: dict[str, int] | None = None
        self.rows = _NO_ROWS
        self.ts: np.ndarray | None = None
        cols = getattr(bars, "columns", None)
        if symbols is None and cols is not None:
            self.index, self.rows, self.ts, ohlcvv = cols
            self.symbols: list[str] = []
            self.ohlcvv: np.ndarray = ohlcvv
            ts = self.ts
            # one bar start (the usual close of the universe): a symbol has one bar in it
            self.unique = (len(ts) == 0 or bool(ts.min() == ts.max())
                           or len(np.unique(self.rows)) == len(self.rows))
            return
        if symbols is None or ohlcvv is None:
            symbols = [b.symbol for b in bars]
            ohlcvv = np.array([(b.open, b.high, b.low, b.close, b.volume, b.value)
                               for b in bars], dtype=np.float64).reshape(len(bars), 6)
        self.symbols = symbols
        self.ohlcvv = ohlcvv
        self._names = set(symbols)
        self.unique = len(self._names) == len(symbols)

    def _mapped(self, run: StrategyRun) -> np.ndarray:
        """Each bar's row in ``run``'s universe (-1: outside it), through the run's map."""
        assert self.index is not None
        got = run.maps.get(id(self.index))
        if got is None or got[0] is not self.index:
            m = np.full(len(self.index), -1, np.int64)
            for sym, i in self.index.items():
                m[i] = run.index.get(sym, -1)
            got = run.maps[id(self.index)] = (self.index, m)
        return got[1][self.rows]

    def rows_of(self, run: StrategyRun) -> np.ndarray | None:
        """The rows in ``run``'s universe (None: all of them)."""
        if self.index is not None:
            inside = self._mapped(run) >= 0
            return None if inside.all() else np.flatnonzero(inside)
        index = run.index
        if index.keys() >= self._names:
            return None
        inside = np.fromiter(map(index.__contains__, self.symbols), np.bool_,
                             len(self.symbols))
        return np.flatnonzero(inside)

    def ts_of(self, bars: Sequence[Bar]) -> np.ndarray:
        """Each bar's start time (from the columns, else from the bars)."""
        if self.ts is None:
            self.ts = np.fromiter((b.ts_ns for b in bars), np.int64, len(bars))
        return self.ts

    def take(self, rows: np.ndarray) -> _Columns:
        if self.index is not None:
            out = _Columns((), [], self.ohlcvv[rows])
            out.index, out.rows, out.unique = self.index, self.rows[rows], self.unique
            out.ts = None if self.ts is None else self.ts[rows]
            return out
        return _Columns((), [self.symbols[j] for j in rows.tolist()], self.ohlcvv[rows])

    def index_in(self, run: StrategyRun) -> np.ndarray:
        if self.index is not None:
            return self._mapped(run)
        index = run.index
        return np.fromiter(map(index.__getitem__, self.symbols), np.int64, len(self.symbols))


_NO_ROWS = np.zeros(0, np.int64)


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
                                         _Book(len(syms)),
                                         surge_only=cs.universe == "surge"))
        self.hot: dict[str, int] = {}      # surge candidates → market time they were flagged
        self.hot_window_ns = 30 * 60 * 1_000_000_000
        self.guards = StrategyGuards(strategies)   # [stops], ATR and Kelly sizing state

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

    def on_bars(self, bars: Sequence[Bar]) -> list[OrderIntent]:
        """A batch of closed bars (one bar close of the universe): its columns are built
        once and every strategy evaluates its rows in one kernel call."""
        out: list[OrderIntent] = []
        if not bars:
            return out
        cols: _Columns | None = None
        for run in self.runs:
            if not run.enabled:
                continue
            if cols is None:
                cols = _Columns(bars)
            rows = cols.rows_of(run)
            if rows is None:
                out.extend(self._evaluate(run, bars, emit=True, cols=cols))
            elif rows.size:
                out.extend(self._evaluate(run, [bars[j] for j in rows.tolist()], emit=True,
                                          cols=cols.take(rows)))
        return out

    def _evaluate(self, run: StrategyRun, bars: Sequence[Bar], *, emit: bool,
                  cols: _Columns | None = None) -> list[OrderIntent]:
        k = len(bars)
        if cols is None:
            cols = _Columns(bars)
        idx = cols.index_in(run)
        book = run.book
        if cols.unique:
            book.bars_held[idx[book.pos[idx] != 0.0]] += 1
        else:                            # a symbol twice in one batch: count each bar
            for i in idx.tolist():
                if book.pos[i] != 0.0:
                    book.bars_held[i] += 1
        position = book.pos[idx]
        held = book.bars_held[idx]
        entry_px = book.entry_price[idx]
        try:
            entry, exit_ = run.evaluator.update_batch(idx, cols.ohlcvv, position, held, entry_px)
        except Exception as exc:  # a strategy bug must not take the daemon down
            run.enabled = False
            run.error = f"{type(exc).__name__}: {exc}"
            log.error("strategy_disabled", strategy=run.name, error=run.error)
            return []
        run.bars += k
        if run.name in self.guards.atr:
            self.guards.on_bars(run.name, bars)
        if not emit:
            return []
        intents: list[OrderIntent] = []
        cap = getattr(run.compiled, "max_positions", None)
        busy = (int(np.count_nonzero((book.pos != 0.0) | book.pending)) if cap is not None
                else 0)
        slots = run.slots
        names = run.symbols
        close = cols.ohlcvv[:, 3].tolist()
        stamps = cols.ts_of(bars)
        # only an entry signal on a flat slot or an exit signal on a long one can act, and
        # not while an order of the slot is in flight: visit those rows only
        free = ~book.pending[idx]
        act = np.flatnonzero(((entry & (position == 0.0)) | (exit_ & (position > 0.0))) & free)
        for j in act.tolist():
            i = int(idx[j])
            s = slots[i]
            if s.pending:                 # the same symbol earlier in this batch
                continue
            symbol, ts_ns = names[i], int(stamps[j])
            if s.position == 0 and entry[j] and (
                    not run.surge_only or self._is_hot(symbol, ts_ns)):
                if cap is not None and busy >= cap:
                    run.capped += 1
                    continue
                qty = self._size(run, close[j], symbol)
                if qty > 0:
                    busy += 1
                    intents.append(OrderIntent(run.name, symbol, Side.BUY, qty, ts_ns,
                                               reason="entry"))
                    run.entries += 1
                    s.pending = True
            elif s.position > 0 and exit_[j]:
                intents.append(OrderIntent(run.name, symbol, Side.SELL, s.position, ts_ns,
                                           closing=True, reason="exit"))
                run.exits += 1
                s.pending = True
        return intents

    def _size(self, run: StrategyRun, price: float, symbol: str = "") -> Decimal:
        sizing = getattr(run.compiled, "sizing", None)
        method = getattr(sizing, "method", "fixed_notional")
        value = to_decimal(float(getattr(sizing, "value", 1_000_000)))
        if price <= 0 or not math.isfinite(price):
            return ZERO
        if method in ("atr_target", "kelly"):
            got = self.guards.size(run.name, symbol, price, self.portfolio.equity(),
                                   float(value))
            return ZERO if got is None else got
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
        self.guards.on_fill(fill, before, s.position, s.entry_price)

    def on_order_done(self, strategy: str, symbol: str) -> None:
        s = self._slot(strategy, symbol)
        if s is not None:
            s.pending = False
            self.guards.on_order_done(strategy, symbol, s.position)

    def on_ticks(self, ticks: Sequence[Tick]) -> list[OrderIntent]:
        """Trade prints against the held positions' ``[stops]``: a crossed level becomes a
        closing market order (reason ``stop_loss``/``take_profit``/``trailing_stop``)."""
        if not self.guards.watching:
            return []
        out: list[OrderIntent] = []
        for hit in self.guards.on_ticks(ticks):
            s = self._slot(hit.strategy, hit.symbol)
            if s is None or s.pending or s.position <= 0:
                continue                  # an exit is in flight; re-armed if it fails
            out.append(OrderIntent(hit.strategy, hit.symbol, Side.SELL, s.position,
                                   hit.ts_ns, closing=True, reason=hit.reason))
            s.pending = True
            self.guards.count_exit(hit.strategy)
            log.info("stop_triggered", strategy=hit.strategy, symbol=hit.symbol,
                     reason=hit.reason, price=hit.price, level=round(hit.level, 4))
        return out

    def status(self) -> list[dict[str, object]]:
        return [{"name": r.name, "enabled": r.enabled, "error": r.error,
                 "symbols": len(r.symbols), "bars": r.bars, "entries": r.entries,
                 "exits": r.exits, "capped": r.capped,
                 "stop_exits": self.guards.stop_exits_of(r.name),
                 "timeframe": str(getattr(r.compiled, "timeframe", "1m"))}
                for r in self.runs]
