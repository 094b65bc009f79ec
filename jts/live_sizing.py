"""Live position sizing that needs history: ATR targeting and fractional Kelly.

The backtest kernel (``jts.backtest.kernel._size``) sizes an entry from the bar's close,
the equity at that close and, for these two methods, state the live engine must keep too:

* ``atr_target``: shares = equity × value% / ATR(atr_period), the ATR of the bar that
  signalled (TA-Lib's ATR: the first value is the mean true range of bars 1‥n, then
  Wilder's smoothing). :class:`AtrTracker` keeps it per symbol from the closed bars.
* ``kelly``: shares = equity × f / price with f = value × (w − (1 − w) / (avg win / avg
  loss)) over the strategy's last ``window`` closed trades (returns net of fees over the
  entry value), ``probe`` while fewer than ``min_trades`` trades closed, capped by
  ``max_fraction``. :class:`KellyBook` keeps the ring of returns from the fills.

Both are float64 (they size, they do not price); the engine rounds the result down to
whole shares in Decimal.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

KELLY_WINDOW = 50          # the backtester's defaults (jts.backtest.engine.Settings)
KELLY_MIN_TRADES = 10
KELLY_PROBE = 0.01


@dataclass
class _Atr:
    prev_close: float = math.nan
    n_tr: int = 0
    sum_tr: float = 0.0
    value: float = math.nan


class AtrTracker:
    """TA-Lib-compatible ATR(period) per symbol, one closed bar at a time."""

    def __init__(self, period: int) -> None:
        if period < 1:
            raise ValueError("ATR period must be >= 1")
        self.period = period
        self._by_symbol: dict[str, _Atr] = {}

    def update(self, symbol: str, high: float, low: float, close: float) -> float:
        st = self._by_symbol.setdefault(symbol, _Atr())
        if math.isnan(st.prev_close):
            st.prev_close = close          # the first bar has no true range
            return st.value
        pc = st.prev_close
        tr = max(high - low, abs(high - pc), abs(low - pc))
        st.prev_close = close
        n = self.period
        if st.n_tr < n:
            st.n_tr += 1
            st.sum_tr += tr
            if st.n_tr == n:
                st.value = st.sum_tr / n
        else:
            st.value = (st.value * (n - 1) + tr) / n
        return st.value

    def value(self, symbol: str) -> float:
        st = self._by_symbol.get(symbol)
        return st.value if st is not None else math.nan


@dataclass
class _OpenTrade:
    entry_value: float = 0.0
    exit_value: float = 0.0
    fees: float = 0.0
    long: bool = True


@dataclass
class KellyBook:
    """Closed-trade returns of one strategy and the Kelly fraction they imply."""

    multiplier: float
    max_fraction: float
    window: int = KELLY_WINDOW
    min_trades: int = KELLY_MIN_TRADES
    probe: float = KELLY_PROBE
    returns: deque[float] = field(default_factory=deque)
    _open: dict[str, _OpenTrade] = field(default_factory=dict)

    def on_fill(self, symbol: str, opening: bool, long: bool, notional: float, fees: float,
                closed: bool) -> None:
        """One fill of the strategy: ``opening`` adds to (or starts) the position,
        otherwise it reduces it; ``closed`` when the position is flat afterwards."""
        tr = self._open.get(symbol)
        if tr is None:
            if not opening:
                return                      # a position older than this book: unknown entry
            tr = self._open[symbol] = _OpenTrade(long=long)
        if opening:
            tr.entry_value += notional
        else:
            tr.exit_value += notional
        tr.fees += fees
        if closed:
            del self._open[symbol]
            if tr.entry_value > 0:
                d = 1.0 if tr.long else -1.0
                pnl = d * (tr.exit_value - tr.entry_value) - tr.fees
                self.returns.append(pnl / tr.entry_value)
                while len(self.returns) > self.window:
                    self.returns.popleft()

    def fraction(self) -> float:
        k = len(self.returns)
        if k < self.min_trades:
            return self.probe
        wins = 0
        sw = sl = 0.0
        for r in reversed(self.returns):    # newest first, summed as the kernel sums
            if r > 0.0:
                wins += 1
                sw += r
            else:
                sl -= r
        w = wins / k
        if wins == k or sl <= 0.0:
            f = 1.0
        elif wins == 0:
            f = 0.0
        else:
            f = w - (1.0 - w) / ((sw / wins) / (sl / (k - wins)))
        f *= self.multiplier
        if f <= 0.0:
            return self.probe
        return min(f, self.max_fraction)
