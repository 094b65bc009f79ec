"""Accounts, orders and matching of the KIS simulator.

Orders match against :class:`KisSimMarket` prices: marketable orders fill at the market price,
limit orders rest until the price crosses, and no order takes more than
``liquidity_per_step`` shares per step (so large orders fill partially over several steps).
Every acknowledgement and fill is reported to ``notify`` as the 26 fields of an
``H0STCNI0``/``H0STCNI9`` notice, which the WebSocket server encrypts and pushes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import count

from brokers.kis.simulator.market import KisSimMarket, kst_hhmmss

Notify = Callable[[str, list[str]], None]        # (hts_id, 26 notice fields)


class OrderError(Exception):
    """A business rejection: (msg_cd, msg1), answered with HTTP 200 and rt_cd "1"."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# simulator-only rejection codes (the real ones are not documented in our sources)
INSUFFICIENT_CASH = "SIMR0001"
INSUFFICIENT_QTY = "SIMR0002"
BAD_TICK = "SIMR0003"
BAD_FIELD = "SIMR0005"
UNKNOWN_SYMBOL = "SIMR0006"
NOT_CANCELLABLE = "SIMR0007"


@dataclass
class SimOrder:
    odno: str
    account: str
    code: str
    side: str                 # "01" sell, "02" buy
    qty: int
    price: int                # 0 for market orders
    dvsn: str
    ts_ns: int
    orgn_odno: str = ""
    reserve_price: int = 0    # won reserved per share (buys)
    filled: int = 0
    filled_value: int = 0
    cancelled: int = 0

    @property
    def remaining(self) -> int:
        return self.qty - self.filled - self.cancelled

    @property
    def avg_price(self) -> float:
        return self.filled_value / self.filled if self.filled else 0.0


@dataclass
class SimAccount:
    account: str              # "CANO-ACNT_PRDT_CD"
    hts_id: str
    cash: Decimal
    positions: dict[str, list[int]] = field(default_factory=dict)   # code -> [qty, cost]
    orders: dict[str, SimOrder] = field(default_factory=dict)

    def reserved_cash(self) -> int:
        return sum(o.remaining * o.reserve_price for o in self.orders.values()
                   if o.side == "02" and o.remaining > 0)

    def orderable_cash(self) -> Decimal:
        return self.cash - self.reserved_cash()

    def pending_sell(self, code: str) -> int:
        return sum(o.remaining for o in self.orders.values()
                   if o.side == "01" and o.code == code and o.remaining > 0)


