"""Public batch API with TA-Lib names and parameter conventions (float64 arrays in and out,
NaN during warm-up exactly where TA-Lib has it). JTS-only indicators use the same style."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from jts.errors import DataError
from jts.indicators import fast
from jts.indicators.dispatch import run_batch
from jts.indicators.registry import BY_NAME

Arr = npt.NDArray[np.float64]


def _arr(x: Any, name: str) -> Arr:
    a = np.ascontiguousarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise DataError(f"{name} must be a 1-D array, got shape {a.shape}")
    return a


def _run(name: str, inputs: list[Any], params: tuple[float, ...]) -> tuple[Arr, ...]:
    spec = BY_NAME[name]
    arrays = [_arr(x, f"{name} input {i}") for i, x in enumerate(inputs)]
    n = arrays[0].shape[0] if arrays else 0
    if any(a.shape[0] != n for a in arrays):
        raise DataError(f"{name}: input arrays differ in length")
    for p, v in zip(spec.params, params, strict=True):
        if (p.integer and v != int(v)) or not p.lo <= v <= p.hi:
            raise DataError(f"{name}: {p.name}={v!r} out of range [{p.lo:g}, {p.hi:g}]")
    pa = np.zeros(3)
    pa[: len(params)] = params
    out = run_batch(spec.kind, np.stack(arrays) if n else np.zeros((len(arrays), 0)), pa,
                    len(spec.outputs), max(spec.state(tuple(params)), 1))
    return tuple(out[i] for i in range(out.shape[0]))


def _one(name: str, inputs: list[Any], params: tuple[float, ...]) -> Arr:
    return _run(name, inputs, params)[0]


def _check(name: str, x: Arr, n: int, lo: int = 2) -> None:
    if type(n) is int and lo <= n <= 100_000:  # the common case, checked cheaply
        return
    if n != int(n) or not lo <= n <= 100_000:
        raise DataError(f"{name}: timeperiod={n!r} out of range [{lo}, 100000]")


# --- moving averages -----------------------------------------------------------------------
def sma(real: Any, timeperiod: int = 30) -> Arr:
    x = _arr(real, "real")
    _check("sma", x, timeperiod)
    return fast.sma(x, int(timeperiod))  # type: ignore[no-any-return]


def ema(real: Any, timeperiod: int = 30) -> Arr:
    x = _arr(real, "real")
    _check("ema", x, timeperiod)
    return fast.ema(x, int(timeperiod))  # type: ignore[no-any-return]


def wma(real: Any, timeperiod: int = 30) -> Arr:
    return _one("wma", [real], (timeperiod,))


def dema(real: Any, timeperiod: int = 30) -> Arr:
    return _one("dema", [real], (timeperiod,))


def tema(real: Any, timeperiod: int = 30) -> Arr:
    return _one("tema", [real], (timeperiod,))


def kama(real: Any, timeperiod: int = 30) -> Arr:
    return _one("kama", [real], (timeperiod,))


def hma(real: Any, timeperiod: int = 20) -> Arr:
    return _one("hma", [real], (timeperiod,))


def vwap(high: Any, low: Any, close: Any, volume: Any, timeperiod: int = 20) -> Arr:
    return _one("vwap", [high, low, close, volume], (timeperiod,))


# --- momentum ------------------------------------------------------------------------------
def rsi(real: Any, timeperiod: int = 14) -> Arr:
    x = _arr(real, "real")
    _check("rsi", x, timeperiod)
    return fast.rsi(x, int(timeperiod))  # type: ignore[no-any-return]


def roc(real: Any, timeperiod: int = 10) -> Arr:
    return _one("roc", [real], (timeperiod,))


def mom(real: Any, timeperiod: int = 10) -> Arr:
    return _one("mom", [real], (timeperiod,))


def macd(real: Any, fastperiod: int = 12, slowperiod: int = 26, signalperiod: int = 9
         ) -> tuple[Arr, Arr, Arr]:
    """(macd, macdsignal, macdhist)."""
    x = _arr(real, "real")
    _check("macd", x, fastperiod)
    _check("macd", x, slowperiod)
    _check("macd", x, signalperiod, 1)
    return fast.macd(x, int(fastperiod), int(slowperiod), int(signalperiod))  # type: ignore[no-any-return]


def ppo(real: Any, fastperiod: int = 12, slowperiod: int = 26, matype: int = 1) -> Arr:
    return _one("ppo", [real], (fastperiod, slowperiod, matype))


def stoch(high: Any, low: Any, close: Any, fastk_period: int = 5, slowk_period: int = 3,
          slowd_period: int = 3) -> tuple[Arr, Arr]:
    """(slowk, slowd) with SMA smoothing (TA-Lib matype 0)."""
    k, d = _run("stoch", [high, low, close], (fastk_period, slowk_period, slowd_period))
    return k, d


def stochrsi(real: Any, timeperiod: int = 14, fastk_period: int = 5, fastd_period: int = 3
             ) -> tuple[Arr, Arr]:
    """(fastk, fastd)."""
    k, d = _run("stochrsi", [real], (timeperiod, fastk_period, fastd_period))
    return k, d


def willr(high: Any, low: Any, close: Any, timeperiod: int = 14) -> Arr:
    return _one("willr", [high, low, close], (timeperiod,))


def cci(high: Any, low: Any, close: Any, timeperiod: int = 14) -> Arr:
    return _one("cci", [high, low, close], (timeperiod,))


def mfi(high: Any, low: Any, close: Any, volume: Any, timeperiod: int = 14) -> Arr:
    return _one("mfi", [high, low, close, volume], (timeperiod,))


def adx(high: Any, low: Any, close: Any, timeperiod: int = 14) -> Arr:
    return _run("adx", [high, low, close], (timeperiod,))[0]


def plus_di(high: Any, low: Any, close: Any, timeperiod: int = 14) -> Arr:
    return _run("adx", [high, low, close], (timeperiod,))[1]


def minus_di(high: Any, low: Any, close: Any, timeperiod: int = 14) -> Arr:
    return _run("adx", [high, low, close], (timeperiod,))[2]


def aroon(high: Any, low: Any, timeperiod: int = 14) -> tuple[Arr, Arr]:
    """(aroondown, aroonup) — TA-Lib's order."""
    up, down = _run("aroon", [high, low], (timeperiod,))
    return down, up


