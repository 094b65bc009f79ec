"""KRX market rules as data: tick sizes (with effective dates), daily price limits, lot size,
and market membership (KOSPI/KOSDAQ) of the bundled symbols.

Prices here are exact (``Decimal``); :func:`tick_arrays` exports the current table as
float64 arrays for numba kernels (the backtester), so both paths use the same numbers.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import numpy as np
import numpy.typing as npt

from jts.datafiles import load_data_toml
from jts.errors import ConfigError, DataError

LOT_SIZE = Decimal(1)          # KRX stocks trade in single shares
LIMIT_RATE = Decimal("0.30")   # daily price limit: ±30 % of the base (previous close)


class Market(enum.StrEnum):
    KOSPI = "KOSPI"
    KOSDAQ = "KOSDAQ"


class Rounding(enum.StrEnum):
    DOWN = "down"
    UP = "up"
    NEAREST = "nearest"   # ties go up


@dataclass(frozen=True)
class TickTable:
    """One tick-size regime: ``bands`` are ``(lower_bound, tick)`` ascending; a price ``p``
    uses the tick of the last band whose lower bound is ``<= p``."""

    effective: date
    market: Market | None          # None: applies to every market
    bands: tuple[tuple[Decimal, Decimal], ...]

    def tick(self, price: Decimal) -> Decimal:
        tick = self.bands[0][1]
        for lower, size in self.bands:
            if price >= lower:
                tick = size
            else:
                break
        return tick


def _bands(*pairs: tuple[int, int]) -> tuple[tuple[Decimal, Decimal], ...]:
    return tuple((Decimal(lo), Decimal(t)) for lo, t in pairs)


# The unified KOSPI/KOSDAQ table in force since 2023-01-25 (KRX 호가가격단위 개편).
UNIFIED_2023 = TickTable(date(2023, 1, 25), None, _bands(
    (0, 1), (2_000, 5), (5_000, 10), (20_000, 50), (50_000, 100), (200_000, 500),
    (500_000, 1_000)))
# Before 2023-01-25 the markets differed (kept for back-testing older data).
KOSPI_OLD = TickTable(date(2000, 1, 1), Market.KOSPI, _bands(
    (0, 1), (1_000, 5), (5_000, 10), (10_000, 50), (50_000, 100), (100_000, 500),
    (500_000, 1_000)))
KOSDAQ_OLD = TickTable(date(2000, 1, 1), Market.KOSDAQ, _bands(
    (0, 1), (1_000, 5), (5_000, 10), (10_000, 50), (50_000, 100)))
TICK_TABLES: tuple[TickTable, ...] = (KOSPI_OLD, KOSDAQ_OLD, UNIFIED_2023)


def table_for(market: Market | str | None = None, on: date | None = None) -> TickTable:
    """The tick table in force on ``on`` (default: the current one) for ``market``."""
    if on is None or on >= UNIFIED_2023.effective:
        return UNIFIED_2023
    m = Market(market) if market is not None else Market.KOSPI
    best: TickTable | None = None
    for table in TICK_TABLES:
        if table.effective <= on and table.market in (None, m):
            if best is None or table.effective >= best.effective:
                best = table
    if best is None:
        raise DataError(f"no KRX tick table in force on {on.isoformat()}")
    return best


def _dec(price: Decimal | float | int | str) -> Decimal:
    if isinstance(price, Decimal):
        return price
    if isinstance(price, float):
        return Decimal(repr(price))
    return Decimal(price)


def tick_size(price: Decimal | float | int | str, market: Market | str | None = None,
              on: date | None = None) -> Decimal:
    """The KRX tick size at ``price`` (a price on a band's lower bound uses that band)."""
    p = _dec(price)
    if p <= 0:
        raise DataError(f"price must be positive, got {p}")
    return table_for(market, on).tick(p)


def on_tick(price: Decimal | float | int | str, market: Market | str | None = None,
            on: date | None = None) -> bool:
    """True when ``price`` is a valid KRX order price (a multiple of its tick)."""
    p = _dec(price)
    return p > 0 and p % tick_size(p, market, on) == 0


def round_price(price: Decimal | float | int | str, direction: Rounding | str = Rounding.NEAREST,
                market: Market | str | None = None, on: date | None = None) -> Decimal:
    """Round ``price`` onto the KRX tick grid. Idempotent and monotone: every band boundary
    is a multiple of both adjacent ticks, so rounding within a band never leaves it."""
    p = _dec(price)
    if p <= 0:
        raise DataError(f"price must be positive, got {p}")
    mode = Rounding(direction)
    t = tick_size(p, market, on)
    down = (p / t).to_integral_value(ROUND_FLOOR) * t
    if down == p:
        return p
    up = (p / t).to_integral_value(ROUND_CEILING) * t
    if mode is Rounding.DOWN:
        return down if down > 0 else t
    if mode is Rounding.UP:
        return up
    return up if (p - down) >= (up - p) or down <= 0 else down


def price_limits(prev_close: Decimal | float | int | str, market: Market | str | None = None,
                 on: date | None = None) -> tuple[Decimal, Decimal]:
    """Daily ``(lower, upper)`` price limits: base ±30 %, rounded inward to the tick grid."""
    base = _dec(prev_close)
    if base <= 0:
        raise DataError(f"base price must be positive, got {base}")
    width = base * LIMIT_RATE
    upper = round_price(base + width, Rounding.DOWN, market, on)
    lower = round_price(base - width, Rounding.UP, market, on)
    return lower, upper


def tick_arrays() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The current table as float64 ``(lower_bounds, ticks)`` for numba kernels:
    ``ticks[np.searchsorted(lower_bounds, price, side="right") - 1]`` is the tick."""
    lows = np.array([float(lo) for lo, _ in UNIFIED_2023.bands], dtype=np.float64)
    ticks = np.array([float(t) for _, t in UNIFIED_2023.bands], dtype=np.float64)
    return lows, ticks


# --- bundled symbols --------------------------------------------------------------------

@dataclass(frozen=True)
class SymbolInfo:
    code: str
    name: str
    market: Market
    price: Decimal       # a plausible reference price level (simulation seed, not a quote)


@functools.cache
def bundled_symbols() -> tuple[SymbolInfo, ...]:
    """Real KRX codes and names with their market, from ``jts/data/krx_symbols.toml``."""
    doc, path = load_data_toml("krx_symbols.toml", what="symbol")
    out: list[SymbolInfo] = []
    for i, row in enumerate(doc.get("symbol", [])):
        key = f"symbol[{i}]"
        try:
            code, name = str(row["code"]), str(row["name"])
            market, price = Market(row["market"]), Decimal(str(row["price"]))
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"bad symbol row: {exc}", file=path, key=key) from exc
        if len(code) != 6 or not code.isdigit():
            raise ConfigError(f"code must be 6 digits, got {code!r}", file=path, key=key)
        out.append(SymbolInfo(code, name, market, price))
    return tuple(out)


@functools.cache
def _by_code() -> dict[str, SymbolInfo]:
    return {s.code: s for s in bundled_symbols()}


def symbol_info(code: str) -> SymbolInfo | None:
    return _by_code().get(code)


def market_of(code: str) -> Market | None:
    """KOSPI/KOSDAQ membership of a bundled symbol; ``None`` when the code is not bundled."""
    info = _by_code().get(code)
    return info.market if info else None


def round_prices_f64(prices: npt.NDArray[np.float64], direction: Rounding | str = "nearest"
                     ) -> npt.NDArray[np.float64]:
    """Vectorised float64 rounding onto the current tick grid (simulation and kernels).
    Exact for the integer won prices KRX uses; prices below 1 are raised to 1."""
    lows, ticks = tick_arrays()
    p = np.maximum(np.asarray(prices, dtype=np.float64), 1.0)
    t = ticks[np.searchsorted(lows, p, side="right") - 1]
    mode = Rounding(direction)
    q = p / t
    if mode is Rounding.DOWN:
        r = np.floor(q + 1e-9)
    elif mode is Rounding.UP:
        r = np.ceil(q - 1e-9)
    else:
        r = np.floor(q + 0.5)
    out: npt.NDArray[np.float64] = np.maximum(r * t, 1.0)
    return out
