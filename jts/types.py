"""Frozen value types shared by every component.

Conventions: timestamps are integer nanoseconds since the Unix epoch (UTC); market data
(ticks, bars) carries ``float`` prices and volumes (they feed float64 arrays and numba
kernels); everything in the order path and the ledger (intents, orders, fills, cash) is
``Decimal``. The one place that converts between the two is :mod:`jts.money`.
"""

from __future__ import annotations

import enum
from decimal import Decimal

import msgspec


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(enum.StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class OrderStatus(enum.StrEnum):
    NEW = "new"                      # written ahead, not yet sent
    SUBMITTED = "submitted"          # sent, no acknowledgement yet
    ACCEPTED = "accepted"            # live at the venue
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    UNKNOWN = "unknown"              # outcome unknown: resolve by asking the broker

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_open(self) -> bool:
        return self not in _TERMINAL


_TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED,
                       OrderStatus.EXPIRED})


class Tick(msgspec.Struct, frozen=True, gc=False):
    """One trade print. ``ts_ns`` is the venue's time, ``recv_ns`` when we received it."""

    venue: str
    symbol: str
    ts_ns: int
    recv_ns: int
    price: float
    volume: float
    seq: int = 0


class Bar(msgspec.Struct, frozen=True, gc=False):
    """An OHLCV bar; ``ts_ns`` is the bar's open time, ``value`` the traded notional."""

    symbol: str
    timeframe: str
    ts_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    value: float


class OrderIntent(msgspec.Struct, frozen=True):
    """What a strategy (or the operator) wants; the risk gate turns it into an order or a
    rejection. ``closing`` intents reduce an existing position and stay allowed while the
    trading state is REDUCING or HALTED-with-flatten."""

    strategy: str
    symbol: str
    side: Side
    quantity: Decimal
    ts_ns: int
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    closing: bool = False
    reason: str = ""
    venue: str = "krx"


class OrderRequest(msgspec.Struct, frozen=True):
    """An order as sent to a broker: our client order id is the idempotency key."""

    client_order_id: str
    broker: str
    account: str
    symbol: str
    side: Side
    quantity: Decimal
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    strategy: str = ""
    venue: str = "krx"


class OrderEvent(msgspec.Struct, frozen=True):
    """A change in an order's state as reported by the broker (or decided by us)."""

    client_order_id: str
    status: OrderStatus
    ts_ns: int
    broker_order_id: str = ""
    filled_quantity: Decimal = Decimal(0)
    reason: str = ""


class Fill(msgspec.Struct, frozen=True):
    """One execution. Unique by (broker, account, trade_id); only fills move positions."""

    broker: str
    account: str
    trade_id: str
    client_order_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    commission: Decimal
    tax: Decimal
    ts_ns: int
    strategy: str = ""

    @property
    def notional(self) -> Decimal:
        return self.quantity * self.price

    @property
    def fees(self) -> Decimal:
        return self.commission + self.tax


class Position(msgspec.Struct, frozen=True):
    """Net position in one symbol for one account, at average cost."""

    broker: str
    account: str
    symbol: str
    quantity: Decimal
    avg_price: Decimal


class Balance(msgspec.Struct, frozen=True):
    broker: str
    account: str
    cash: Decimal
    currency: str = "KRW"
