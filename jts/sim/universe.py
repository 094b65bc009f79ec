"""The simulated market's universe: which symbols trade and their per-symbol parameters
(start price, daily volatility, trade rate, typical trade size), derived from the seed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from jts.errors import ConfigError
from jts.krx import Market, bundled_symbols, round_price, symbol_info

SYNTHETIC_PREFIX = "S"   # codes beyond the bundled list: S00001… (never a real KRX code)


@dataclass(frozen=True)
class SimSymbol:
    code: str
    name: str
    market: Market
    start_price: float
    daily_vol: float          # standard deviation of a day's log return
    trades_per_min: float     # average prints per minute of session time (before the U-curve)
    trade_qty: float          # median shares per print


def make_universe(symbols: int | Sequence[str] | None, seed: int) -> list[SimSymbol]:
    """``None``: every bundled symbol; ``n``: the first ``n`` (synthetic ones past the
    bundled list); a list of codes: those (bundled codes, or synthetic ``S…`` codes)."""
    bundled = bundled_symbols()
    if symbols is None:
        infos = [(s.code, s.name, s.market, float(s.price)) for s in bundled]
    elif isinstance(symbols, int):
        if symbols < 1:
            raise ConfigError(f"need at least one symbol, got {symbols}", key="market.symbols")
        infos = [(s.code, s.name, s.market, float(s.price)) for s in bundled[:symbols]]
        infos += [_synthetic(i, seed) for i in range(1, symbols - len(infos) + 1)]
    else:
        infos = []
        for code in symbols:
            info = symbol_info(code)
            if info is not None:
                infos.append((info.code, info.name, info.market, float(info.price)))
            elif code.startswith(SYNTHETIC_PREFIX) and code[1:].isdigit():
                infos.append(_synthetic(int(code[1:]), seed))
            else:
                raise ConfigError(f"unknown symbol {code!r} (not in jts/data/krx_symbols.toml)",
                                  key="market.symbols")
        if len({c for c, *_ in infos}) != len(infos):
            raise ConfigError("duplicate symbols", key="market.symbols")
    rng = np.random.default_rng([seed, 7])
    out: list[SimSymbol] = []
    for code, name, market, price in infos:
        vol = float(rng.uniform(0.012, 0.030) * (1.3 if market is Market.KOSDAQ else 1.0))
        rate = float(rng.uniform(6.0, 15.0))
        notional = float(rng.lognormal(np.log(5e6), 0.5))     # ≈ 5 million won per print
        qty = max(1.0, round(notional / price))
        start = float(round_price(price * float(rng.uniform(0.97, 1.03)), "nearest"))
        out.append(SimSymbol(code, name, market, start, vol, rate, qty))
    return out


def _synthetic(i: int, seed: int) -> tuple[str, str, Market, float]:
    rng = np.random.default_rng([seed, 11, i])
    price = float(np.exp(rng.uniform(np.log(1_000), np.log(300_000))))
    market = Market.KOSDAQ if i % 2 else Market.KOSPI
    return f"{SYNTHETIC_PREFIX}{i:05d}", f"시뮬종목{i}", market, price
