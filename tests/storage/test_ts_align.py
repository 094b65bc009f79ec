"""The aligner and the Native decoder on their own: a property test against a naive pivot,
the off-grid time fallback, duplicated and foreign rows, truncated or unsupported blocks."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jts.errors import StorageError
from jts.storage.ts_align import AxisMiss, BarArrays, TimeAxis, align, allocate
from jts.storage.ts_native import native_blocks

T0 = 1_704_153_600_000          # ms, a minute boundary
MIN = 60_000


def blocks_of(k: np.ndarray, t: np.ndarray, vals: list[np.ndarray],
              size: int) -> list[list[np.ndarray]]:
    return [[k[i:i + size], t[i:i + size], *(v[i:i + size] for v in vals)]
            for i in range(0, len(k), size)]


def reference(n_sym: int, k: np.ndarray, t: np.ndarray,
              v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    times = np.unique(t)
    m = np.full((n_sym, len(times)), np.nan)
    for kk, tt, vv in zip(k, t, v, strict=True):
        m[kk, np.searchsorted(times, tt)] = vv
    return times, m


def run(n_sym: int, k: np.ndarray, t: np.ndarray, v: np.ndarray, size: int,
        dtype: type[np.floating] = np.float64) -> tuple[np.ndarray, np.ndarray]:
    axis = TimeAxis()
    for b in blocks_of(k, t, [v], size):
        axis.add(b[1])
    times = axis.finish()
    out = allocate(n_sym, len(times), ["close"], dtype)
    align(blocks_of(k, t, [v], size), axis, out)
    return times, out["close"]


@settings(max_examples=60, deadline=None)
@given(n_sym=st.integers(1, 6), n_min=st.integers(1, 40), seed=st.integers(0, 2**32 - 1),
       density=st.floats(0.05, 1.0), block=st.integers(1, 50), shuffle=st.booleans(),
       off_grid=st.booleans())
def test_align_matches_a_naive_pivot(n_sym: int, n_min: int, seed: int, density: float,
                                     block: int, shuffle: bool, off_grid: bool) -> None:
    rng = np.random.default_rng(seed)
    cells = [(s, m) for s in range(n_sym) for m in range(n_min) if rng.random() < density]
    if shuffle:
        rng.shuffle(cells)
    k = np.array([c[0] for c in cells], np.uint32)
    t = T0 + np.array([c[1] for c in cells], np.int64) * MIN
    if off_grid and len(t):
        t = t + np.array([c[1] % 3 for c in cells], np.int64) * 7   # some times off the grid
    v = rng.standard_normal(len(cells))
    want_t, want = reference(n_sym, k, t, v)
    got_t, got = run(n_sym, k, t, v, block)
    assert np.array_equal(got_t, want_t)
    assert np.array_equal(got, want, equal_nan=True)


def test_dense_sorted_rows_and_float32() -> None:
    k = np.repeat(np.arange(3, dtype=np.uint32), 5)
    t = np.tile(T0 + np.arange(5) * MIN, 3)
    v = np.arange(15, dtype=np.float32)
    times, m = run(3, k, t, v, 4, np.float32)
    assert m.dtype == np.float32
    assert m.tolist() == v.reshape(3, 5).tolist()
    assert np.array_equal(times, T0 + np.arange(5) * MIN)


def test_times_spanning_decades_fall_back_to_unique() -> None:
    t = np.array([T0, T0 - 40 * 365 * 86_400_000, T0 + MIN], np.int64)
    k = np.zeros(3, np.uint32)
    times, m = run(1, k, t, np.array([1.0, 2.0, 3.0]), 2)
    assert times.tolist() == sorted(t.tolist()) and m.tolist() == [[2.0, 1.0, 3.0]]


@pytest.mark.parametrize(("a", "b"), [
    ([T0, T0 + 2 * MIN], [T0 + MIN, T0 + 9 * MIN]),                    # same grid
    ([T0 + 3 * 365 * 86_400_000], [T0, T0 + MIN]),                     # origins years apart
    ([T0], [T0 - 30 * 365 * 86_400_000]),                              # too far: general
    ([T0, T0 + 7], [T0 + MIN]),                                        # off-grid: general
    ([], [T0]), ([T0], []),
])
def test_axes_of_symbol_groups_merge_into_the_union(a: list[int], b: list[int]) -> None:
    axes = [TimeAxis(), TimeAxis()]
    for axis, times in zip(axes, (a, b), strict=True):
        axis.add(np.array(times, np.int64))
    axes[0].merge(axes[1])
    union = sorted(set(a) | set(b))
    assert axes[0].finish().tolist() == union
    assert axes[0].columns(np.array(union, np.int64)).tolist() == list(range(len(union)))


def test_duplicated_rows_are_refused() -> None:
    k = np.zeros(2, np.uint32)
    t = np.array([T0, T0], np.int64)
    with pytest.raises(StorageError, match="duplicated bars"):
        run(1, k, t, np.array([1.0, 2.0]), 10)


def test_a_row_for_an_unrequested_symbol_is_refused() -> None:
    with pytest.raises(StorageError, match="not asked for"):
        run(1, np.array([0, 1], np.uint32), np.array([T0, T0], np.int64), np.ones(2), 10)


@pytest.mark.parametrize("late", [T0 + 5 * MIN, T0 + 7])
def test_a_time_missing_from_the_axis_is_an_axis_miss(late: int) -> None:
    axis = TimeAxis()
    axis.add(np.array([T0, T0 + MIN], np.int64))
    axis.finish()
    assert axis.columns(np.array([T0 + MIN, T0], np.int64)).tolist() == [1, 0]
    with pytest.raises(AxisMiss):
        axis.columns(np.array([T0, late], np.int64))


def test_unloaded_fields_raise() -> None:
    arr = BarArrays(["A"], "1m", np.zeros(1, np.int64), {"close": np.ones((1, 1))})
    assert arr.close.tolist() == [[1.0]]
    with pytest.raises(StorageError, match="'open' was not loaded"):
        _ = arr.open


def native(cols: list[tuple[str, str, bytes]], rows: int) -> bytes:
    def s(x: str) -> bytes:
        return bytes([len(x)]) + x.encode()
    return bytes([len(cols), rows]) + b"".join(s(n) + s(t) + d for n, t, d in cols)


def test_native_blocks_decode_in_place() -> None:
    buf = native([("k", "UInt32", struct.pack("<2I", 3, 4)),
                  ("t", "Int64", struct.pack("<2q", -1, 2**40)),
                  ("c", "Float64", struct.pack("<2d", 1.5, 2.5))], 2) * 2
    got = list(native_blocks(buf))
    assert len(got) == 2
    k, t, c = got[1]
    assert k.tolist() == [3, 4] and t.tolist() == [-1, 2**40] and c.tolist() == [1.5, 2.5]


def test_native_blocks_refuse_truncation_and_other_types() -> None:
    good = native([("c", "Float64", struct.pack("<2d", 1.5, 2.5))], 2)
    with pytest.raises(StorageError, match="truncated"):
        list(native_blocks(good[:-3]))
    with pytest.raises(StorageError, match="truncated"):
        list(native_blocks(b"\x01\x80"))
    with pytest.raises(StorageError, match="LowCardinality"):
        list(native_blocks(native([("s", "LowCardinality(String)", b"")], 0)))


def test_large_outputs_are_own_maps_and_writable() -> None:
    out = allocate(2, 5_000_000, ["close"], np.float64)       # 80 MB: above the map limit
    m = out["close"]
    assert m.shape == (2, 5_000_000) and m.flags.c_contiguous and m.flags.writeable
    axis = TimeAxis()
    axis.add(np.array([T0, T0 + MIN], np.int64))
    axis.finish()
    small = {"close": m[:, :2]}
    with pytest.raises(StorageError, match="C-contiguous"):
        align([], axis, small)
    rows = allocate(2, 2, ["close"], np.float64)
    align([[np.array([1], np.uint32), np.array([T0 + MIN]), np.array([7.0])]], axis, rows)
    assert np.array_equal(rows["close"], [[np.nan, np.nan], [np.nan, 7.0]], equal_nan=True)
    m[1, -1] = 3.0
    assert m[1, -1] == 3.0
