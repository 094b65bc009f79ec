"""The dedicated batch loops (SMA, EMA, RSI, MACD, BBANDS) against the streaming kernels (bit for
bit) and TA-Lib (1e-9) on long series, NaN inputs, short inputs and constant prices."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import talib

import jts.indicators as ji
from jts.indicators.api import _run

Fast = Callable[..., object]
FIVE: list[tuple[str, Fast, tuple[float, ...]]] = [
    ("sma", ji.sma, (20,)),
    ("ema", ji.ema, (20,)),
    ("rsi", ji.rsi, (14,)),
    ("macd", ji.macd, (12, 26, 9)),
    ("macd", ji.macd, (26, 12, 1)),
    ("bbands", ji.bbands, (20, 2.0, 1.5)),
    ("bbands", ji.bbands, (3, 1.0, 3.0)),
]


def _walk(n: int, seed: int = 11, level: float = 10_000.0, step: float = 5.0) -> np.ndarray:
    return level + np.cumsum(np.random.default_rng(seed).normal(0, step, n))


def _tuple(r: object) -> tuple[np.ndarray, ...]:
    return r if isinstance(r, tuple) else (r,)  # type: ignore[return-value]


def _inputs() -> dict[str, np.ndarray]:
    long = _walk(6_000)  # crosses several BBANDS re-centring points (every 1024 bars)
    mid_nan = _walk(3_000)
    mid_nan[1_500] = np.nan
    head_nan = _walk(400)
    head_nan[:9] = np.nan
    # walk100: the close series of test_talib's "walk" data (seed 7, 500 bars around 100)
    return {"long": long, "walk100": _walk(500, seed=7, level=100.0, step=1.0),
            "mid_nan": mid_nan, "head_nan": head_nan, "short": _walk(12),
            "const": np.full(300, 71_300.0), "empty": np.zeros(0)}


@pytest.mark.parametrize("case", list(_inputs()))
@pytest.mark.parametrize(("name", "fn", "params"), FIVE, ids=[f"{f[0]}{f[2]}" for f in FIVE])
def test_batch_loop_equals_streaming_kernel_bit_for_bit(case: str, name: str, fn: Fast,
                                                       params: tuple[float, ...]) -> None:
    x = _inputs()[case]
    got = _tuple(fn(x, *params))
    ref = _run(name, [x], params)
    for g, r in zip(got, ref, strict=False):
        assert g.shape == x.shape
        assert np.array_equal(g, r, equal_nan=True)


def _rel(ours: np.ndarray, ref: np.ndarray) -> float:
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    m = ~np.isnan(ref)
    return float(np.max(np.abs(ours[m] - ref[m]) / np.abs(ref[m]))) if m.any() else 0.0


def test_long_series_agree_with_talib_relative() -> None:
    """Outputs that stay away from zero agree to 1e-9 *relative*, bar by bar, over 20,000
    bars of a drifting random walk (running sums would drift from TA-Lib's re-centred ones)."""
    x = _walk(20_000)
    assert _rel(ji.sma(x, 20), talib.SMA(x, 20)) < 1e-12
    assert _rel(ji.ema(x, 20), talib.EMA(x, 20)) < 1e-12
    assert _rel(ji.rsi(x, 14), talib.RSI(x, 14)) < 1e-12
    for g, r in zip(ji.bbands(x, 20, 2.0, 2.0), talib.BBANDS(x, 20, 2.0, 2.0, 0), strict=True):
        assert _rel(g, r) < 1e-12
    assert _rel(ji.stddev(x, 20, 1.0), talib.STDDEV(x, 20, 1.0)) < 1e-9


def test_long_series_macd_agrees_with_talib_at_price_scale() -> None:
    """MACD line/signal/histogram are differences of EMAs and cross zero, where only an
    absolute bound makes sense: 1e-13 of the price level."""
    x = _walk(20_000)
    for g, r in zip(ji.macd(x, 12, 26, 9), talib.MACD(x, 12, 26, 9), strict=True):
        np.testing.assert_array_equal(np.isnan(g), np.isnan(r))
        m = ~np.isnan(r)
        assert np.max(np.abs(g[m] - r[m])) < 1e-13 * float(np.max(x))


def test_nan_after_the_start_stays_like_talib() -> None:
    """A NaN after the first valid bar: SMA, EMA, MACD and BBANDS stay NaN from there on,
    exactly where TA-Lib does."""
    x = _walk(2_000)
    x[700] = np.nan
    pairs = [(ji.sma(x, 20), talib.SMA(x, 20)), (ji.ema(x, 20), talib.EMA(x, 20))]
    pairs += list(zip(ji.macd(x, 12, 26, 9), talib.MACD(x, 12, 26, 9), strict=True))
    pairs += list(zip(ji.bbands(x, 20, 2.0, 2.0), talib.BBANDS(x, 20, 2.0, 2.0, 0), strict=True))
    for ours, ref in pairs:
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
        assert np.isnan(ours[700:]).all()


@pytest.mark.parametrize("price", [50.0, 71_300.0, 1_234_567.0, 0.5])
@pytest.mark.parametrize("n", [2, 3, 5, 12, 20, 26])
def test_flat_prices_give_exactly_that_price(price: float, n: int) -> None:
    """On a flat (e.g. limit-locked) series the averages and bands equal the price exactly, so
    rules like ``close > ema(close, n)`` or an EMA crossover stay false."""
    x = np.full(3_000, price)
    for out in (ji.sma(x, n), ji.ema(x, n), *ji.bbands(x, n, 2.0, 2.0)):
        assert (out[n - 1:] == price).all()
    for out in ji.macd(x, n, 2 * n, 9):
        assert (out[~np.isnan(out)] == 0.0).all()
    assert (ji.rsi(x, n)[n:] == 0.0).all()  # TA-Lib's value for a zero denominator
