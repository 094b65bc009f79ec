"""The in-memory portfolio view: positions, cash and P&L derived from fills alone.

Average-cost accounting in Decimal. Realized P&L is net of fees and counted for the trading
day (KST) of the fill; unrealized P&L marks positions to the last traded price. This view is
what the risk gate, the strategy engine and ``jts status`` read; the ledger is the durable copy.

The aggregates the risk gate reads per intent (``unrealized``, ``exposure``, ``open_count``)
are running sums of per-position terms, recomputed only for positions whose fill or mark
changed since the last read: O(changes), not O(positions). A term is the same Decimal
expression the plain per-position sum uses; the sums are kept exactly and rounded once when
read. Marks written through ``mark``/``mark_many`` are tracked; with ``exclusive_marks=False``
(the default) a read also compares every open position's mark with the one its term used
(float compares, no Decimal work), so direct writes into ``marks`` are still seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, localcontext

from jts.clock import to_kst
from jts.mark_estimate import Estimate, MarkEstimate
from jts.money import to_decimal
from jts.types import Fill, Side

ZERO = Decimal(0)
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)   # sums of terms, no rounding
_DECIMALS: dict[float, Decimal] = {}       # mark → Decimal (prices repeat on the tick grid)
_DECIMALS_MAX = 1 << 16


@dataclass
class Holding:
    quantity: Decimal = ZERO
    avg_price: Decimal = ZERO
    realized: Decimal = ZERO
    entry_ts_ns: int = 0


@dataclass
class ClosedTrade:
    strategy: str
    symbol: str
    quantity: Decimal
    entry_price: Decimal
    exit_price: Decimal
    entry_ts_ns: int
    exit_ts_ns: int
    pnl: Decimal


@dataclass
class Portfolio:
    cash: Decimal
    holdings: dict[str, Holding] = field(default_factory=dict)
    marks: MutableMapping[str, float] = field(default_factory=dict)
    realized_today: Decimal = ZERO
    fees_today: Decimal = ZERO
    day: str = ""
    fills: int = 0
    trades: list[ClosedTrade] = field(default_factory=list)
    # True: every mark arrives through mark()/mark_many(), so reads skip the mark scan
    exclusive_marks: bool = False
    # symbols re-marked in ``marks`` directly since the last call (e.g. rows of a shared
    # price array a tick batch updated), asked for on every read of the aggregates
    moves: Callable[[], Iterable[str]] | None = field(default=None, repr=False, compare=False)
    # per open position: (mark used, unrealized term, exposure term)
    _terms: dict[str, tuple[float | None, Decimal, Decimal]] = field(
        default_factory=dict, init=False, repr=False, compare=False)
    _dirty: set[str] = field(default_factory=set, init=False, repr=False, compare=False)
    _moved: set[str] = field(default_factory=set, init=False, repr=False, compare=False)
    _unreal: Decimal = field(default=ZERO, init=False, repr=False, compare=False)
    _expo: Decimal = field(default=ZERO, init=False, repr=False, compare=False)
    _est: MarkEstimate = field(default_factory=MarkEstimate, init=False, repr=False,
                               compare=False)

    def __post_init__(self) -> None:
        self._dirty.update(self.holdings)

    def mark(self, symbol: str, price: float) -> None:
        self.marks[symbol] = price
        if symbol in self._terms:
            self._moved.add(symbol)

    def mark_many(self, prices: Mapping[str, float]) -> None:
        """Mark many symbols at once (e.g. the last print per symbol of a tick batch)."""
        self.marks.update(prices)
        if self._terms:
            self._moved.update(prices.keys() & self._terms.keys())

    def moved(self, symbols: Iterable[str]) -> None:
        """Symbols whose mark was written into ``marks`` directly (e.g. a shared last-price
        array updated from a tick batch): their positions are re-marked on the next read."""
        if self._terms:
            self._moved.update(s for s in symbols if s in self._terms)

    def _roll_day(self, ts_ns: int) -> None:
        d = to_kst(ts_ns).date().isoformat()
        if d != self.day:
            self.day = d
            self.realized_today = ZERO
            self.fees_today = ZERO

    def apply(self, fill: Fill) -> Decimal:
        """Apply one fill; returns the realized P&L (net of this fill's fees) it produced."""
        self._roll_day(fill.ts_ns)
        self.fills += 1
        self._dirty.add(fill.symbol)
        self._est.touch(fill.symbol)
        h = self.holdings.setdefault(fill.symbol, Holding())
        signed = fill.quantity * fill.side.sign
        fees = fill.commission + fill.tax
        self.cash -= signed * fill.price + fees
        self.fees_today += fees
        realized = -fees
        if h.quantity == 0 or (h.quantity > 0) == (signed > 0):
            total = h.quantity + signed
            h.avg_price = (h.avg_price * abs(h.quantity) + fill.price * fill.quantity) / abs(total)
            if h.quantity == 0:
                h.entry_ts_ns = fill.ts_ns
            h.quantity = total
        else:
            closing = min(abs(signed), abs(h.quantity))
            direction = 1 if h.quantity > 0 else -1
            gross = (fill.price - h.avg_price) * closing * direction
            realized += gross
            self.trades.append(ClosedTrade(fill.strategy, fill.symbol, closing, h.avg_price,
                                           fill.price, h.entry_ts_ns, fill.ts_ns, gross))
            h.quantity += signed
            if h.quantity == 0:
                h.avg_price = ZERO
            elif (h.quantity > 0) != (direction > 0):   # flipped through zero
                h.avg_price = fill.price
                h.entry_ts_ns = fill.ts_ns
        h.realized += realized
        self.realized_today += realized
        return realized

    def position(self, symbol: str) -> Decimal:
        h = self.holdings.get(symbol)
        return h.quantity if h else ZERO

    def open_positions(self) -> dict[str, Holding]:
        return {s: h for s, h in self.holdings.items() if h.quantity != 0}

    # --- running aggregates ---------------------------------------------------------------
    def _sync(self) -> None:
        if self.moves is not None:
            self.moved(self.moves())
        dirty = self._dirty
        terms = self._terms
        marks = self.marks
        if not self.exclusive_marks:
            for s, term in terms.items():
                if marks.get(s) != term[0]:
                    dirty.add(s)
        elif self._moved:             # re-marked at the price its term used: nothing to do
            for s in self._moved:
                used = terms.get(s)
                if used is not None and marks.get(s) != used[0]:
                    dirty.add(s)
        self._moved.clear()
        if not dirty:
            return
        old_terms = []
        new_terms = []
        for s in dirty:               # terms in the current context, as a plain sum would be
            old = terms.pop(s, None)
            if old is not None:
                old_terms.append(old)
            h = self.holdings.get(s)
            if h is not None and h.quantity != 0:
                new = terms[s] = self._term(s, h)
                new_terms.append(new)
        dirty.clear()
        if not terms:                 # no drift of exponents across an empty book
            self._unreal = self._expo = ZERO
            return
        with localcontext(_EXACT):    # the running sums: exact, no rounding
            unreal, expo = self._unreal, self._expo
            for _, u, e in old_terms:
                unreal -= u
                expo -= e
            for _, u, e in new_terms:
                unreal += u
                expo += e
        self._unreal, self._expo = unreal, expo

    def _term(self, symbol: str, h: Holding) -> tuple[float | None, Decimal, Decimal]:
        px = self.marks.get(symbol)
        if px is None:
            return None, ZERO, abs(h.quantity) * h.avg_price
        price = _DECIMALS.get(px)
        if price is None:
            price = to_decimal(px)
            if len(_DECIMALS) >= _DECIMALS_MAX:
                _DECIMALS.clear()
            _DECIMALS[px] = price
        return px, (price - h.avg_price) * h.quantity, abs(h.quantity) * price

    def estimate(self) -> Estimate | None:
        """Float estimates of unrealized P&L and exposure with their error bounds, and the
        exact number of open positions, read from the marks' price array without settling
        moved marks (:mod:`jts.mark_estimate`); None when the marks are not one."""
        return self._est.estimate(self.holdings, self.marks)

    def open_count(self) -> int:
        """How many symbols have a non-zero position (``len(open_positions())``)."""
        self._sync()
        return len(self._terms)

    def unrealized(self) -> Decimal:
        """Mark-to-market P&L of the open positions that have a mark."""
        self._sync()
        return +self._unreal

    def exposure(self) -> Decimal:
        """Sum of |quantity| × mark (the average price where there is no mark yet)."""
        self._sync()
        return +self._expo

    def equity(self) -> Decimal:
        return self.cash + sum(
            (h.quantity * (to_decimal(self.marks[s]) if s in self.marks else h.avg_price)
             for s, h in self.open_positions().items()), ZERO)


def side_of(quantity: Decimal) -> Side:
    return Side.BUY if quantity > 0 else Side.SELL
