"""Every indicator TA-Lib has agrees with TA-Lib (the oracle) to 1e-9 relative, NaN for NaN:
random walks, constant series, leading NaNs and inputs shorter than the period."""

from __future__ import annotations

import numpy as np
import pytest
import talib

import jts.indicators as ji


def _data(kind: str, n: int = 300) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    if kind == "const":
        c = np.full(n, 50.0)
        o, h, lo, v = c.copy(), c + 1, c - 1, np.full(n, 1000.0)
    else:
        c = 100 + np.cumsum(rng.normal(0, 1, n))
        o = c + rng.normal(0, 0.5, n)
        h = np.maximum(o, c) + np.abs(rng.normal(0, 0.5, n))
        lo = np.minimum(o, c) - np.abs(rng.normal(0, 0.5, n))
        v = rng.uniform(1000, 5000, n)
        # some equal candles so ties and doji/engulfing edge cases occur
        o[::17] = c[::17]
    d = {"open": o, "high": h, "low": lo, "close": c, "volume": v}
    if kind == "nanhead":
        for a in d.values():
            a[:7] = np.nan
    if kind == "short":
        d = {k: a[:6] for k, a in d.items()}
    return d


OHLC = ("open", "high", "low", "close")
CASES = [
    # (ours, talib, inputs, params, output reorder)
    ("sma", "SMA", ("close",), (10,), None),
    ("ema", "EMA", ("close",), (10,), None),
    ("wma", "WMA", ("close",), (10,), None),
    ("dema", "DEMA", ("close",), (10,), None),
    ("tema", "TEMA", ("close",), (8,), None),
    ("kama", "KAMA", ("close",), (10,), None),
    ("rsi", "RSI", ("close",), (14,), None),
    ("roc", "ROC", ("close",), (10,), None),
    ("mom", "MOM", ("close",), (10,), None),
    ("macd", "MACD", ("close",), (12, 26, 9), None),
    ("macd", "MACD", ("close",), (26, 12, 5), None),
    ("ppo", "PPO", ("close",), (12, 26, 1), None),
    ("ppo", "PPO", ("close",), (5, 9, 0), None),
    ("stoch", "STOCH", ("high", "low", "close"), (5, 3, 3), None),
    ("stochrsi", "STOCHRSI", ("close",), (14, 5, 3), None),
    ("willr", "WILLR", ("high", "low", "close"), (14,), None),
    ("cci", "CCI", ("high", "low", "close"), (14,), None),
    ("mfi", "MFI", ("high", "low", "close", "volume"), (14,), None),
    ("adx", "ADX", ("high", "low", "close"), (14,), None),
    ("plus_di", "PLUS_DI", ("high", "low", "close"), (14,), None),
    ("minus_di", "MINUS_DI", ("high", "low", "close"), (14,), None),
    ("aroon", "AROON", ("high", "low"), (14,), None),
    ("trange", "TRANGE", ("high", "low", "close"), (), None),
    ("atr", "ATR", ("high", "low", "close"), (14,), None),
    ("atr", "ATR", ("high", "low", "close"), (1,), None),
    ("natr", "NATR", ("high", "low", "close"), (14,), None),
    ("stddev", "STDDEV", ("close",), (5, 1.0), None),
    ("stddev", "STDDEV", ("close",), (20, 2.0), None),
    ("bbands", "BBANDS", ("close",), (20, 2.0, 2.0), None),
    ("bbands", "BBANDS", ("close",), (5, 1.0, 1.5), None),
    ("highest", "MAX", ("close",), (10,), None),
    ("lowest", "MIN", ("close",), (10,), None),
    ("linearreg_slope", "LINEARREG_SLOPE", ("close",), (14,), None),
    ("obv", "OBV", ("close", "volume"), (), None),
    ("ad", "AD", ("high", "low", "close", "volume"), (), None),
    ("adosc", "ADOSC", ("high", "low", "close", "volume"), (3, 10), None),
    ("cdl_doji", "CDLDOJI", OHLC, (), None),
    ("cdl_engulfing", "CDLENGULFING", OHLC, (), None),
    ("cdl_hammer", "CDLHAMMER", OHLC, (), None),
]


def _close(ours: np.ndarray, ref: np.ndarray, scale: float) -> None:
    ref = np.asarray(ref, dtype=np.float64)
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    m = ~np.isnan(ref)
    np.testing.assert_allclose(ours[m], ref[m], rtol=1e-9, atol=1e-9 * scale)


@pytest.mark.parametrize("kind", ["walk", "const", "nanhead", "short"])
@pytest.mark.parametrize(("ours", "ref", "inputs", "params", "_r"), CASES,
                         ids=[f"{c[0]}{c[3]}" for c in CASES])
def test_agrees_with_talib(kind: str, ours: str, ref: str, inputs: tuple[str, ...],
                           params: tuple[float, ...], _r: object) -> None:
    d = _data(kind)
    args = [d[i] for i in inputs]
    tp = params
    if ref in ("STOCH",):
        r = talib.STOCH(*args, fastk_period=tp[0], slowk_period=tp[1], slowk_matype=0,
                        slowd_period=tp[2], slowd_matype=0)
    elif ref == "STOCHRSI":
        r = talib.STOCHRSI(*args, timeperiod=tp[0], fastk_period=tp[1], fastd_period=tp[2],
                           fastd_matype=0)
    elif ref == "BBANDS":
        r = talib.BBANDS(*args, timeperiod=tp[0], nbdevup=tp[1], nbdevdn=tp[2], matype=0)
    elif ref == "PPO":
        r = talib.PPO(*args, fastperiod=tp[0], slowperiod=tp[1], matype=tp[2])
    else:
        r = getattr(talib, ref)(*args, *tp)
    got = getattr(ji, ours)(*args, *tp)
    refs = r if isinstance(r, tuple) else (r,)
    gots = got if isinstance(got, tuple) else (got,)
    assert len(refs) == len(gots)
    scale = float(np.nanmax(np.abs(d["close"]))) if not np.isnan(d["close"]).all() else 1.0
    if ref in ("OBV", "AD", "ADOSC", "MFI"):
        scale *= float(np.nanmax(d["volume"]))
    for g, rr in zip(gots, refs, strict=True):
        _close(g, rr, scale)

