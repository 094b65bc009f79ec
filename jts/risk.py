"""The pre-trade risk gate: pure, serialized, one intent at a time.

``RiskGate.check`` looks at an intent, the portfolio view, the orders in flight and the
last price, and returns a :class:`RiskDecision` value — rejections are values with a reason,
never exceptions. Closing intents (that only reduce a position) pass in every trading state
except when they would flip the position; that is how an emergency stop can still flatten.

A check is O(1): it reads the portfolio's running aggregates (exposure, unrealized P&L, open
positions) and an :class:`InFlightBook` (the orders in flight by (symbol, side), their total
open quantity and symbols) that the desk keeps as orders open, fill and close. A plain list
of :class:`InFlight` is still accepted (turned into a book per call: O(orders)).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal

from jts import krx
from jts.clock import NS
from jts.config import RiskConfig
from jts.money import to_decimal
from jts.portfolio import Portfolio
from jts.types import OrderIntent, OrderType, Side

ZERO = Decimal(0)
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


class TradingState(enum.StrEnum):
    ACTIVE = "active"        # everything allowed within limits
    REDUCING = "reducing"    # only orders that reduce positions
    HALTED = "halted"        # nothing but closing orders issued by the operator (flatten)


@dataclass(frozen=True, slots=True)
class RiskDecision:
    approved: bool
    reason: str = ""
    check: str = ""

    @staticmethod
    def ok() -> RiskDecision:
        return RiskDecision(True)

    @staticmethod
    def reject(check: str, reason: str) -> RiskDecision:
        return RiskDecision(False, reason, check)


@dataclass(frozen=True, slots=True)
class InFlight:
    strategy: str
    symbol: str
    side: Side
    quantity: Decimal


class InFlightBook:
    """The orders in flight (not yet terminal) as the risk gate reads them, kept up to date by
    the desk: ``set`` when an order opens or its open quantity changes, ``discard`` when it
    becomes terminal. Both are idempotent and keyed by client order id."""

    __slots__ = ("_by_key", "_orders", "_quantity", "_symbols")

    def __init__(self, orders: list[InFlight] | None = None) -> None:
        self._orders: dict[str, InFlight] = {}
        self._by_key: dict[tuple[str, Side], dict[str, int]] = {}   # → strategy → orders
        self._symbols: dict[str, int] = {}
        self._quantity = ZERO
        for i, f in enumerate(orders or ()):
            self.set(str(i), f.strategy, f.symbol, f.side, f.quantity)

    def set(self, client_order_id: str, strategy: str, symbol: str, side: Side,
            remaining: Decimal) -> None:
        """Order ``client_order_id`` is in flight with ``remaining`` quantity still open."""
        self.discard(client_order_id)
        self._orders[client_order_id] = InFlight(strategy, symbol, side, remaining)
        by = self._by_key.setdefault((symbol, side), {})
        by[strategy] = by.get(strategy, 0) + 1
        self._symbols[symbol] = self._symbols.get(symbol, 0) + 1
        self._quantity = _EXACT.add(self._quantity, remaining)

    def discard(self, client_order_id: str) -> None:
        f = self._orders.pop(client_order_id, None)
        if f is None:
            return
        key = (f.symbol, f.side)
        by = self._by_key[key]
        if by[f.strategy] == 1:
            del by[f.strategy]
            if not by:
                del self._by_key[key]
        else:
            by[f.strategy] -= 1
        if self._symbols[f.symbol] == 1:
            del self._symbols[f.symbol]
        else:
            self._symbols[f.symbol] -= 1
        self._quantity = _EXACT.subtract(self._quantity, f.quantity) if self._orders else ZERO

    def blocks(self, symbol: str, side: Side, strategy: str, closing: bool) -> bool:
        """An order for ``symbol``/``side`` is in flight from ``strategy`` (from anyone when
        the intent is closing)."""
        by = self._by_key.get((symbol, side))
        return by is not None and (closing or strategy in by)

    @property
    def quantity(self) -> Decimal:
        """Total open quantity of every order in flight."""
        return +self._quantity

    @property
    def symbol_count(self) -> int:
        """How many distinct symbols have an order in flight."""
        return len(self._symbols)

    def __len__(self) -> int:
        return len(self._orders)

    def orders(self) -> list[InFlight]:
        return list(self._orders.values())


class _Scan:
    """A plain list of orders in flight read like a book (each read walks the list)."""

    __slots__ = ("_orders",)

    def __init__(self, orders: list[InFlight]) -> None:
        self._orders = orders

    def blocks(self, symbol: str, side: Side, strategy: str, closing: bool) -> bool:
        return any(f.symbol == symbol and f.side is side and (f.strategy == strategy or closing)
                   for f in self._orders)

    @property
    def quantity(self) -> Decimal:
        return sum((f.quantity for f in self._orders), ZERO)

    @property
    def symbol_count(self) -> int:
        return len({f.symbol for f in self._orders})


class RiskGate:
    def __init__(self, cfg: RiskConfig,
                 prev_close: Callable[[str], float | None] | None = None) -> None:
        self.cfg = cfg
        self.prev_close = prev_close
        self.state = TradingState.ACTIVE
        self.state_reason = ""
        self._recent: deque[int] = deque()
        self.rejections: dict[str, int] = {}
        self._limits_of: RiskConfig | None = None
        self._limit_values = (ZERO, ZERO, ZERO)

    def set_state(self, state: TradingState, reason: str) -> None:
        self.state = state
        self.state_reason = reason

    def check(self, intent: OrderIntent, pf: Portfolio,
              in_flight: InFlightBook | list[InFlight], last_price: float | None,
              now_ns: int) -> RiskDecision:
        """Decide one intent. Pass the desk's :class:`InFlightBook` for an O(1) check."""
        book = in_flight if isinstance(in_flight, InFlightBook) else _Scan(in_flight)
        d = self._check(intent, pf, book, last_price, now_ns)
        if d.approved:
            self._recent.append(now_ns)
        else:
            self.rejections[d.check] = self.rejections.get(d.check, 0) + 1
        return d

    def _krx_price_problem(self, symbol: str, price: Decimal) -> str:
        if not krx.on_tick(price):
            return (f"limit price {price} is not on the KRX tick grid (tick "
                    f"{krx.tick_size(price)})")
        base = self.prev_close(symbol) if self.prev_close is not None else None
        if base:
            lower, upper = krx.price_limits(base)
            if not lower <= price <= upper:
                return f"limit price {price} outside today's limits {lower}..{upper}"
        return ""

    def _limits(self) -> tuple[Decimal, Decimal, Decimal]:
        cfg = self.cfg
        if self._limits_of is not cfg:
            self._limits_of = cfg
            self._limit_values = (to_decimal(cfg.max_daily_loss),
                                  to_decimal(cfg.max_position_notional),
                                  to_decimal(cfg.max_total_exposure))
        return self._limit_values

    def _check(self, intent: OrderIntent, pf: Portfolio, in_flight: InFlightBook | _Scan,
               last_price: float | None, now_ns: int) -> RiskDecision:
        cfg = self.cfg
        if intent.quantity <= 0:
            return RiskDecision.reject("quantity", f"quantity must be positive: {intent.quantity}")
        held = pf.position(intent.symbol)
        reduces = (held > 0 and intent.side is Side.SELL and intent.quantity <= held) or (
            held < 0 and intent.side is Side.BUY and intent.quantity <= -held)
        if intent.closing and not reduces:
            return RiskDecision.reject("closing", "closing order does not reduce a position")
        if in_flight.blocks(intent.symbol, intent.side, intent.strategy, intent.closing):
            return RiskDecision.reject("duplicate", "an order for this symbol and side is "
                                       "already in flight")
        if last_price is None:
            return RiskDecision.reject("price", "no last price for the symbol")
        if intent.order_type is OrderType.LIMIT:
            if intent.limit_price is None or intent.limit_price <= 0:
                return RiskDecision.reject("price", "a limit order needs a positive price")
            band = abs(float(intent.limit_price) / last_price - 1) * 100
            if band > cfg.price_band_pct:
                return RiskDecision.reject("price_band", f"limit price {band:.2f}% from last "
                                           f"(band {cfg.price_band_pct}%)")
            if intent.venue == "krx":
                bad = self._krx_price_problem(intent.symbol, intent.limit_price)
                if bad:
                    return RiskDecision.reject("krx_price", bad)
        while self._recent and self._recent[0] <= now_ns - 60 * NS:
            self._recent.popleft()
        if len(self._recent) >= cfg.max_orders_per_minute:
            return RiskDecision.reject("orders_per_minute",
                                       f"{cfg.max_orders_per_minute} orders in the last minute")
        if reduces:
            return RiskDecision.ok()
        if self.state is not TradingState.ACTIVE:
            return RiskDecision.reject("trading_state", f"trading state is {self.state.value}"
                                       + (f" ({self.state_reason})" if self.state_reason else ""))
        max_loss, max_position, max_exposure = self._limits()
        # the float estimate decides where the exact sums would certainly agree (far from a
        # limit); near one, or without it, the exact Decimal sums (jts/mark_estimate.py)
        est = pf.estimate()
        if est is None or not est.unrealized_above(-max_loss - pf.realized_today):
            pnl = pf.realized_today + pf.unrealized()
            if pnl <= -max_loss:
                self.set_state(TradingState.REDUCING, "daily loss limit")
                return RiskDecision.reject("daily_loss", f"daily P&L {pnl:.0f} hit the limit "
                                           f"-{cfg.max_daily_loss:.0f}")
        price = to_decimal(last_price)
        notional = intent.quantity * price
        after = abs(held + intent.quantity * intent.side.sign) * price
        if after > max_position:
            return RiskDecision.reject("position_notional", f"position would be {after:.0f} > "
                                       f"{cfg.max_position_notional:.0f}")
        pending = in_flight.quantity * price
        if est is None or not est.exposure_below(max_exposure - pending - notional):
            if pf.exposure() + pending + notional > max_exposure:
                return RiskDecision.reject("total_exposure", "total exposure limit "
                                           f"{cfg.max_total_exposure:.0f} would be exceeded")
        if held == 0:
            opened = (pf.open_count() if est is None else est.open) + in_flight.symbol_count
            if opened >= cfg.max_open_positions:
                return RiskDecision.reject("open_positions",
                                           f"{cfg.max_open_positions} positions already open")
        if intent.side is Side.BUY and pf.cash - pending < notional:
            return RiskDecision.reject("cash", f"cash {pf.cash:.0f} below order notional "
                                       f"{notional:.0f}")
        return RiskDecision.ok()
