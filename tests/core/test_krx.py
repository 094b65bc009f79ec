"""KRX tick sizes, rounding, price limits and symbol data."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jts.errors import DataError
from jts.krx import (
    Market,
    Rounding,
    bundled_symbols,
    market_of,
    on_tick,
    price_limits,
    round_price,
    round_prices_f64,
    tick_arrays,
    tick_size,
)

prices = st.decimals(min_value=D(1), max_value=D(3_000_000), places=2, allow_nan=False)


@pytest.mark.parametrize(("price", "tick"), [
    (1, 1), (1999, 1), (2000, 5), (4995, 5), (5000, 10), (19990, 10), (20000, 50),
    (49950, 50), (50000, 100), (199900, 100), (200000, 500), (499500, 500), (500000, 1000),
    (1_500_000, 1000)])
def test_unified_tick_table(price: int, tick: int) -> None:
    assert tick_size(price) == D(tick)
    assert tick_size(D(price), Market.KOSDAQ) == D(tick)


def test_old_tables_differ_by_market_before_2023() -> None:
    old = date(2022, 6, 1)
    assert tick_size(60_000, Market.KOSDAQ, old) == D(100)
    assert tick_size(150_000, Market.KOSPI, old) == D(500)
    assert tick_size(150_000, Market.KOSDAQ, old) == D(100)
    assert tick_size(1_500, Market.KOSPI, old) == D(5)
    assert tick_size(1_500, Market.KOSPI, date(2023, 1, 25)) == D(1)


def test_round_examples() -> None:
    assert round_price(D("72040"), Rounding.DOWN) == D(72000)
    assert round_price(D("72040"), Rounding.UP) == D(72100)
    assert round_price(D("72050"), Rounding.NEAREST) == D(72100)
    assert round_price(D("72049"), Rounding.NEAREST) == D(72000)
    assert round_price(D("1999.5"), Rounding.UP) == D(2000)
    assert round_price(D("2001"), Rounding.DOWN) == D(2000)
    assert round_price(72000.0, "up") == D(72000)


def test_bad_prices_are_rejected() -> None:
    with pytest.raises(DataError, match="positive"):
        tick_size(0)
    with pytest.raises(DataError, match="positive"):
        round_price(D(-5), Rounding.UP)
    with pytest.raises(ValueError):
        round_price(D(5), "sideways")


@given(prices, st.sampled_from(list(Rounding)))
def test_rounding_is_idempotent_and_on_grid(p: D, mode: Rounding) -> None:
    r = round_price(p, mode)
    assert on_tick(r)
    assert round_price(r, mode) == r
    for other in Rounding:
        assert round_price(r, other) == r


@given(prices, prices, st.sampled_from(list(Rounding)))
def test_rounding_is_monotone(a: D, b: D, mode: Rounding) -> None:
    lo, hi = min(a, b), max(a, b)
    assert round_price(lo, mode) <= round_price(hi, mode)


@given(prices)
def test_down_and_up_bracket_the_price(p: D) -> None:
    down, up = round_price(p, Rounding.DOWN), round_price(p, Rounding.UP)
    assert down <= p <= up
    # nothing on the grid lies strictly between them
    assert up == down or up - down == tick_size(down) or up - down == tick_size(up - D("0.01"))


@pytest.mark.parametrize(("prev", "lower", "upper"), [
    (D(72000), D(50400), D(93600)),
    (D(10000), D(7000), D(13000)),
    (D(1999), D(1400), D(2595)),       # upper band tick 5: 2598.7 -> 2595; lower 1399.3 -> 1400
    (D(651), D(456), D(846)),
])
def test_price_limits(prev: D, lower: D, upper: D) -> None:
    assert price_limits(prev) == (lower, upper)


@given(prices)
def test_price_limits_are_inward_and_on_grid(prev: D) -> None:
    lower, upper = price_limits(prev)
    assert on_tick(lower) and on_tick(upper)
    assert lower >= prev * D("0.7")
    assert upper <= prev * D("1.3")


def test_tick_arrays_match_decimal_table() -> None:
    lows, ticks = tick_arrays()
    for p in [1.0, 1999.0, 2000.0, 7777.0, 20000.0, 123456.0, 999999.0]:
        i = int(np.searchsorted(lows, p, side="right")) - 1
        assert ticks[i] == float(tick_size(p))


def test_bundled_symbols() -> None:
    syms = bundled_symbols()
    assert len(syms) >= 60
    assert len({s.code for s in syms}) == len(syms)
    assert market_of("005930") is Market.KOSPI
    assert market_of("247540") is Market.KOSDAQ
    assert market_of("999999") is None
    samsung = next(s for s in syms if s.code == "005930")
    assert samsung.name == "삼성전자"
    assert all(on_tick(s.price) for s in syms)


@given(st.lists(prices, min_size=1, max_size=20), st.sampled_from(list(Rounding)))
def test_float_rounding_matches_decimal(ps: list[D], mode: Rounding) -> None:
    arr = np.array([float(p) for p in ps])
    got = round_prices_f64(arr, mode)
    for p, g in zip(arr, got, strict=True):
        assert g == float(round_price(D(repr(float(p))), mode))