# --- volatility ----------------------------------------------------------------------------
def trange(high: Any, low: Any, close: Any) -> Arr:
    return _one("trange", [high, low, close], ())


def atr(high: Any, low: Any, close: Any, timeperiod: int = 14) -> Arr:
    return _one("atr", [high, low, close], (timeperiod,))


def natr(high: Any, low: Any, close: Any, timeperiod: int = 14) -> Arr:
    return _one("natr", [high, low, close], (timeperiod,))


def stddev(real: Any, timeperiod: int = 5, nbdev: float = 1.0) -> Arr:
    return _one("stddev", [real], (timeperiod, nbdev))


def bbands(real: Any, timeperiod: int = 5, nbdevup: float = 2.0, nbdevdn: float = 2.0
           ) -> tuple[Arr, Arr, Arr]:
    """(upperband, middleband, lowerband), SMA middle band (TA-Lib matype 0)."""
    x = _arr(real, "real")
    _check("bbands", x, timeperiod)
    return fast.bbands(x, int(timeperiod), float(nbdevup), float(nbdevdn))  # type: ignore[no-any-return]


def bbands_pctb(real: Any, timeperiod: int = 5, nbdevup: float = 2.0, nbdevdn: float = 2.0) -> Arr:
    return _run("bbands", [real], (timeperiod, nbdevup, nbdevdn))[3]


def bbands_width(real: Any, timeperiod: int = 5, nbdevup: float = 2.0, nbdevdn: float = 2.0
                 ) -> Arr:
    return _run("bbands", [real], (timeperiod, nbdevup, nbdevdn))[4]


def keltner(high: Any, low: Any, close: Any, timeperiod: int = 20, multiplier: float = 2.0,
            atrperiod: int = 10) -> tuple[Arr, Arr, Arr]:
    """(upper, middle, lower)."""
    u, m, lo = _run("keltner", [high, low, close], (timeperiod, multiplier, atrperiod))
    return u, m, lo


def donchian(high: Any, low: Any, timeperiod: int = 20) -> tuple[Arr, Arr, Arr]:
    """(upper, middle, lower)."""
    u, m, lo = _run("donchian", [high, low], (timeperiod,))
    return u, m, lo


def zscore(real: Any, timeperiod: int = 20) -> Arr:
    return _one("zscore", [real], (timeperiod,))


def highest(real: Any, timeperiod: int = 30) -> Arr:
    """TA-Lib MAX."""
    return _one("highest", [real], (timeperiod,))


def lowest(real: Any, timeperiod: int = 30) -> Arr:
    """TA-Lib MIN."""
    return _one("lowest", [real], (timeperiod,))


def linearreg_slope(real: Any, timeperiod: int = 14) -> Arr:
    return _one("linearreg_slope", [real], (timeperiod,))


# --- volume --------------------------------------------------------------------------------
def obv(real: Any, volume: Any) -> Arr:
    return _one("obv", [real, volume], ())


def ad(high: Any, low: Any, close: Any, volume: Any) -> Arr:
    return _one("ad", [high, low, close, volume], ())


def adosc(high: Any, low: Any, close: Any, volume: Any, fastperiod: int = 3,
          slowperiod: int = 10) -> Arr:
    return _one("adosc", [high, low, close, volume], (fastperiod, slowperiod))


def vol_ratio(volume: Any, timeperiod: int = 20) -> Arr:
    return _one("vol_ratio", [volume], (timeperiod,))


def surge(volume: Any, close: Any, timeperiod: int = 20) -> Arr:
    return _one("surge", [volume, close], (timeperiod,))


# --- candles -------------------------------------------------------------------------------
def cdl_doji(open: Any, high: Any, low: Any, close: Any) -> Arr:
    return _one("doji", [open, high, low, close], ())


def cdl_engulfing(open: Any, high: Any, low: Any, close: Any) -> Arr:
    return _one("engulfing", [open, high, low, close], ())


def cdl_hammer(open: Any, high: Any, low: Any, close: Any) -> Arr:
    return _one("hammer", [open, high, low, close], ())


def gap_up(open: Any, high: Any, low: Any, close: Any) -> Arr:
    return _one("gap_up", [open, high, low, close], ())


def gap_down(open: Any, high: Any, low: Any, close: Any) -> Arr:
    return _one("gap_down", [open, high, low, close], ())
