"""Decoding ClickHouse's ``Native`` output format — numeric fixed-width columns only — in place.

The embedded engine (chdb) streams a query result one block per chunk; in ``Native`` a block
is ``varint columns, varint rows`` then, per column, ``name``, ``type`` (varint-length
strings) and the values as a little-endian array. Each column becomes a numpy view on the
chunk's buffer (no copy); the view keeps the buffer alive. Anything but plain numeric types
(LowCardinality, Nullable, String…) is refused: the bar queries cast their columns so it
never happens.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from jts.errors import StorageError

_TYPES: dict[str, np.dtype[Any]] = {name: np.dtype(dt).newbyteorder("<") for name, dt in (
    ("UInt8", np.uint8), ("UInt16", np.uint16), ("UInt32", np.uint32), ("UInt64", np.uint64),
    ("Int8", np.int8), ("Int16", np.int16), ("Int32", np.int32), ("Int64", np.int64),
    ("Float32", np.float32), ("Float64", np.float64))}


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise StorageError("timeseries: truncated Native block (varint)")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def native_blocks(buf: Any) -> Iterator[list[npt.NDArray[Any]]]:
    """Yield each block of a Native buffer as a list of column arrays (views on ``buf``)."""
    view = memoryview(buf).cast("B")
    pos, end = 0, len(view)
    while pos < end:
        n_cols, pos = _varint(view, pos)
        n_rows, pos = _varint(view, pos)
        cols: list[npt.NDArray[Any]] = []
        for _ in range(n_cols):
            size, pos = _varint(view, pos)
            pos += size                                      # column name
            size, pos = _varint(view, pos)
            type_name = bytes(view[pos:pos + size]).decode()
            pos += size
            dtype = _TYPES.get(type_name)
            if dtype is None:
                raise StorageError(f"timeseries: Native column type {type_name} is not "
                                   "supported here (numeric columns only)")
            nbytes = n_rows * dtype.itemsize
            if pos + nbytes > end:
                raise StorageError("timeseries: truncated Native block (column data)")
            cols.append(np.frombuffer(view, dtype, n_rows, pos))
            pos += nbytes
        yield cols
