"""The paper broker: the reference :class:`brokers.base.Broker`, filling orders against the
ticks it is shown (``on_tick``/``on_ticks``) with the shared :class:`jts.costs.CostModel`.

Rules (docs/paper-trading.md): market orders fill in full at the next print of their symbol
(or at once at the last price with ``fill_on="last"``), moved by the slippage and rounded to
the tick grid against the trader, clamped into the daily price limits; limit orders rest
and fill at the print price once a print reaches the limit; buys reserve cash and sells
reserve holdings while open. Everything is deterministic given the tick sequence.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Literal

import structlog

from brokers.base import BrokerEvent
from brokers.paper_ticks import ColumnarPrints, fold_ticks
from jts.calendar import kst_date
from jts.clock import Clock, LiveClock
from jts.costs import CostModel
from jts.errors import BrokerUnavailable, OrderRejected
from jts.krx import Market, market_of, on_tick, price_limits
from jts.money import to_decimal
from jts.prices import SymbolMask
from jts.types import (
    Balance,
    Fill,
    OrderEvent,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Side,
    Tick,
)

log = structlog.get_logger(__name__)
ZERO = Decimal(0)


@dataclass
class _Order:
    req: OrderRequest
    broker_order_id: str
    status: OrderStatus
    reserved_cash: Decimal = ZERO
    filled: Decimal = ZERO
    reason: str = ""
    ts_ns: int = 0

    def event(self) -> OrderEvent:
        return OrderEvent(self.req.client_order_id, self.status, self.ts_ns,
                          broker_order_id=self.broker_order_id, filled_quantity=self.filled,
                          reason=self.reason)


@dataclass
class _Holding:
    quantity: Decimal = ZERO
    avg_price: Decimal = ZERO


class PaperBroker:
    """A simulated account; implements the Broker protocol plus ``on_tick``/``on_ticks``."""

    def __init__(self, name: str = "paper", account: str = "paper-1",
                 cost_model: CostModel | None = None,
                 initial_cash: Decimal | float | int = Decimal(100_000_000),
                 clock: Clock | None = None, allow_short: bool = False, *,
                 fill_on: Literal["next", "last"] = "next",
                 symbols: Collection[str] | None = None,
                 market: Callable[[str], Market | str | None] | None = None,
                 prev_close: Callable[[str], float | Decimal | None] | None = None) -> None:
        self.name = name
        self.account = account
        self.costs = cost_model or CostModel()
        self.clock: Clock = clock or LiveClock()
        self.allow_short = allow_short
        self.fill_on = fill_on
        self._symbols = set(symbols) if symbols is not None else None
        self._market_fn = market or market_of
        self._prev_close_fn = prev_close
        cash = to_decimal(initial_cash)
        self._cash = cash.to_integral_value() if cash == cash.to_integral_value() else cash
        self._holdings: dict[str, _Holding] = {}
        self._orders: dict[str, _Order] = {}
        self._waiting: dict[str, list[str]] = {}      # symbol → open order ids, FIFO
        self._last: dict[str, Decimal] = {}
        self._last_px: dict[str, float] = {}          # newer prints not yet converted
        self._day_base: dict[str, tuple[date, Decimal]] = {}
        self._cols: ColumnarPrints | None = None      # the arrays of a columnar feed
        self._waiting_mask: SymbolMask | None = None
        self._waiting_version = 0
        self._limit_memo: dict[tuple[str, object], tuple[Decimal, Decimal]] = {}
        self._events: asyncio.Queue[BrokerEvent | None] = asyncio.Queue()
        self._reserved = ZERO                          # cash held for open buys
        self._n_orders = 0
        self._n_trades = 0
        # ids are unique across restarts: the ledger deduplicates fills by trade id
        self._session = f"{self.clock.now_ns() // 1_000_000:x}"
        self._closed = False
        self.realized_pnl = ZERO
        self.fees_paid = ZERO

    # --- lifecycle ---------------------------------------------------------------------
    async def connect(self) -> None:
        self._closed = False

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._events.put_nowait(None)

    async def events(self) -> AsyncIterator[BrokerEvent]:
        while True:
            ev = await self._events.get()
            if ev is None:
                return
            yield ev

    # --- market data -------------------------------------------------------------------
    def on_tick(self, tick: Tick) -> None:
        sym = tick.symbol
        if self._cols is not None:
            self._cols.flush(sym, self._day_base, self._last_px)
        price = to_decimal(tick.price)
        if price <= 0:
            return
        self._last[sym] = price
        self._last_px.pop(sym, None)
        day = kst_date(tick.ts_ns)
        if sym not in self._day_base or self._day_base[sym][0] != day:
            self._day_base[sym] = (day, price)
        if self._cols is not None:
            self._cols.synced(sym, self._day_base)
        for coid in list(self._waiting.get(sym, ())):
            order = self._orders[coid]
            if order.status.is_terminal:
                continue
            fill_px = self._match(order, price)
            if fill_px is not None:
                self._fill(order, fill_px, tick.ts_ns)

    def on_ticks(self, ticks: Iterable[Tick]) -> None:
        """Same result as ``on_tick`` for each print in order, cheaper: per-print work only
        for symbols with open orders (:mod:`brokers.paper_ticks`; a batch with columns
        over a symbol index is folded without touching its other prints at all)."""
        cols = getattr(ticks, "columns", None)
        if cols is None or not isinstance(ticks, Sequence):
            fold_ticks(ticks, self._waiting, self._day_base, self._last_px, self.on_tick)
            return
        index, sym, ts, px = cols[0], cols[1], cols[2], cols[3]
        if self._cols is None or self._cols.index is not index:
            if self._cols is not None:
                self._cols.flush_all(self._day_base, self._last_px)
            self._cols = ColumnarPrints(index, self._day_base)
            self._waiting_mask = SymbolMask(index)
        assert self._waiting_mask is not None
        i, n = 0, len(sym)
        while i < n:
            waiting = self._waiting_mask.of(
                lambda: [s for s, ids in self._waiting.items() if ids], self._waiting_version)
            j = self._cols.fold(sym, ts, px, i, waiting)
            if j >= n:
                break
            self.on_tick(ticks[j])
            i = j + 1

    def day_bases(self) -> dict[str, tuple[date, Decimal]]:
        """Each symbol's KST day and its first print that day (the price-limit base when
        no previous close is known)."""
        if self._cols is not None:
            self._cols.flush_all(self._day_base, self._last_px)
        return dict(self._day_base)

    def _price(self, symbol: str) -> Decimal | None:
        """The last print of ``symbol`` as a Decimal (converted on first use after a batch)."""
        if self._cols is not None:
            self._cols.flush(symbol, self._day_base, self._last_px)
        px = self._last_px.pop(symbol, None)
        if px is not None:
            self._last[symbol] = to_decimal(px)
        return self._last.get(symbol)

    def _price_of(self, symbol: str) -> Decimal:
        d = self._price(symbol)
        if d is None:
            raise KeyError(symbol)
        return d

    def last_price(self, symbol: str) -> Decimal | None:
        return self._price(symbol)

    def restore(self, holdings: Mapping[str, Any], cash: Decimal) -> None:
        """Start from a persisted account (the ledger's positions and cash): a paper account
        lives across daemon restarts. ``holdings`` maps symbol → object with ``quantity`` and
        ``avg_price``."""
        self._holdings = {s: _Holding(quantity=h.quantity, avg_price=h.avg_price)
                          for s, h in holdings.items() if h.quantity != 0}
        self._cash = cash
        log.info("paper_account_restored", positions=len(self._holdings), cash=str(cash))

    # --- commands ----------------------------------------------------------------------
    async def submit(self, order: OrderRequest) -> OrderEvent:
        if self._closed:
            raise BrokerUnavailable("paper broker is closed", broker=self.name)
        existing = self._orders.get(order.client_order_id)
        if existing is not None:         # idempotent: same id, same order, current state
            log.warning("paper_duplicate_submit", client_order_id=order.client_order_id)
            return existing.event()
        self._n_orders += 1
        oid = f"{self.account}-{self._session}-O{self._n_orders:08d}"
        rec = _Order(order, oid, OrderStatus.ACCEPTED, ts_ns=self.clock.now_ns())
        self._orders[order.client_order_id] = rec
        reason = self._check(order)
        if reason:
            rec.status, rec.reason = OrderStatus.REJECTED, reason
            log.info("paper_order_rejected", client_order_id=order.client_order_id,
                     symbol=order.symbol, reason=reason)
            self._emit(rec.event())
            return rec.event()
        rec.reserved_cash = self._estimate_cost(order) if order.side is Side.BUY else ZERO
        self._reserved += rec.reserved_cash
        ack = rec.event()
        self._emit(ack)
        self._waiting.setdefault(order.symbol, []).append(order.client_order_id)
        self._waiting_version += 1
        if order.order_type is OrderType.MARKET and self.fill_on == "last":
            self._fill(rec, self._market_fill_price(order, self._price_of(order.symbol)),
                       self.clock.now_ns())
        return ack

    async def cancel(self, client_order_id: str) -> OrderEvent:
        rec = self._orders.get(client_order_id)
        if rec is None:
            raise OrderRejected(f"unknown order {client_order_id}", broker=self.name)
        if rec.status.is_terminal:
            return rec.event()
        rec.status, rec.reason, rec.ts_ns = OrderStatus.CANCELLED, "cancelled", self.clock.now_ns()
        self._release(rec)
        ev = rec.event()
        self._emit(ev)
        return ev

    async def query_order(self, client_order_id: str) -> OrderEvent | None:
        rec = self._orders.get(client_order_id)
        return rec.event() if rec is not None else None

    async def open_orders(self) -> list[OrderEvent]:
        return [self._orders[c].event() for ids in self._waiting.values() for c in ids]

    async def positions(self) -> list[Position]:
        return [Position(self.name, self.account, s, h.quantity, h.avg_price)
                for s, h in sorted(self._holdings.items()) if h.quantity != 0]

    async def balance(self) -> Balance:
        return Balance(self.name, self.account, self._cash)

    @property
    def cash(self) -> Decimal:
        return self._cash

    # --- validation --------------------------------------------------------------------
    def _check(self, o: OrderRequest) -> str:
        if o.quantity <= 0 or o.quantity != o.quantity.to_integral_value():
            return f"quantity must be a positive whole number of shares, got {o.quantity}"
        if self._symbols is not None and o.symbol not in self._symbols:
            return f"unknown symbol {o.symbol}"
        last = self._price(o.symbol)
        if last is None:
            if self._symbols is None and self._market_fn(o.symbol) is None:
                return f"unknown symbol {o.symbol}"
            return f"no price yet for {o.symbol}"
        krx = self.costs.fees(o.venue).kind == "krx"
        if o.order_type is OrderType.LIMIT:
            if o.limit_price is None or o.limit_price <= 0:
                return "limit order needs a positive limit_price"
            if krx and not on_tick(o.limit_price):
                return f"limit price {o.limit_price} is not on the KRX tick grid"
            if krx:
                lo, hi = self._limits(o.symbol)
                if not lo <= o.limit_price <= hi:
                    return f"limit price {o.limit_price} beyond the daily limits [{lo}, {hi}]"
        elif o.limit_price is not None:
            return "market order must not carry a limit_price"
        if o.side is Side.SELL and not self.allow_short:
            held = self._holdings.get(o.symbol, _Holding()).quantity
            pending = sum((r.req.quantity - r.filled for r in self._open_for(o.symbol)
                           if r.req.side is Side.SELL), ZERO)
            if o.quantity > held - pending:
                return (f"insufficient holdings: selling {o.quantity} {o.symbol}, holding "
                        f"{held} with {pending} already on sale (cash account, no shorting)")
        if o.side is Side.BUY:
            need = self._estimate_cost(o)
            free = self._cash - self._reserved
            if need > free:
                return f"insufficient cash: need {need}, available {free}"
        return ""

    def _open_for(self, symbol: str) -> list[_Order]:
        return [self._orders[c] for c in self._waiting.get(symbol, ())
                if not self._orders[c].status.is_terminal]

    def _market(self, symbol: str) -> Market | str | None:
        return self._market_fn(symbol)

    def _limits(self, symbol: str) -> tuple[Decimal, Decimal]:
        base: Decimal | None = None
        if self._prev_close_fn is not None:
            pc = self._prev_close_fn(symbol)
            base = to_decimal(pc) if pc is not None else None
        if base is None:
            if self._cols is not None:
                self._cols.flush(symbol, self._day_base, self._last_px)
            base = (self._day_base[symbol][1] if symbol in self._day_base
                    else self._price_of(symbol))
        market = self._market(symbol)
        key = (str(base), market)            # str: the same digits and exponent, exactly
        got = self._limit_memo.get(key)
        if got is None:                      # price_limits is pure: one rounding per base
            got = self._limit_memo[key] = price_limits(base, market)
        return got

    def _estimate_cost(self, o: OrderRequest) -> Decimal:
        if o.order_type is OrderType.LIMIT and o.limit_price is not None:
            px = o.limit_price
        else:
            px = self._market_fill_price(o, self._price_of(o.symbol))
        notional = o.quantity * px
        return notional + self.costs.commission(o.venue, Side.BUY, notional)

    # --- matching and fills ------------------------------------------------------------
    def _market_fill_price(self, o: OrderRequest, ref: Decimal) -> Decimal:
        krx = self.costs.fees(o.venue).kind == "krx"
        px = self.costs.fill_price(o.side, ref, venue=o.venue,
                                   market=self._market(o.symbol) if krx else None)
        if krx and self._price(o.symbol) is not None:
            lo, hi = self._limits(o.symbol)
            px = min(px, hi) if o.side is Side.BUY else max(px, lo)
        return px

    def _match(self, o: _Order, price: Decimal) -> Decimal | None:
        req = o.req
        if req.order_type is OrderType.MARKET:
            return self._market_fill_price(req, price)
        assert req.limit_price is not None
        if req.side is Side.BUY and price <= req.limit_price:
            return price
        if req.side is Side.SELL and price >= req.limit_price:
            return price
        return None

    def _fill(self, o: _Order, price: Decimal, ts_ns: int) -> None:
        req = o.req
        qty = req.quantity - o.filled
        notional = qty * price
        commission = self.costs.commission(req.venue, req.side, notional)
        tax = self.costs.tax(req.venue, self._market(req.symbol), req.side, notional,
                             kst_date(ts_ns))
        if req.side is Side.BUY:
            cost = notional + commission + tax
            if cost > self._cash - self._reserved + o.reserved_cash:
                o.status, o.reason, o.ts_ns = (OrderStatus.CANCELLED,
                                               f"insufficient cash at fill: need {cost}", ts_ns)
                self._release(o)
                self._emit(o.event())
                return
            self._cash -= cost
        else:
            self._cash += notional - commission - tax
        self._apply_position(req.symbol, req.side, qty, price)
        self.fees_paid += commission + tax
        self._n_trades += 1
        tid = f"{self.account}-{self._session}-T{self._n_trades:08d}"
        fill = Fill(self.name, self.account, tid, req.client_order_id, req.symbol, req.side,
                    qty, price, commission, tax, ts_ns, req.strategy)
        o.filled += qty
        o.status, o.ts_ns = OrderStatus.FILLED, ts_ns
        self._release(o)
        log.info("paper_fill", client_order_id=req.client_order_id, symbol=req.symbol,
                 side=req.side.value, quantity=str(qty), price=str(price),
                 commission=str(commission), tax=str(tax))
        self._emit(fill)
        self._emit(o.event())

    def _apply_position(self, symbol: str, side: Side, qty: Decimal, price: Decimal) -> None:
        h = self._holdings.setdefault(symbol, _Holding())
        signed = qty * side.sign
        if h.quantity == 0 or (h.quantity > 0) == (signed > 0):
            new_qty = h.quantity + signed
            h.avg_price = (h.avg_price * abs(h.quantity) + price * qty) / abs(new_qty)
            h.quantity = new_qty
            return
        closing = min(qty, abs(h.quantity))
        direction = 1 if h.quantity > 0 else -1
        self.realized_pnl += (price - h.avg_price) * closing * direction
        h.quantity += signed
        if h.quantity == 0:
            h.avg_price = ZERO
        elif (h.quantity > 0) == (signed > 0):         # flipped through zero
            h.avg_price = price

    def _release(self, o: _Order) -> None:
        self._reserved -= o.reserved_cash
        o.reserved_cash = ZERO
        ids = self._waiting.get(o.req.symbol)
        if ids and o.req.client_order_id in ids:
            ids.remove(o.req.client_order_id)
            self._waiting_version += 1

    def _emit(self, ev: BrokerEvent) -> None:
        self._events.put_nowait(ev)
