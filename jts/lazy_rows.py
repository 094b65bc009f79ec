"""A columnar batch read as a sequence of value objects built only when read: the
behaviour :class:`jts.tick_batch.TickBatch` and :class:`jts.bars.BarBatch` share."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar, overload

T = TypeVar("T")


class LazyRows(Sequence[T]):
    """Subclasses hold columns and say how to build all rows (:meth:`_build`) or one
    (:meth:`_build_one`); a full build is kept, a single row is not."""

    __slots__ = ()
    _items: list[T] | None

    def _build(self) -> list[T]:
        raise NotImplementedError

    def _build_one(self, j: int) -> T:
        raise NotImplementedError

    def items(self) -> list[T]:
        got = self._items
        if got is None:
            got = self._items = self._build()
        return got

    def __iter__(self) -> Iterator[T]:
        return iter(self.items())

    @overload
    def __getitem__(self, i: int) -> T: ...

    @overload
    def __getitem__(self, i: slice) -> list[T]: ...

    def __getitem__(self, i: int | slice) -> T | list[T]:
        if isinstance(i, slice) or self._items is not None:
            return self.items()[i]
        n = len(self)
        j = i + n if i < 0 else i
        if not 0 <= j < n:
            raise IndexError(i)
        return self._build_one(j)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LazyRows | list | tuple):
            return self.items() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]
