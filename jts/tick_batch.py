"""Tick batches as columns.

* :class:`TickColumns` — what a columnar feed may yield instead of ``list[Tick]``: one venue,
  a symbol table and parallel arrays (a feed that parses into arrays never builds ``Tick``
  objects).
* :class:`SymbolTable` — the collector's rows for every (venue, symbol) it has seen, the
  universe's symbols first (row ``i`` is ``index`` row ``i``); per-row state (order and
  de-duplication) lives in arrays over these rows.
* :class:`TickBatch` — an accepted batch as the collector publishes it: numpy columns
  (``columns = (index, sym_idx, ts_ns, price, volume)`` over the universe's symbol index,
  ``-1`` for a symbol outside it) for the array consumers (surge detector, bar builder,
  last prices, paper broker, tick writer), and a ``Sequence[Tick]`` built only when someone
  iterates it (the per-print consumers: a held position's stops, a paper order's symbol).
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from jts.lazy_rows import LazyRows
from jts.types import Tick

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Columns = tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray, np.ndarray]
_SYMBOL = attrgetter("symbol")
_TS = attrgetter("ts_ns")
_PRICE = attrgetter("price")
_VOLUME = attrgetter("volume")


def names_of(index: dict[str, int]) -> list[str]:
    """The symbols of ``index`` in row order."""
    names = [""] * len(index)
    for sym, i in index.items():
        names[i] = sym
    return names


class TickColumns:
    """A feed's batch as columns: ``sym`` indexes ``names`` (a tuple the feed keeps: the
    collector caches its mapping by identity), ``seq`` is the venue's trade sequence (0:
    none). Arrays are converted to int64/float64 by the collector; bad values in them are
    counted like bad ``Tick`` fields, a malformed batch (lengths, indices) is rejected."""

    __slots__ = ("names", "price", "seq", "sym", "ts_ns", "venue", "volume")

    def __init__(self, venue: str, names: tuple[str, ...], sym: npt.ArrayLike,
                 ts_ns: npt.ArrayLike, price: npt.ArrayLike, volume: npt.ArrayLike,
                 seq: npt.ArrayLike | None = None) -> None:
        self.venue = venue
        self.names = names
        self.sym = np.asarray(sym)
        self.ts_ns = np.asarray(ts_ns)
        self.price = np.asarray(price)
        self.volume = np.asarray(volume)
        self.seq = np.zeros(len(self.sym), np.int64) if seq is None else np.asarray(seq)

    def __len__(self) -> int:
        return len(self.sym)

    def take(self, sl: slice) -> TickColumns:
        return TickColumns(self.venue, self.names, self.sym[sl], self.ts_ns[sl],
                           self.price[sl], self.volume[sl], self.seq[sl])


class _Rows(dict[str, int]):
    """symbol → row of one venue; a new symbol gets the next row of the table."""

    __slots__ = ("table", "venue")

    def __init__(self, table: SymbolTable, venue: str) -> None:
        super().__init__()
        self.table, self.venue = table, venue

    def __missing__(self, symbol: str) -> int:
        if type(symbol) is not str or not symbol:
            return -1
        return self.table.add(self.venue, symbol)


class SymbolTable:
    """Rows for (venue, symbol) pairs: the universe (``index``, ``venue``) first, in index
    order, then every other pair as it is first seen. ``to_index[row]`` is the row's
    universe row (-1 outside it); ``on_grow`` callbacks learn the new row count."""

    def __init__(self, index: dict[str, int] | None = None, venue: str = "") -> None:
        self.index = index
        self.venue = venue
        self.venues: list[str] = []
        self.symbols: list[str] = []
        self._to_index = np.zeros(64, np.int64)
        self._by_venue: dict[str, _Rows] = {}
        self.on_grow: list[Any] = []
        self._dicts: tuple[int, tuple[list[str], I64, list[str], I64]] | None = None
        for sym in names_of(index or {}):
            self.add(venue, sym)

    def __len__(self) -> int:
        return len(self.symbols)

    @property
    def to_index(self) -> I64:
        return self._to_index[: len(self.symbols)]

    def rows_of(self, venue: str) -> _Rows:
        """symbol → row for ``venue`` (new symbols are added)."""
        rows = self._by_venue.get(venue)
        if rows is None:
            rows = self._by_venue[venue] = _Rows(self, venue)
        return rows

    def add(self, venue: str, symbol: str) -> int:
        rows = self.rows_of(venue)
        got = dict.get(rows, symbol)
        if got is not None:
            return got
        row = len(self.symbols)
        self.venues.append(venue)
        self.symbols.append(symbol)
        dict.__setitem__(rows, symbol, row)
        if row >= len(self._to_index):
            grown = np.empty(2 * len(self._to_index), np.int64)
            grown[:row] = self._to_index[:row]
            self._to_index = grown
        self._to_index[row] = -1 if self.index is None else self.index.get(symbol, -1)
        for hook in self.on_grow:
            hook(row + 1)
        return row

    def dictionaries(self) -> tuple[list[str], I64, list[str], I64]:
        """Distinct venue and symbol names and each row's position in them (for a
        dictionary-encoded copy of a batch), recomputed only when rows were added."""
        n = len(self.symbols)
        got = self._dicts
        if got is None or got[0] != n:
            v, vi = np.unique(np.array(self.venues, dtype=object), return_inverse=True)
            s, si = np.unique(np.array(self.symbols, dtype=object), return_inverse=True)
            got = self._dicts = (n, (v.tolist(), vi.astype(np.int64),
                                     s.tolist(), si.astype(np.int64)))
        return got[1]

    def tick(self, row: int, ts: int, recv: int, px: float, vol: float, seq: int) -> Tick:
        return Tick(self.venues[row], self.symbols[row], ts, recv, px, vol, seq)


_TABLES: dict[int, tuple[dict[str, int], SymbolTable]] = {}


def table_for(index: dict[str, int]) -> SymbolTable:
    """A shared table over ``index`` for batches built from ``Tick`` lists (tests, tools)."""
    got = _TABLES.get(id(index))
    if got is None or got[0] is not index:
        got = _TABLES[id(index)] = (index, SymbolTable(index, ""))
    return got[1]


class TickBatch(LazyRows[Tick]):
    """Accepted ticks as columns over a :class:`SymbolTable`'s rows (one receive time per
    tick), with the ``Tick`` objects built on first use."""

    __slots__ = ("_cols", "_items", "px", "recv", "row", "seq", "table", "ts", "vol")

    def __init__(self, table: SymbolTable, row: I64, ts: I64, px: F64, vol: F64, seq: I64,
                 recv: I64, ticks: list[Tick] | None = None) -> None:
        self.table = table
        self.row, self.ts, self.px, self.vol, self.seq, self.recv = row, ts, px, vol, seq, recv
        self._items = ticks
        self._cols: Columns | None = None

    # --- columns -----------------------------------------------------------------------
    @property
    def columns(self) -> Columns | None:
        """``(index, sym_idx, ts_ns, price, volume)`` over the table's universe index, or
        None when the table has none."""
        index = self.table.index
        if index is None:
            return None
        if self._cols is None:
            row = self.row
            n = len(index)
            # the universe's rows come first: rows below its size are its own index rows
            if len(row) == 0 or int(row.max()) < n:
                sym = row
            else:
                sym = self.table.to_index[row]
            self._cols = (index, sym, self.ts, self.px, self.vol)
        return self._cols

    def _last_positions(self) -> I64:
        """Position of each row's last tick in the batch (rows ascending)."""
        n = len(self.row)
        _, first = np.unique(self.row[::-1], return_index=True)
        return n - 1 - first

    def last_prices(self) -> dict[str, float]:
        """The last price of each symbol in the batch (by symbol name)."""
        if not len(self.row):
            return {}
        at = self._last_positions()
        names = self.table.symbols
        return {names[r]: p for r, p in zip(self.row[at].tolist(), self.px[at].tolist(),
                                            strict=True)}

    def last_ticks(self) -> list[Tick]:
        """The last tick of each (venue, symbol) in the batch."""
        if not len(self.row):
            return []
        return list(self.take(self._last_positions()))

    # --- the Tick view -----------------------------------------------------------------
    def _build(self) -> list[Tick]:
        table = self.table
        venues, symbols = table.venues, table.symbols
        rows = self.row.tolist()
        return list(map(Tick, [venues[r] for r in rows], [symbols[r] for r in rows],
                        self.ts.tolist(), self.recv.tolist(), self.px.tolist(),
                        self.vol.tolist(), self.seq.tolist()))

    def _build_one(self, j: int) -> Tick:
        return self.table.tick(int(self.row[j]), int(self.ts[j]), int(self.recv[j]),
                               float(self.px[j]), float(self.vol[j]), int(self.seq[j]))

    def __len__(self) -> int:
        return len(self.row)

    def part(self, start: int, stop: int) -> TickBatch:
        """Ticks ``start:stop`` (views of the columns)."""
        sl = slice(start, stop)
        return TickBatch(self.table, self.row[sl], self.ts[sl], self.px[sl], self.vol[sl],
                         self.seq[sl], self.recv[sl],
                         None if self._items is None else self._items[sl])

    def take(self, idx: I64) -> TickBatch:
        """The ticks at positions ``idx`` (in that order)."""
        return TickBatch(self.table, self.row[idx], self.ts[idx], self.px[idx], self.vol[idx],
                         self.seq[idx], self.recv[idx])

    def __repr__(self) -> str:
        return f"TickBatch({len(self)} ticks)"

    # --- building ----------------------------------------------------------------------
    @classmethod
    def of(cls, ticks: Sequence[Tick], index: dict[str, int]) -> TickBatch:
        """``ticks`` as a batch over ``index`` (each keeps its own receive time)."""
        table = table_for(index)
        n = len(ticks)
        rows: I64 = np.empty(n, np.int64)
        for k, t in enumerate(ticks):
            rows[k] = table.add(t.venue, t.symbol)
        return cls(table, rows, np.fromiter(map(_TS, ticks), np.int64, n),
                   np.fromiter(map(_PRICE, ticks), np.float64, n),
                   np.fromiter(map(_VOLUME, ticks), np.float64, n),
                   np.fromiter((t.seq for t in ticks), np.int64, n),
                   np.fromiter((t.recv_ns for t in ticks), np.int64, n), list(ticks))

    @staticmethod
    def join(batches: Sequence[Sequence[Tick]]) -> Sequence[Tick]:
        """Several published batches as one (a TickBatch when every batch is one over the
        same table, else a plain list)."""
        if len(batches) == 1:
            return batches[0]
        first = batches[0]
        if isinstance(first, TickBatch) and all(
                isinstance(b, TickBatch) and b.table is first.table for b in batches):
            bs: list[TickBatch] = [b for b in batches if isinstance(b, TickBatch)]

            def cat(f: str) -> np.ndarray:
                return np.concatenate([getattr(b, f) for b in bs])

            return TickBatch(first.table, cat("row"), cat("ts"), cat("px"), cat("vol"),
                             cat("seq"), cat("recv"))
        return [t for b in batches for t in b]


def columns_of(ticks: Sequence[Tick], index: dict[str, int]) -> Columns:
    """The columns of ``ticks`` over ``index`` (rows of ``index``, -1 outside it)."""
    cols: Columns | None = getattr(ticks, "columns", None)
    if cols is not None and cols[0] is index:
        return cols
    n = len(ticks)
    get = index.get
    return (index, np.fromiter((get(s, -1) for s in map(_SYMBOL, ticks)), np.int64, n),
            np.fromiter(map(_TS, ticks), np.int64, n),
            np.fromiter(map(_PRICE, ticks), np.float64, n),
            np.fromiter(map(_VOLUME, ticks), np.float64, n))
