"""Last traded prices and symbol masks over the universe's symbol index.

:class:`LastPrices` is the daemon's last-price cache (``App.last_prices``, the portfolio's
marks, the risk gate's price band): a float array over the index, updated from a tick
batch's columns by one kernel call, plus a dict for symbols outside the index; it reads as a
``MutableMapping[str, float]``. :class:`SymbolMask` turns a set of symbol names (held
positions, positions under a stop) into a boolean mask over the index, rebuilt only when the
set changes, so a batch's rows of interest are found with one numpy expression.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterator, Mapping, MutableMapping
from itertools import islice

import numba as nb
import numpy as np
import numpy.typing as npt

from jts.tick_batch import names_of


@nb.njit(cache=True)
def set_last(sym, px, out):  # type: ignore[no-untyped-def]
    """``out[sym[i]] = px[i]`` in order (the last print of a symbol wins); rows < 0 skipped."""
    for i in range(sym.shape[0]):
        s = sym[i]
        if s >= 0:
            out[s] = px[i]


class LastPrices(MutableMapping[str, float]):
    def __init__(self, index: dict[str, int]) -> None:
        self.index = index
        self.px = np.full(len(index), np.nan)
        self.names = names_of(index)
        self._other: dict[str, float] = {}

    def update_columns(self, sym: npt.NDArray[np.int64], px: npt.NDArray[np.float64]) -> None:
        """Apply a batch's columns (``sym`` rows of ``index``; rows < 0 are the caller's)."""
        set_last(sym, px, self.px)

    def __getitem__(self, symbol: str) -> float:
        i = self.index.get(symbol)
        if i is None:
            return self._other[symbol]
        v = float(self.px[i])
        if math.isnan(v):
            raise KeyError(symbol)
        return v

    def get(self, symbol: str, default: float | None = None) -> float | None:  # type: ignore[override]
        i = self.index.get(symbol)
        if i is None:
            return self._other.get(symbol, default)
        v = float(self.px[i])
        return default if v != v else v

    def __setitem__(self, symbol: str, price: float) -> None:
        i = self.index.get(symbol)
        if i is None:
            self._other[symbol] = price
        else:
            self.px[i] = price

    def __delitem__(self, symbol: str) -> None:
        i = self.index.get(symbol)
        if i is None:
            del self._other[symbol]
        elif math.isnan(self.px[i]):
            raise KeyError(symbol)
        else:
            self.px[i] = np.nan

    def __iter__(self) -> Iterator[str]:
        names = self.names
        for i in np.flatnonzero(~np.isnan(self.px)).tolist():
            yield names[i]
        yield from self._other

    def __len__(self) -> int:
        return int((~np.isnan(self.px)).sum()) + len(self._other)

    def __contains__(self, symbol: object) -> bool:
        i = self.index.get(symbol) if isinstance(symbol, str) else None
        if i is None:
            return symbol in self._other
        return not math.isnan(self.px[i])


class SymbolMask:
    """``mask[i]`` is True when the index's symbol ``i`` is in the set last given to
    :meth:`of`; one extra False element at the end, so ``mask[sym]`` with ``sym == -1``
    (outside the index) reads False."""

    def __init__(self, index: dict[str, int]) -> None:
        self.index = index
        self._key: object = None
        self._seen = 0
        self.mask = np.zeros(len(index) + 1, np.bool_)

    def of_growing(self, symbols: Mapping[str, object]) -> npt.NDArray[np.bool_]:
        """The mask of a dict's keys when the dict only ever gains keys (the portfolio's
        holdings): only the keys added since the last call are looked up."""
        if self._key != id(symbols):
            self._key, self._seen = id(symbols), 0
            self.mask[:] = False
        if len(symbols) > self._seen:
            get = self.index.get
            rows = [i for i in map(get, islice(symbols, self._seen, None)) if i is not None]
            self.mask[rows] = True
            self._seen = len(symbols)
        return self.mask

    def of(self, symbols: Collection[str] | Callable[[], Collection[str]], key: object
           ) -> npt.NDArray[np.bool_]:
        """The mask of ``symbols`` (or of what the callable returns); rebuilt only when
        ``key`` (a version of the set) moved."""
        if key != self._key:
            self._key = key
            self.mask[:] = False
            get = self.index.get
            names = symbols() if callable(symbols) else symbols
            rows = [i for i in map(get, names) if i is not None]
            self.mask[rows] = True
        return self.mask
