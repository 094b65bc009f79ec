"""A tick batch as the collector publishes it: the ``Tick`` list and, beside it, the same
ticks as numpy columns, so array consumers do not walk the ticks again."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from jts.types import Tick

Columns = tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class TickBatch(list[Tick]):
    """An accepted batch as published: the ``Tick`` list, plus the same ticks as columns
    when the collector has a ``symbol_index``: ``columns = (index, sym_idx, ts_ns, price,
    volume)`` (numpy arrays; ``sym_idx`` rows of ``index``, -1 for a symbol outside it), so
    array consumers (the surge detector) need not walk the ticks again."""

    __slots__ = ("columns",)

    def __init__(self, ticks: Iterable[Tick] = (), columns: Columns | None = None) -> None:
        super().__init__(ticks)
        self.columns = columns

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