class SimBook:
    """Every account's orders, matched against one market."""

    def __init__(self, market: KisSimMarket, notify: Notify, *, liquidity_per_step: int = 100,
                 orgno: str = "91252") -> None:
        self.market = market
        self.notify = notify
        self.liquidity = liquidity_per_step
        self.orgno = orgno
        self.accounts: dict[str, SimAccount] = {}
        self._odno = count(1)

    def open_account(self, account: str, hts_id: str, cash: Decimal,
                     positions: dict[str, tuple[int, int]] | None = None) -> SimAccount:
        acct = SimAccount(account, hts_id, cash)
        for code, (qty, avg) in (positions or {}).items():
            acct.positions[code] = [qty, qty * avg]
        self.accounts[account] = acct
        return acct

    def _next_odno(self) -> str:
        return f"{next(self._odno):010d}"

    # -- commands -----------------------------------------------------------------------

    def place(self, account: str, code: str, side: str, qty: int, price: int, dvsn: str,
              now_ns: int) -> SimOrder:
        acct = self.accounts[account]
        if code not in self.market.quotes:
            raise OrderError(UNKNOWN_SYMBOL, f"종목코드 {code} 없음 (unknown symbol)")
        if qty <= 0:
            raise OrderError(BAD_FIELD, "ORD_QTY must be a positive integer")
        q = self.market.quotes[code]
        if dvsn == "00":
            if price <= 0:
                raise OrderError(BAD_FIELD, "ORD_UNPR required for a limit order")
            reason = self.market.valid_price(code, price)
            if reason:
                raise OrderError(BAD_TICK, reason)
        elif dvsn == "01":
            price = 0
        else:
            raise OrderError(BAD_FIELD, f"ORD_DVSN {dvsn} not supported by the simulator")
        reserve = price or q.upper
        if side == "02" and acct.orderable_cash() < qty * reserve:
            raise OrderError(INSUFFICIENT_CASH, "주문가능금액을 초과 했습니다 (insufficient cash)")
        if side == "01":
            held = acct.positions.get(code, [0, 0])[0]
            if held - acct.pending_sell(code) < qty:
                raise OrderError(INSUFFICIENT_QTY,
                                 "주문가능수량을 초과 했습니다 (insufficient qty)")
        order = SimOrder(self._next_odno(), account, code, side, qty, price, dvsn, now_ns,
                         reserve_price=reserve if side == "02" else 0)
        acct.orders[order.odno] = order
        self._ack(acct, order, rctf="0", now_ns=now_ns)
        self._match(order, now_ns)
        return order

    def cancel_or_modify(self, account: str, orgn_odno: str, kind: str, qty: int,
                         all_qty: bool, price: int, dvsn: str, now_ns: int) -> SimOrder:
        acct = self.accounts[account]
        orig = acct.orders.get(orgn_odno)
        if orig is None or orig.remaining <= 0:
            raise OrderError(NOT_CANCELLABLE,
                             "정정/취소할 수량이 없습니다 (nothing to modify/cancel)")
        take = orig.remaining if all_qty or qty <= 0 else min(qty, orig.remaining)
        if kind == "02":
            orig.cancelled += take
            ack = SimOrder(self._next_odno(), account, orig.code, orig.side, take, orig.price,
                           orig.dvsn, now_ns, orgn_odno=orig.odno, cancelled=take)
            acct.orders[ack.odno] = ack
            self._ack(acct, ack, rctf="2", now_ns=now_ns)
            return ack
        if kind != "01":
            raise OrderError(BAD_FIELD, f"RVSE_CNCL_DVSN_CD {kind} must be 01 or 02")
        if dvsn == "00":
            reason = self.market.valid_price(orig.code, price)
            if reason:
                raise OrderError(BAD_TICK, reason)
        orig.cancelled += take
        new = SimOrder(self._next_odno(), account, orig.code, orig.side, take,
                       price if dvsn == "00" else 0, dvsn, now_ns, orgn_odno=orig.odno,
                       reserve_price=orig.reserve_price)
        acct.orders[new.odno] = new
        self._ack(acct, new, rctf="1", now_ns=now_ns)
        self._match(new, now_ns)
        return new

    def step(self, now_ns: int) -> dict[str, list[tuple[int, int, int]]]:
        prints = self.market.step(now_ns)
        for acct in self.accounts.values():
            for order in list(acct.orders.values()):
                if order.remaining > 0:
                    self._match(order, now_ns)
        return prints

    # -- matching -----------------------------------------------------------------------

    def _match(self, order: SimOrder, now_ns: int) -> None:
        q = self.market.quotes[order.code]
        if order.side == "02":
            px = q.ask
            crosses = order.price == 0 or px <= order.price
        else:
            px = q.bid
            crosses = order.price == 0 or px >= order.price
        if not crosses or order.remaining <= 0:
            return
        qty = min(order.remaining, self.liquidity)
        acct = self.accounts[order.account]
        order.filled += qty
        order.filled_value += qty * px
        pos = acct.positions.setdefault(order.code, [0, 0])
        if order.side == "02":
            acct.cash -= qty * px
            pos[0] += qty
            pos[1] += qty * px
        else:
            acct.cash += qty * px
            avg = pos[1] / pos[0] if pos[0] else 0
            pos[0] -= qty
            pos[1] = round(avg * pos[0])
            if pos[0] == 0:
                del acct.positions[order.code]
        self.notify(acct.hts_id, self._notice(acct, order, fill=(qty, px), rctf="0",
                                              now_ns=now_ns))

    def _ack(self, acct: SimAccount, order: SimOrder, rctf: str, now_ns: int) -> None:
        self.notify(acct.hts_id, self._notice(acct, order, fill=None, rctf=rctf,
                                              now_ns=now_ns))

    def _notice(self, acct: SimAccount, order: SimOrder, fill: tuple[int, int] | None,
                rctf: str, now_ns: int) -> list[str]:
        qty, px = fill if fill else (order.qty, order.price)
        name = self.market.quotes[order.code].name
        return [
            acct.hts_id, acct.account.replace("-", ""), order.odno, order.orgn_odno,
            order.side, rctf, order.dvsn, "0", order.code, str(qty), str(px),
            kst_hhmmss(now_ns), "0", "2" if fill else "1", "1", "00950", str(order.qty),
            "SIM", "0", "1", "N", "", "10", "", name, str(order.price),
        ]
