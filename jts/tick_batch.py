"""A tick batch as the collector publishes it: the ``Tick`` list and, beside it, the same
ticks as numpy columns, so array consumers do not walk the ticks again."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import attrgetter

import numpy as np

from jts.types import Tick

Columns = tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray, np.ndarray]
_SYMBOL = attrgetter("symbol")
_TS = attrgetter("ts_ns")
_PRICE = attrgetter("price")
_VOLUME = attrgetter("volume")


class _Rows(dict[str, int]):
    """A symbol index that answers -1 for a symbol outside it."""

    def __missing__(self, key: str) -> int:
        return -1


_ROWS: dict[int, tuple[dict[str, int], _Rows]] = {}


class TickBatch(list[Tick]):
    """An accepted batch as published: the ``Tick`` list, plus the same ticks as columns
    when the collector has a ``symbol_index``: ``columns = (index, sym_idx, ts_ns, price,
    volume)`` (numpy arrays; ``sym_idx`` rows of ``index``, -1 for a symbol outside it), so
    array consumers (the surge detector) need not walk the ticks again."""

    __slots__ = ("columns",)

    def __init__(self, ticks: Iterable[Tick] = (), columns: Columns | None = None) -> None:
        super().__init__(ticks)
        self.columns = columns

    @classmethod
    def of(cls, ticks: list[Tick], index: dict[str, int]) -> TickBatch:
        """``ticks`` with their columns over ``index``."""
        return cls(ticks, columns_of(ticks, index))

    @staticmethod
    def join(batches: Sequence[list[Tick]]) -> list[Tick]:
        """Several published batches as one (columns kept when every batch has them over
        the same index)."""
        if len(batches) == 1:
            return batches[0]
        cols = [getattr(b, "columns", None) for b in batches]
        flat = [t for b in batches for t in b]
        first = cols[0]
        if first is None or any(c is None or c[0] is not first[0] for c in cols):
            return flat
        return TickBatch(flat, (first[0], *(np.concatenate([c[k] for c in cols if c])
                                            for k in range(1, 5))))


def columns_of(ticks: Sequence[Tick], index: dict[str, int]) -> Columns:
    """The columns of ``ticks`` over ``index`` (rows of ``index``, -1 outside it), built by
    C-level maps (no Python step per tick)."""
    n = len(ticks)
    rows = _ROWS.get(id(index))
    if rows is None or rows[0] is not index:
        rows = _ROWS[id(index)] = (index, _Rows(index))
    return (index, np.fromiter(map(rows[1].__getitem__, map(_SYMBOL, ticks)), np.int64, n),
            np.fromiter(map(_TS, ticks), np.int64, n),
            np.fromiter(map(_PRICE, ticks), np.float64, n),
            np.fromiter(map(_VOLUME, ticks), np.float64, n))
