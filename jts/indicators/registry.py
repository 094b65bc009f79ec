"""The indicator catalogue: one ``Spec`` per kernel (inputs, parameters, outputs, lookback).

The DSL resolves function names here (``FUNCTIONS`` maps a DSL name to a spec and an output
index); the public API and the compiler read state sizes and TA-Lib lookbacks from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from jts.indicators import momentum as mo
from jts.indicators import moving as mv
from jts.indicators import patterns as pt
from jts.indicators import volatility as vl
from jts.indicators import volume as vo

P = tuple[float, ...]


@dataclass(frozen=True)
class Param:
    name: str
    default: float
    lo: float
    hi: float = 100_000.0
    integer: bool = True


@dataclass(frozen=True)
class Spec:
    name: str
    kind: int
    inputs: tuple[str, ...]  # "src" = a series argument; otherwise a fixed bar field
    params: tuple[Param, ...]
    outputs: tuple[str, ...]
    lookback: Callable[[P, int], int]  # (params, output index) -> leading NaN bars
    state: Callable[[P], int]
    doc: str
    talib: str | None = None


def _n(d: float, lo: float = 2) -> Param:
    return Param("timeperiod", d, lo)


def _lb(f: Callable[[P], int]) -> Callable[[P, int], int]:
    return lambda p, _i: f(p)


def _ss(module: object, kind: int) -> Callable[[P], int]:
    fn = module.state_size  # type: ignore[attr-defined]
    return lambda p: int(fn(kind, p))


def _macd_lb(p: P) -> int:
    return int(max(p[0], p[1])) - 1 + int(p[2]) - 1


def _hma_lb(p: P) -> int:
    n = int(p[0])
    return n - 1 + max(int(math.sqrt(n)), 1) - 1


SRC, HLC, HL, HLCV, OHLC = ("src",), ("high", "low", "close"), ("high", "low"), \
    ("high", "low", "close", "volume"), ("open", "high", "low", "close")

SPECS: tuple[Spec, ...] = (
    Spec("sma", mv.SMA, SRC, (_n(30),), ("sma",), _lb(lambda p: int(p[0]) - 1),
         _ss(mv, mv.SMA), "simple moving average", "SMA"),
    Spec("ema", mv.EMA, SRC, (_n(30),), ("ema",), _lb(lambda p: int(p[0]) - 1),
         _ss(mv, mv.EMA), "exponential MA seeded with the SMA", "EMA"),
    Spec("wma", mv.WMA, SRC, (_n(30),), ("wma",), _lb(lambda p: int(p[0]) - 1),
         _ss(mv, mv.WMA), "linearly weighted MA", "WMA"),
    Spec("dema", mv.DEMA, SRC, (_n(30),), ("dema",), _lb(lambda p: 2 * (int(p[0]) - 1)),
         _ss(mv, mv.DEMA), "double EMA", "DEMA"),
    Spec("tema", mv.TEMA, SRC, (_n(30),), ("tema",), _lb(lambda p: 3 * (int(p[0]) - 1)),
         _ss(mv, mv.TEMA), "triple EMA", "TEMA"),
    Spec("kama", mv.KAMA, SRC, (_n(30),), ("kama",), _lb(lambda p: int(p[0])),
         _ss(mv, mv.KAMA), "Kaufman adaptive MA", "KAMA"),
    Spec("hma", mv.HMA, SRC, (_n(20),), ("hma",), _lb(_hma_lb), _ss(mv, mv.HMA),
         "Hull MA: WMA(2*WMA(n/2) - WMA(n), sqrt n)"),
    Spec("vwap", mv.VWAP, HLCV, (_n(20, 1),), ("vwap",), _lb(lambda p: int(p[0]) - 1),
         _ss(mv, mv.VWAP), "rolling VWAP of the typical price over n bars"),
    Spec("rsi", mo.RSI, SRC, (_n(14),), ("rsi",), _lb(lambda p: int(p[0])),
         _ss(mo, mo.RSI), "Wilder relative strength index", "RSI"),
    Spec("roc", mo.ROC, SRC, (_n(10, 1),), ("roc",), _lb(lambda p: int(p[0])),
         _ss(mo, mo.ROC), "rate of change in percent", "ROC"),
    Spec("mom", mo.MOM, SRC, (_n(10, 1),), ("mom",), _lb(lambda p: int(p[0])),
         _ss(mo, mo.MOM), "momentum: x - x[n]", "MOM"),
    Spec("macd", mo.MACD, SRC,
         (Param("fastperiod", 12, 2), Param("slowperiod", 26, 2), Param("signalperiod", 9, 1)),
         ("macd", "macdsignal", "macdhist"), _lb(_macd_lb), _ss(mo, mo.MACD),
         "MACD line, signal and histogram", "MACD"),
    Spec("ppo", mo.PPO, SRC, (Param("fastperiod", 12, 2), Param("slowperiod", 26, 2),
                              Param("matype", 1, 0, 1)),
         ("ppo",), _lb(lambda p: int(max(p[0], p[1])) - 1), _ss(mo, mo.PPO),
         "percentage price oscillator (matype 0 SMA, 1 EMA)", "PPO"),
    Spec("stoch", mo.STOCH, HLC,
         (Param("fastk_period", 5, 1), Param("slowk_period", 3, 1), Param("slowd_period", 3, 1)),
         ("slowk", "slowd"), _lb(lambda p: int(p[0] + p[1] + p[2]) - 3), _ss(mo, mo.STOCH),
         "stochastic %K/%D (SMA smoothing)", "STOCH"),
    Spec("stochrsi", mo.STOCHRSI, SRC,
         (_n(14), Param("fastk_period", 5, 1), Param("fastd_period", 3, 1)),
         ("fastk", "fastd"), _lb(lambda p: int(p[0] + p[1] + p[2]) - 2), _ss(mo, mo.STOCHRSI),
         "stochastic RSI", "STOCHRSI"),
    Spec("willr", mo.WILLR, HLC, (_n(14),), ("willr",), _lb(lambda p: int(p[0]) - 1),
         _ss(mo, mo.WILLR), "Williams %R", "WILLR"),
    Spec("cci", mo.CCI, HLC, (_n(14),), ("cci",), _lb(lambda p: int(p[0]) - 1),
         _ss(mo, mo.CCI), "commodity channel index", "CCI"),
    Spec("mfi", mo.MFI, HLCV, (_n(14),), ("mfi",), _lb(lambda p: int(p[0])),
         _ss(mo, mo.MFI), "money flow index", "MFI"),
    Spec("adx", mo.ADX, HLC, (_n(14),), ("adx", "plus_di", "minus_di"),
         lambda p, i: 2 * int(p[0]) - 1 if i == 0 else int(p[0]), _ss(mo, mo.ADX),
         "average directional index, +DI, -DI", "ADX"),
    Spec("aroon", mo.AROON, HL, (_n(14),), ("aroonup", "aroondown"),
         _lb(lambda p: int(p[0])), _ss(mo, mo.AROON), "Aroon up/down", "AROON"),
    Spec("trange", vl.TRANGE, HLC, (), ("trange",), _lb(lambda p: 1), _ss(vl, vl.TRANGE),
         "true range", "TRANGE"),
    Spec("atr", vl.ATR, HLC, (_n(14, 1),), ("atr",), _lb(lambda p: int(p[0])),
         _ss(vl, vl.ATR), "Wilder average true range", "ATR"),
    Spec("natr", vl.NATR, HLC, (_n(14, 1),), ("natr",), _lb(lambda p: int(p[0])),
         _ss(vl, vl.NATR), "ATR as a percentage of close", "NATR"),
    Spec("stddev", vl.STDDEV, SRC, (_n(5), Param("nbdev", 1.0, 0.0, 1e6, False)), ("stddev",),
         _lb(lambda p: int(p[0]) - 1), _ss(vl, vl.STDDEV), "population standard deviation",
         "STDDEV"),
    Spec("bbands", vl.BBANDS, SRC,
         (_n(5), Param("nbdevup", 2.0, 0.0, 1e6, False), Param("nbdevdn", 2.0, 0.0, 1e6, False)),
         ("upperband", "middleband", "lowerband", "pctb", "width"),
         _lb(lambda p: int(p[0]) - 1), _ss(vl, vl.BBANDS),
         "Bollinger bands (SMA), %b and width", "BBANDS"),
    Spec("keltner", vl.KELTNER, HLC,
         (_n(20), Param("multiplier", 2.0, 0.0, 1e6, False), Param("atrperiod", 10, 1)),
         ("upper", "middle", "lower"), _lb(lambda p: int(max(p[0] - 1, p[2]))),
         _ss(vl, vl.KELTNER), "Keltner channel: EMA(close) ± k·ATR"),
    Spec("donchian", vl.DONCHIAN, HL, (_n(20, 1),), ("upper", "middle", "lower"),
         _lb(lambda p: int(p[0]) - 1), _ss(vl, vl.DONCHIAN), "Donchian channel"),
    Spec("zscore", vl.ZSCORE, SRC, (_n(20),), ("zscore",), _lb(lambda p: int(p[0]) - 1),
         _ss(vl, vl.ZSCORE), "(x - SMA) / population SD; NaN when SD is 0"),
    Spec("highest", vl.MAX, SRC, (_n(30, 1),), ("max",), _lb(lambda p: int(p[0]) - 1),
         _ss(vl, vl.MAX), "highest value over n bars", "MAX"),
    Spec("lowest", vl.MIN, SRC, (_n(30, 1),), ("min",), _lb(lambda p: int(p[0]) - 1),
         _ss(vl, vl.MIN), "lowest value over n bars", "MIN"),
    Spec("linearreg_slope", vl.LINREG_SLOPE, SRC, (_n(14),), ("slope",),
         _lb(lambda p: int(p[0]) - 1), _ss(vl, vl.LINREG_SLOPE),
         "least-squares slope per bar", "LINEARREG_SLOPE"),
    Spec("obv", vo.OBV, ("close", "volume"), (), ("obv",), _lb(lambda p: 0), _ss(vo, vo.OBV),
         "on-balance volume", "OBV"),
    Spec("ad", vo.AD, HLCV, (), ("ad",), _lb(lambda p: 0), _ss(vo, vo.AD),
         "accumulation/distribution line", "AD"),
    Spec("adosc", vo.ADOSC, HLCV, (Param("fastperiod", 3, 2), Param("slowperiod", 10, 2)),
         ("adosc",), _lb(lambda p: int(max(p[0], p[1])) - 1), _ss(vo, vo.ADOSC),
         "Chaikin A/D oscillator", "ADOSC"),
    Spec("vol_ratio", vo.VOLRATIO, ("volume",), (_n(20, 1),), ("vol_ratio",),
         _lb(lambda p: int(p[0])), _ss(vo, vo.VOLRATIO),
         "volume / mean volume of the previous n bars"),
    Spec("surge", vo.SURGE, ("volume", "close"), (_n(20),), ("surge",),
         _lb(lambda p: int(p[0])), _ss(vo, vo.SURGE),
         "volume z-score (previous n bars) × 1-bar return %"),
    Spec("doji", pt.DOJI, OHLC, (), ("doji",), _lb(lambda p: 10), _ss(pt, pt.DOJI),
         "doji: 100 or 0", "CDLDOJI"),
    Spec("engulfing", pt.ENGULFING, OHLC, (), ("engulfing",), _lb(lambda p: 2),
         _ss(pt, pt.ENGULFING), "engulfing: ±100 (±80 edge equal) or 0", "CDLENGULFING"),
    Spec("hammer", pt.HAMMER, OHLC, (), ("hammer",), _lb(lambda p: 11), _ss(pt, pt.HAMMER),
         "hammer: 100 or 0", "CDLHAMMER"),
    Spec("gap_up", pt.GAP_UP, OHLC, (), ("gap_up",), _lb(lambda p: 1), _ss(pt, pt.GAP_UP),
         "100 when low > previous high"),
    Spec("gap_down", pt.GAP_DOWN, OHLC, (), ("gap_down",), _lb(lambda p: 1),
         _ss(pt, pt.GAP_DOWN), "100 when high < previous low"),
)

BY_NAME: dict[str, Spec] = {s.name: s for s in SPECS}

# DSL function name -> (spec, output index); multi-output indicators get one name per output.
FUNCTIONS: dict[str, tuple[Spec, int]] = {s.name: (s, 0) for s in SPECS}
for _alias, _base, _idx in (
    ("macd_signal", "macd", 1), ("macd_hist", "macd", 2),
    ("stoch_k", "stoch", 0), ("stoch_d", "stoch", 1),
    ("stochrsi_k", "stochrsi", 0), ("stochrsi_d", "stochrsi", 1),
    ("plus_di", "adx", 1), ("minus_di", "adx", 2),
    ("aroon_up", "aroon", 0), ("aroon_down", "aroon", 1),
    ("bb_upper", "bbands", 0), ("bb_middle", "bbands", 1), ("bb_lower", "bbands", 2),
    ("bb_pctb", "bbands", 3), ("bb_width", "bbands", 4),
    ("kc_upper", "keltner", 0), ("kc_middle", "keltner", 1), ("kc_lower", "keltner", 2),
    ("dc_upper", "donchian", 0), ("dc_middle", "donchian", 1), ("dc_lower", "donchian", 2),
):
    FUNCTIONS[_alias] = (BY_NAME[_base], _idx)
del FUNCTIONS["stoch"], FUNCTIONS["stochrsi"], FUNCTIONS["aroon"], FUNCTIONS["bbands"]
del FUNCTIONS["keltner"], FUNCTIONS["donchian"]

MAX_OUTPUTS = 5
MAX_INPUTS = 4
MAX_PARAMS = 3
