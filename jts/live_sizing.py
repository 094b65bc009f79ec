"""Live position sizing that needs history: ATR targeting and fractional Kelly.

The backtest kernel (``jts.backtest.kernel._size``) sizes an entry from the bar's close,
the equity at that close and, for these two methods, state the live engine must keep too:

* ``atr_target``: shares = equity × value% / ATR(atr_period), the ATR of the bar that
  signalled. :class:`AtrTracker` keeps it per symbol from the closed bars with the
  indicator library's streaming ATR kernel, so it is the backtester's ATR bit for bit.
* ``kelly``: shares = equity × f / price with f = value × (w − (1 − w) / (avg win / avg
  loss)) over the strategy's last ``window`` closed trades (returns net of fees over the
  entry value), ``probe`` while fewer than ``min_trades`` trades closed, capped by
  ``max_fraction``. :class:`KellyBook` keeps the returns from the fills and asks the
  backtest kernel's ``_kelly`` for the fraction.

Both are float64 (they size, they do not price); the engine rounds the result down to
whole shares in Decimal.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from jts.indicators.dispatch import step_any
from jts.indicators.registry import BY_NAME

# Kelly's defaults, shared with the backtester (jts.backtest.engine.Settings uses them)
KELLY_WINDOW = 50          # closed trades the fraction looks back over
KELLY_MIN_TRADES = 10      # fewer closed trades: size with the probe fraction
KELLY_PROBE = 0.01


class AtrTracker:
    """TA-Lib-compatible ATR(period) per symbol, one closed bar at a time: the indicator
    library's own streaming ATR kernel (the one ``jts.indicators.atr`` runs), a state row per
    symbol."""

    def __init__(self, period: int) -> None:
        if period < 1:
            raise ValueError("ATR period must be >= 1")
        spec = BY_NAME["atr"]
        self._kind = spec.kind
        self._params = np.zeros(3)
        self._params[0] = period
        self._state_size = max(spec.state((float(period),)), 1)
        self._x = np.zeros(4)
        self._out = np.zeros(8)
        self._state: dict[str, npt.NDArray[np.float64]] = {}
        self._value: dict[str, float] = {}

    def update(self, symbol: str, high: float, low: float, close: float) -> float:
        st = self._state.get(symbol)
        if st is None:
            st = self._state[symbol] = np.zeros(self._state_size)
        self._x[0], self._x[1], self._x[2] = high, low, close
        step_any(self._kind, st, 0, self._x, self._params, self._out)
        v = self._value[symbol] = float(self._out[0])
        return v

    def value(self, symbol: str) -> float:
        return self._value.get(symbol, math.nan)


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
    _params: npt.NDArray[np.float64] | None = None

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
        """The backtest kernel's own Kelly fraction over these returns."""
        from jts.backtest import kernel as K  # imported when a kelly strategy first sizes

        if self._params is None:
            self._params = np.zeros(K.P_KELLY_PROBE + 1)
            p = self._params
            p[K.P_KELLY_WIN], p[K.P_KELLY_MIN] = self.window, self.min_trades
            p[K.P_KELLY_PROBE], p[K.P_SIZE] = self.probe, self.multiplier
            p[K.P_MAX_FRAC] = self.max_fraction
        ring = np.fromiter(self.returns, np.float64, len(self.returns))
        return float(K._kelly(ring, len(ring), self._params))
