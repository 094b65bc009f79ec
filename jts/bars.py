"""Bar building: ticks → OHLCV bars of a fixed timeframe, closed by market time.

A bar for ``[t, t+tf)`` is emitted once a tick (of any symbol) or the clock shows a time at
or after ``t+tf``; a symbol with no ticks in a period gets no bar (gaps are not invented).
Out-of-order ticks older than the open bar are counted and ignored.

A tick batch that carries columns over a symbol index (:class:`jts.tick_batch.TickBatch`)
is folded by a numba kernel (:mod:`jts.bar_kernels`) into the open bars of the whole index,
held as arrays; the closed bars then come out as a :class:`BarBatch` whose columns the
strategy engine reads without walking the bars. Other ticks (no columns, or a symbol outside
the index) take the per-tick Python path; both give the same bars.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import repeat
from typing import Any

import numpy as np

from jts import bar_kernels as K
from jts.clock import NS
from jts.errors import ConfigError
from jts.lazy_rows import LazyRows
from jts.tick_batch import columns_of, names_of
from jts.types import Bar, Tick

# (symbol index, row of each bar in it, bar start ns, OHLCV+value matrix k × 6)
BarColumns = tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray]


class BarBatch(LazyRows[Bar]):
    """Closed bars as published: ``columns`` = (symbol index, each bar's row in it, bar
    start ns, OHLCV+value matrix k × 6), and the ``Bar`` objects, built only when read (the
    strategy engine reads the columns; the bar writer and the dashboard read bars)."""

    __slots__ = ("_items", "_names", "_timeframe", "columns")

    def __init__(self, bars: list[Bar] | None, columns: BarColumns,
                 names: list[str] | None = None, timeframe: str = "") -> None:
        self._items = bars
        self.columns = columns
        self._names = names
        self._timeframe = timeframe

    def _build_one(self, j: int) -> Bar:
        assert self._names is not None
        _, rows, start, m = self.columns
        o, h, lo, c, v, val = m[j].tolist()
        return Bar(self._names[int(rows[j])], self._timeframe, int(start[j]), o, h, lo, c, v,
                   val)

    def _build(self) -> list[Bar]:
        assert self._names is not None
        _, rows, start, m = self.columns
        return bars_of(self._names, self._timeframe, rows, start, m)

    def __len__(self) -> int:
        return len(self.columns[1])


def bars_of(names: list[str], timeframe: str, rows: np.ndarray, start: np.ndarray,
            ohlcvv: np.ndarray) -> list[Bar]:
    """``Bar`` objects from columns: each bar's row in ``names``, start and OHLCV+value."""
    return list(map(Bar, [names[i] for i in rows.tolist()], repeat(timeframe),
                    start.tolist(), *ohlcvv.T.tolist()))


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
        # the columnar state, over the index of the first tick batch with columns
        self._index: dict[str, int] | None = None
        self._names: list[str] = []
        self._rank = np.zeros(0, np.int64)          # row → rank of its symbol name
        self._start = np.zeros(0, np.int64)
        self._state = np.zeros((0, 6))

    def _start_of(self, ts_ns: int) -> int:
        return ((ts_ns + self.offset_ns) // self.tf_ns) * self.tf_ns - self.offset_ns

    def _adopt(self, index: dict[str, int]) -> None:
        """Hold the open bars of ``index``'s symbols as arrays from now on."""
        n = len(index)
        self._index = index
        self._names = names_of(index)
        self._rank = np.empty(n, np.int64)
        self._rank[np.argsort(np.array(self._names, dtype=object), kind="stable")] = np.arange(n)
        self._start = np.full(n, K.NONE, np.int64)
        self._state = np.zeros((n, 6))
        for sym in [s for s in self._open if s in index]:
            b = self._open.pop(sym)
            i = index[sym]
            self._start[i] = b.start
            self._state[i] = (b.open, b.high, b.low, b.close, b.volume, b.value)

    def add(self, ticks: Sequence[Tick]) -> Sequence[Bar]:
        """Fold ticks in; return bars closed by them (in time order)."""
        cols: Any = getattr(ticks, "columns", None)
        if cols is not None and self._index is None:
            self._adopt(cols[0])
        if self._index is not None and ticks:
            return self._add_columns(ticks, cols)
        return self._add_ticks(ticks)

    def _add_columns(self, ticks: Sequence[Tick], cols: Any) -> Sequence[Bar]:
        index = self._index
        assert index is not None
        if cols is not None and cols[0] is index:
            sym, ts, px, vol = cols[1], cols[2], cols[3], cols[4]
        else:                                     # a plain list: its columns, once
            _, sym, ts, px, vol = columns_of(ticks, index)
        k = len(sym)
        n = len(self._start)
        out_sym = np.empty(k + n, np.int64)
        out_start = np.empty(k + n, np.int64)
        out = np.empty((k + n, 6))
        n_out, late, newest = K.fold(sym, ts, px, vol, self.tf_ns, self.offset_ns, self._start,
                                     self._state, out_sym, out_start, out)
        self.late_ticks += late
        other: list[Bar] = []
        if (sym < 0).any():                       # symbols outside the index: per tick
            other = self._add_ticks([ticks[j] for j in np.flatnonzero(sym < 0).tolist()],
                                    close=False)
        n_out = K.close_before(self._start_of(newest), self._start, self._state, out_sym,
                               out_start, out, n_out)
        other.extend(self._close_open(newest))
        if not n_out and not other:
            return []
        out_sym, out_start, out = out_sym[:n_out], out_start[:n_out], out[:n_out]
        order = np.lexsort((self._rank[out_sym], out_start))
        out_sym, out_start, out = out_sym[order], out_start[order], out[order]
        if other:                                 # rare: no columns for a mixed batch
            bars = self._bars(out_sym, out_start, out)
            bars.extend(other)
            bars.sort(key=lambda b: (b.ts_ns, b.symbol))
            return bars
        return BarBatch(None, (index, out_sym, out_start, out), self._names, self.timeframe)

    def _bars(self, sym: np.ndarray, start: np.ndarray, ohlcvv: np.ndarray) -> list[Bar]:
        """Closed bars from the kernels' output rows."""
        return bars_of(self._names, self.timeframe, sym, start, ohlcvv)

    def _add_ticks(self, ticks: Sequence[Tick], close: bool = True) -> list[Bar]:
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
        if ticks and close:
            closed.extend(self._close_open(newest))
            closed.sort(key=lambda b: (b.ts_ns, b.symbol))
        return closed

    def _close_open(self, now_ns: int) -> list[Bar]:
        boundary = self._start_of(now_ns)
        done = [s for s, b in self._open.items() if b.start < boundary]
        return [self._bar(s, self._open.pop(s)) for s in done]

    def close_until(self, now_ns: int) -> list[Bar]:
        """Close every open bar whose period ended at or before ``now_ns``."""
        out = self._close_open(now_ns)
        if self._index is not None:
            n = len(self._start)
            out_sym = np.empty(n, np.int64)
            out_start = np.empty(n, np.int64)
            ohlcvv = np.empty((n, 6))
            k = K.close_before(self._start_of(now_ns), self._start, self._state, out_sym,
                               out_start, ohlcvv, 0)
            out.extend(self._bars(out_sym[:k], out_start[:k], ohlcvv[:k]))
        out.sort(key=lambda b: (b.ts_ns, b.symbol))
        return out

    def _bar(self, symbol: str, b: _Open) -> Bar:
        return Bar(symbol=symbol, timeframe=self.timeframe, ts_ns=b.start, open=b.open,
                   high=b.high, low=b.low, close=b.close, volume=b.volume, value=b.value)
