"""Float↔Decimal conversion and money rounding."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jts.errors import DataError
from jts.krx import Rounding
from jts.money import krw, passive, round_to_tick, to_decimal
from jts.types import Side


def test_to_decimal_uses_shortest_repr() -> None:
    assert to_decimal(0.1) == D("0.1")
    assert to_decimal(72000.0) == D("72000.0")
    assert to_decimal(1e-7) == D("1E-7")
    assert to_decimal(3) == D(3)
    assert to_decimal(" 12.50 ") == D("12.50")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "abc", "NaN", True])
def test_to_decimal_rejects_garbage(bad: object) -> None:
    with pytest.raises(DataError):
        to_decimal(bad)  # type: ignore[arg-type]


@given(st.floats(allow_nan=False, allow_infinity=False, width=64))
def test_to_decimal_round_trips(x: float) -> None:
    assert float(to_decimal(x)) == x


def test_krw_rounding() -> None:
    assert krw(D("1234.99")) == D(1234)
    assert krw(D("1234.01"), "up") == D(1235)
    assert krw(D("1234.5"), "half_up") == D(1235)
    assert krw(D("-1234.9")) == D(-1234)
    with pytest.raises(ValueError):
        krw(D(1), "banker")


def test_round_to_tick_by_side_is_adverse() -> None:
    assert round_to_tick(72040.0, Side.BUY) == D(72100)
    assert round_to_tick(72040.0, Side.SELL) == D(72000)
    assert round_to_tick(D("72040"), passive(Side.BUY)) == D(72000)
    assert round_to_tick(D("72040"), passive(Side.SELL)) == D(72100)
    assert round_to_tick(D("72049"), Rounding.NEAREST) == D(72000)


def test_numpy_floats_convert_like_python_floats() -> None:
    import numpy as np

    from jts.money import to_decimal

    assert to_decimal(np.float64(70100.5)) == to_decimal(70100.5)
