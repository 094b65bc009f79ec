"""The collector's validation of one batch, columnar: a feed's ``list[Tick]`` or
:class:`~jts.tick_batch.TickColumns` becomes row/ts/price/volume/seq columns over the
collector's :class:`~jts.tick_batch.SymbolTable` (malformed ticks counted and left out), then
one :func:`jts.ingest_kernels.validate` call accepts or rejects each tick against per-row
order and de-duplication state held in arrays (see that module for the rules).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter

import numpy as np

from jts import ingest_kernels as K
from jts.tick_batch import I64, SymbolTable, TickBatch, TickColumns
from jts.types import Tick

_VENUE = attrgetter("venue")
_SYMBOL = attrgetter("symbol")
_TS = attrgetter("ts_ns")
_PRICE = attrgetter("price")
_VOLUME = attrgetter("volume")
_SEQ = attrgetter("seq")
_INTS = frozenset({int})
_NUMS = frozenset({int, float})
_STRS = frozenset({str})
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1


@dataclass(slots=True)
class Raw:
    """A batch as columns before validation: tick ``i``'s row is ``remap[sym[i]]`` (an
    index outside ``remap``, or -1 there: malformed); ``malformed`` counts the ticks already
    left out."""

    sym: I64
    remap: I64
    ts: I64
    px: np.ndarray
    vol: np.ndarray
    seq: I64
    malformed: int


def _well_formed(t: object) -> bool:
    if type(t) is not Tick:
        return False
    return (type(t.venue) is str and type(t.symbol) is str and bool(t.symbol)
            and type(t.ts_ns) is int and _I64_MIN <= t.ts_ns <= _I64_MAX
            and type(t.price) in _NUMS and type(t.volume) in _NUMS
            and type(t.seq) is int and _I64_MIN <= t.seq <= _I64_MAX)


def _pow2_at_least(n: int) -> int:
    p = 1
    while p < n:
        p *= 2
    return p


class Validator:
    """Validation state over ``table``'s rows: the newest accepted time and the
    de-duplication tables of every row (grown with the table)."""

    def __init__(self, table: SymbolTable, *, window: int, tolerance_ns: int) -> None:
        self.table = table
        self.window = window
        self.tol = tolerance_ns
        self.cap = _pow2_at_least(2 * window)
        self._n = 0
        self.last_ts: I64 = np.zeros(0, np.int64)
        self.max_seq: I64 = self.last_ts
        self.keys: I64 = np.zeros((0, 2, self.cap, 3), np.int64)
        self.recent: I64 = self.last_ts
        self.count: I64 = self.last_ts
        self._identity: I64 = self.last_ts
        self._alloc(max(64, len(table)))
        self._remaps: dict[tuple[str, int], tuple[tuple[str, ...], I64]] = {}
        table.on_grow.append(self._grow)

    def _alloc(self, rows: int) -> None:
        n, cap = self._n, self.cap
        last = np.full(rows, -(1 << 62), np.int64)
        max_seq = np.full(rows, K.NEVER, np.int64)
        keys = np.zeros((rows, 2, cap, 3), np.int64)
        keys[:, :, :, 2] = K.EMPTY
        recent = np.zeros(rows, np.int64)
        count = np.zeros(rows, np.int64)
        if n:
            last[:n], max_seq[:n], keys[:n] = self.last_ts[:n], self.max_seq[:n], self.keys[:n]
            recent[:n], count[:n] = self.recent[:n], self.count[:n]
        self.last_ts, self.max_seq, self.keys = last, max_seq, keys
        self.recent, self.count = recent, count
        self._identity = np.arange(rows, dtype=np.int64)
        self._n = rows

    def _grow(self, rows: int) -> None:
        if rows > self._n:
            self._alloc(max(rows, 2 * self._n))

    # --- a feed's batch as columns -----------------------------------------------------
    def raw(self, batch: Sequence[object] | TickColumns, venue: str) -> Raw:
        if isinstance(batch, TickColumns):
            return self._from_columns(batch, venue)
        return self._from_ticks(batch, venue)

    def _from_ticks(self, items: Sequence[object], venue: str) -> Raw:
        n = len(items)
        if set(map(type, items)) != {Tick}:
            return self._filtered(items, venue)
        ticks: Sequence[Tick] = items  # type: ignore[assignment]
        venues = list(map(_VENUE, ticks))
        syms = list(map(_SYMBOL, ticks))
        tss = list(map(_TS, ticks))
        pxs = list(map(_PRICE, ticks))
        vols = list(map(_VOLUME, ticks))
        seqs = list(map(_SEQ, ticks))
        if not (set(map(type, venues)) <= _STRS and set(map(type, syms)) <= _STRS
                and set(map(type, tss)) <= _INTS and set(map(type, seqs)) <= _INTS
                and set(map(type, pxs)) <= _NUMS and set(map(type, vols)) <= _NUMS):
            return self._filtered(items, venue)
        vset = set(venues)
        if vset <= {venue, ""}:
            rows = np.fromiter(map(self.table.rows_of(venue).__getitem__, syms), np.int64, n)
        else:
            table = self.table
            rows = np.fromiter((table.rows_of(v or venue)[s] for v, s in zip(venues, syms,
                                                                             strict=True)),
                               np.int64, n)
        try:
            ts = np.fromiter(tss, np.int64, n)
            seq = np.fromiter(seqs, np.int64, n)
        except OverflowError:
            return self._filtered(items, venue)
        return Raw(rows, self._identity, ts, np.fromiter(pxs, np.float64, n),
                   np.fromiter(vols, np.float64, n), seq, 0)

    def _filtered(self, items: Sequence[object], venue: str) -> Raw:
        """The slow path: drop the malformed ticks one by one, then the fast path."""
        good = [t for t in items if _well_formed(t)]
        raw = self._from_ticks(good, venue) if good else self._empty()
        raw.malformed += len(items) - len(good)
        return raw

    def _from_columns(self, c: TickColumns, venue: str) -> Raw:
        n = len(c.sym)
        arrays = (c.sym, c.ts_ns, c.price, c.volume, c.seq)
        if (any(a.ndim != 1 or len(a) != n for a in arrays)
                or any(a.dtype.kind not in "iu" for a in (c.sym, c.ts_ns, c.seq))
                or any(a.dtype.kind not in "iuf" for a in (c.price, c.volume))
                or not isinstance(c.names, tuple)):
            raw = self._empty()
            raw.malformed = n
            return raw
        return Raw(c.sym.astype(np.int64, copy=False), self._remap(c.venue or venue, c.names),
                   c.ts_ns.astype(np.int64, copy=False), c.price.astype(np.float64, copy=False),
                   c.volume.astype(np.float64, copy=False), c.seq.astype(np.int64, copy=False),
                   0)

    def _remap(self, venue: str, names: tuple[str, ...]) -> I64:
        key = (venue, id(names))
        got = self._remaps.get(key)
        if got is None or got[0] is not names:
            rows = self.table.rows_of(venue)
            got = self._remaps[key] = (names, np.fromiter(map(rows.__getitem__, names),
                                                          np.int64, len(names)))
        return got[1]

    @staticmethod
    def _empty() -> Raw:
        z = np.zeros(0, np.int64)
        return Raw(z, z, z, np.zeros(0), np.zeros(0), z, 0)

    # --- validation --------------------------------------------------------------------
    def accept(self, raw: Raw, recv_ns: int, counts: I64) -> TickBatch:
        """Validate ``raw`` in order (rejections added to ``counts``, indexed as
        :mod:`jts.ingest_kernels`' reasons); the accepted ticks."""
        n = len(raw.sym)
        px, vol = raw.px, raw.vol
        row, ts, seq = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
        opx, ovol = np.empty(n), np.empty(n)
        k = K.validate(raw.sym, raw.remap, raw.ts, px, vol, raw.seq, px.view(np.int64),
                       vol.view(np.int64), self.last_ts, self.max_seq, self.tol, self.keys,
                       self.recent, self.count, self.window, row, ts, opx, ovol, seq, counts)
        if k < n:
            row, ts, opx, ovol, seq = row[:k], ts[:k], opx[:k], ovol[:k], seq[:k]
        return TickBatch(self.table, row, ts, opx, ovol, seq, np.full(k, recv_ns, np.int64))
