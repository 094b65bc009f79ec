"""Bar building: ticks → OHLCV bars of a fixed timeframe, closed by market time.

A bar for ``[t, t+tf)`` is emitted once a tick (of any symbol) or the clock shows a time at
or after ``t+tf``; a symbol with no ticks in a period gets no bar (gaps are not invented).
Out-of-order ticks older than the open bar are counted and ignored.
"""

from __future__ import annotations

import re

from jts.clock import NS
from jts.errors import ConfigError
from jts.types import Bar, Tick

_TF = re.compile(r"^(\d+)([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def timeframe_ns(tf: str) -> int:
    m = _TF.match(tf)
    if not m or int(m.group(1)) == 0:
        raise ConfigError(f"unknown timeframe {tf!r} (use e.g. 1m, 5m, 1h, 1d)")
    return int(m.group(1)) * _UNIT[m.group(2)] * NS


class _Open:
    __slots__ = ("close", "high", "low", "open", "start", "value", "volume")

    def __init__(self, start: int, price: float, volume: float) -> None:
        self.start = start
        self.open = self.high = self.low = self.close = price
        self.volume = volume
        self.value = price * volume


class BarBuilder:
    def __init__(self, timeframe: str = "1m", offset_ns: int = 9 * 3600 * NS) -> None:
        # offset aligns bars to KST wall-clock boundaries (matters for 1d; harmless otherwise)
        self.timeframe = timeframe
        self.tf_ns = timeframe_ns(timeframe)
        self.offset_ns = offset_ns
        self._open: dict[str, _Open] = {}
        self.late_ticks = 0

    def _start(self, ts_ns: int) -> int:
        return ((ts_ns + self.offset_ns) // self.tf_ns) * self.tf_ns - self.offset_ns

    def add(self, ticks: list[Tick]) -> list[Bar]:
        """Fold ticks in; return bars closed by them (in time order)."""
        closed: list[Bar] = []
        opened = self._open
        tf, off = self.tf_ns, self.offset_ns
        newest = -(1 << 62)
        for t in ticks:
            ts = t.ts_ns
            if ts > newest:
                newest = ts
            p = t.price
            cur = opened.get(t.symbol)
            if cur is not None:
                d = ts - cur.start
                if 0 <= d < tf:                  # the common case: inside the open bar
                    cur.close = p
                    if p > cur.high:
                        cur.high = p
                    if p < cur.low:
                        cur.low = p
                    v = t.volume
                    cur.volume += v
                    cur.value += p * v
                    continue
                if d < 0:                        # older than the open bar
                    self.late_ticks += 1
                    continue
                closed.append(self._bar(t.symbol, cur))
            opened[t.symbol] = _Open(((ts + off) // tf) * tf - off, p, t.volume)
        if ticks:
            closed.extend(self.close_until(newest))
            closed.sort(key=lambda b: (b.ts_ns, b.symbol))
        return closed

    def close_until(self, now_ns: int) -> list[Bar]:
        """Close every open bar whose period ended at or before ``now_ns``."""
        boundary = self._start(now_ns)
        done = [s for s, b in self._open.items() if b.start < boundary]
        out = [self._bar(s, self._open.pop(s)) for s in done]
        out.sort(key=lambda b: (b.ts_ns, b.symbol))
        return out

    def _bar(self, symbol: str, b: _Open) -> Bar:
        return Bar(symbol=symbol, timeframe=self.timeframe, ts_ns=b.start, open=b.open,
                   high=b.high, low=b.low, close=b.close, volume=b.volume, value=b.value)
