"""The one place where market-data floats become order-path Decimals, and where money is
rounded: KRW to whole won, prices onto the KRX tick grid.

``to_decimal`` goes through ``repr`` (the shortest string that round-trips), never through
the float's binary expansion: ``to_decimal(0.1) == Decimal("0.1")``.
"""

from __future__ import annotations

import math
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal

from jts.errors import DataError
from jts.krx import Market, Rounding, round_price
from jts.types import Side

WON = Decimal(1)
ZERO = Decimal(0)


def to_decimal(x: float | int | str | Decimal) -> Decimal:
    """Exact decimal of what ``x`` prints as; rejects NaN and infinities."""
    if isinstance(x, Decimal):
        if not x.is_finite():
            raise DataError(f"not a finite amount: {x}")
        return x
    if isinstance(x, float):
        if not math.isfinite(x):
            raise DataError(f"not a finite amount: {x}")
        return Decimal(repr(float(x)))     # float(): numpy floats repr as np.float64(…)
    if isinstance(x, bool):
        raise DataError("a bool is not an amount")
    if isinstance(x, int):
        return Decimal(x)
    try:
        d = Decimal(x.strip())
    except ArithmeticError as exc:
        raise DataError(f"not a decimal amount: {x!r}") from exc
    if not d.is_finite():
        raise DataError(f"not a finite amount: {x!r}")
    return d


def to_float(x: Decimal) -> float:
    """Decimal → float for market-data arrays and kernels (never for the ledger)."""
    return float(x)


def krw(amount: Decimal, mode: str = "down") -> Decimal:
    """Round a won amount to whole won. ``down`` (truncate toward zero, the brokers' and
    the tax office's convention for fees and tax), ``up`` or ``half_up``."""
    rounding = {"down": ROUND_DOWN, "up": ROUND_UP, "half_up": ROUND_HALF_UP}.get(mode)
    if rounding is None:
        raise ValueError(f"unknown KRW rounding mode {mode!r}")
    return amount.quantize(WON, rounding=rounding)


def adverse(side: Side) -> Rounding:
    """The rounding that is worse for the trader: buys pay up, sells receive down."""
    return Rounding.UP if side is Side.BUY else Rounding.DOWN


def passive(side: Side) -> Rounding:
    """The rounding that never crosses further: buy limits round down, sell limits up."""
    return Rounding.DOWN if side is Side.BUY else Rounding.UP


def round_to_tick(price: Decimal | float, mode: Side | Rounding | str = Rounding.NEAREST,
                  market: Market | str | None = None) -> Decimal:
    """Round onto the KRX tick grid. ``mode`` is a :class:`Rounding`, or a :class:`Side`
    meaning the *adverse* direction for that side (buy → up, sell → down), which is what a
    simulated fill needs; use :func:`passive` for limit prices."""
    p = to_decimal(price)
    rounding = adverse(mode) if isinstance(mode, Side) else Rounding(mode)
    return round_price(p, rounding, market)
