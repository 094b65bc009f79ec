"""``KisBroker``: the Broker port over one KIS account (REST commands, WS fill notices).

Client order ids are ours; KIS knows orders by ``ODNO``. The adapter keeps the mapping
(and :meth:`KisBroker.remember` restores it after a restart from the ledger). Fill
notices become :class:`jts.types.Fill` with ``trade_id = "<ODNO>:<cumulative qty>"``
(KIS notices carry no execution id) plus an :class:`OrderEvent`. ``submit`` returns
ACCEPTED, or REJECTED when KIS refused the order with a code; it raises RateLimited /
AuthError when the gateway refused before the exchange (not live) and
OrderOutcomeUnknown when the answer was lost — resolve that with :meth:`query_order`.
Notices lost to a dropped WebSocket are recovered from today's orders (``catchup.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal

import aiohttp
import structlog

from brokers.base import BrokerEvent
from brokers.kis import parse, wire
from brokers.kis.auth import KisAuth, TokenStore
from brokers.kis.catchup import Tracked, recover
from brokers.kis.config import KisAccountConfig, KisCredentials
from brokers.kis.market_data import KisMarketData
from brokers.kis.memory import OrderMemory, Remembered
from brokers.kis.rest import KisRest
from brokers.kis.ws import KisStream
from jts.clock import Clock, LiveClock
from jts.errors import DataError, OrderRejected
from jts.ratelimit import Lane, RateLimiter
from jts.types import Balance, Fill, OrderEvent, OrderRequest, OrderStatus, OrderType, Position

log = structlog.get_logger(__name__)


def _status(row: parse.OrderRow) -> OrderStatus:
    if row.filled >= row.quantity:
        return OrderStatus.FILLED
    if row.remaining <= 0 and row.cancelled > 0:
        return OrderStatus.CANCELLED
    if row.filled > 0:
        return OrderStatus.PARTIALLY_FILLED
    return OrderStatus.ACCEPTED


class KisBroker(KisMarketData):
    name = "kis"

    def __init__(self, cfg: KisAccountConfig, creds: KisCredentials, *, account: str = "",
                 clock: Clock | None = None, token_store: TokenStore | None = None,
                 limiter: RateLimiter | None = None,
                 session: aiohttp.ClientSession | None = None, stream: bool = True,
                 memory: OrderMemory | None = None) -> None:
        self.cfg = cfg
        self.creds = creds
        self.account = account or creds.account
        self.clock: Clock = clock or LiveClock()
        self._store = token_store
        self._own_session = session is None
        self._session = session
        self.limiter = limiter or RateLimiter(cfg.requests_per_second, 1.0, clock=self.clock,
                                              name=f"kis:{self.account}",
                                              margin=cfg.rate_margin)
        self._want_stream = stream
        self._memory = memory
        self.prev_closes: dict[str, float] = {}       # learned from chart/quote answers
        self._orders: dict[str, Tracked] = {}
        self._by_odno: dict[str, str] = {}
        self._orphans: dict[str, list[parse.Notice]] = {}
        self._events: asyncio.Queue[BrokerEvent] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()          # the notice stream reconnected: catch up now
        self.catch_ups = self.recovered_fills = 0
        self.auth: KisAuth
        self.rest: KisRest
        self.stream: KisStream | None = None

    # -- lifecycle ----------------------------------------------------------------------

    async def connect(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        self.auth = KisAuth(self._session, self.cfg, self.creds, clock=self.clock,
                            store=self._store)
        self.rest = KisRest(self._session, self.cfg, self.creds, self.auth, self.limiter,
                            clock=self.clock)
        await self.auth.token()
        if self._memory is not None:
            restored = await self._memory.load()
            for r in restored:
                self.remember(r.client_order_id, r.odno, r.order, r.filled, orgno=r.orgno,
                              sent_ns=r.sent_ns)
            log.info("kis_orders_restored", account=self.account, orders=len(restored))
        if self._want_stream:
            self.stream = KisStream(self._session, self.cfg, self.auth, clock=self.clock)
            if self.creds.hts_id:
                tr = wire.WS_NOTICE_REAL if self.cfg.domain == "real" else wire.WS_NOTICE_VIRTUAL
                await self.stream.subscribe(tr, self.creds.hts_id)
            self.stream.on_reconnect = self._wake.set
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self.stream.run()),
                           loop.create_task(self._consume_notices(self.stream)),
                           loop.create_task(self._catch_up_loop())]
        log.info("kis_connected", account=self.account, domain=self.cfg.domain)

    async def close(self) -> None:
        if self.stream is not None:
            await self.stream.close()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await self.limiter.aclose()
        if self._own_session and self._session is not None:
            await self._session.close()

    # -- orders -------------------------------------------------------------------------

    def remember(self, client_order_id: str, broker_order_id: str, order: OrderRequest,
                 filled: Decimal = Decimal(0), *, orgno: str = "", sent_ns: int = 0) -> None:
        """Restore an order mapping after a restart (from the ledger or the cache)."""
        now = self.clock.now_ns()
        self._orders[client_order_id] = Tracked(
            order, broker_order_id, orgno, filled, sent_ns or now, heard_ns=now,
            filled_value=None if filled else Decimal(0), closed=filled >= order.quantity)
        self._by_odno[broker_order_id] = client_order_id
        for n in self._orphans.pop(broker_order_id, []):
            self._apply(n)

    async def submit(self, order: OrderRequest) -> OrderEvent:
        now = self.clock.now_ns()
        if order.quantity != order.quantity.to_integral_value() or order.quantity <= 0:
            return OrderEvent(order.client_order_id, OrderStatus.REJECTED, now,
                              reason=f"quantity {order.quantity} is not a positive integer")
        limit = order.order_type is OrderType.LIMIT
        if limit and (order.limit_price is None
                      or order.limit_price != order.limit_price.to_integral_value()):
            return OrderEvent(order.client_order_id, OrderStatus.REJECTED, now,
                              reason=f"limit price {order.limit_price} is not whole won")
        body = {**self.rest.account_params(), "PDNO": order.symbol,
                "ORD_DVSN": "00" if limit else "01", "ORD_QTY": str(int(order.quantity)),
                "ORD_UNPR": str(int(order.limit_price or 0)) if limit else "0",
                "EXCG_ID_DVSN_CD": "KRX", "SLL_TYPE": "01" if order.side == "sell" else "",
                "CNDT_PRIC": ""}
        tracked = Tracked(order, sent_ns=now, heard_ns=now)
        self._orders[order.client_order_id] = tracked
        tr = wire.TR_SELL if order.side == "sell" else wire.TR_BUY
        try:
            resp = await self.rest.send(wire.ORDER_CASH, tr, body)
        except OrderRejected as e:
            log.info("kis_order_rejected", coid=order.client_order_id, code=e.code)
            tracked.closed = True
            return OrderEvent(order.client_order_id, OrderStatus.REJECTED,
                              self.clock.now_ns(), reason=str(e))
        tracked.odno, tracked.orgno = parse.order_ack(resp.body.get("output") or {})
        self._by_odno[tracked.odno] = order.client_order_id
        log.info("kis_order_accepted", coid=order.client_order_id, odno=tracked.odno)
        for n in self._orphans.pop(tracked.odno, []):
            self._apply(n)
        await self._persist()
        return OrderEvent(order.client_order_id, OrderStatus.ACCEPTED, self.clock.now_ns(),
                          broker_order_id=tracked.odno, filled_quantity=tracked.filled)

    async def cancel(self, client_order_id: str) -> OrderEvent:
        t = self._orders.get(client_order_id)
        if t is None or not t.odno:
            raise OrderRejected(f"unknown order {client_order_id}", broker="kis")
        body = {**self.rest.account_params(), "KRX_FWDG_ORD_ORGNO": t.orgno,
                "ORGN_ODNO": t.odno, "ORD_DVSN": "00", "RVSE_CNCL_DVSN_CD": "02",
                "ORD_QTY": "0", "ORD_UNPR": "0", "QTY_ALL_ORD_YN": "Y",
                "EXCG_ID_DVSN_CD": "KRX"}
        await self.rest.send(wire.ORDER_RVSECNCL, wire.TR_RVSECNCL, body)
        t.closed = True
        return OrderEvent(client_order_id, OrderStatus.CANCELLED, self.clock.now_ns(),
                          broker_order_id=t.odno, filled_quantity=t.filled)

    async def today_orders(self, odno: str = "", lane: Lane = Lane.ORDER
                           ) -> list[parse.OrderRow]:
        day = parse.kst_day(self.clock.now_ns())
        params = {**self.rest.account_params(), "INQR_STRT_DT": day, "INQR_END_DT": day,
                  "SLL_BUY_DVSN_CD": "00", "INQR_DVSN": "00", "PDNO": "", "CCLD_DVSN": "00",
                  "ORD_GNO_BRNO": "", "ODNO": odno, "INQR_DVSN_3": "00", "INQR_DVSN_1": "",
                  "CTX_AREA_FK100": "", "CTX_AREA_NK100": ""}
        rows: list[parse.OrderRow] = []
        for body in await self.rest.get_pages(wire.DAILY_CCLD, wire.TR_DAILY_CCLD, params,
                                              lane=lane):
            rows.extend(parse.order_rows(body.get("output1") or []))
        return rows

    def _event(self, row: parse.OrderRow) -> OrderEvent:
        coid = self._by_odno.get(row.order_no, f"kis:{row.order_no}")
        return OrderEvent(coid, _status(row), self.clock.now_ns(), broker_order_id=row.order_no,
                          filled_quantity=row.filled)

    async def query_order(self, client_order_id: str) -> OrderEvent | None:
        t = self._orders.get(client_order_id)
        if t is None:
            return None
        if t.odno:
            rows = [r for r in await self.today_orders(t.odno) if r.order_no == t.odno]
            return self._event(rows[0]) if rows else None
        # the answer to submit was lost: find an unclaimed order with the same terms
        o = t.order
        price = o.limit_price if o.order_type is OrderType.LIMIT else Decimal(0)
        for row in sorted(await self.today_orders(), key=lambda r: r.order_no):
            if (row.order_no not in self._by_odno and not row.orig_order_no
                    and row.symbol == o.symbol and row.side == o.side
                    and row.quantity == o.quantity and row.price == price):
                self._by_odno[row.order_no] = client_order_id
                t.odno = row.order_no
                log.info("kis_order_resolved", coid=client_order_id, odno=row.order_no)
                return self._event(row)
        return None

    async def open_orders(self) -> list[OrderEvent]:
        return [self._event(r) for r in await self.today_orders() if r.remaining > 0]

    # -- account ------------------------------------------------------------------------

    async def _balance_pages(self) -> list[dict[str, object]]:
        params = {**self.rest.account_params(), "AFHR_FLPR_YN": "N", "OFL_YN": "",
                  "INQR_DVSN": "02", "UNPR_DVSN": "01", "FUND_STTL_ICLD_YN": "N",
                  "FNCG_AMT_AUTO_RDPT_YN": "N", "PRCS_DVSN": "00", "CTX_AREA_FK100": "",
                  "CTX_AREA_NK100": ""}
        return await self.rest.get_pages(wire.BALANCE, wire.TR_BALANCE, params)

    async def positions(self) -> list[Position]:
        out: list[Position] = []
        for body in await self._balance_pages():
            rows = body.get("output1") or []
            if not isinstance(rows, list):
                raise DataError("KIS balance output1 is not a list")
            out.extend(parse.positions(rows, self.account))
        return out

    async def balance(self) -> Balance:
        pages = await self._balance_pages()
        summary = pages[-1].get("output2") or []
        if not isinstance(summary, list | dict):
            raise DataError("KIS balance output2 is malformed")
        return Balance("kis", self.account, parse.cash(summary))

    async def orderable_cash(self, symbol: str = "005930") -> Decimal:
        params = {**self.rest.account_params(), "PDNO": symbol, "ORD_UNPR": "0",
                  "ORD_DVSN": "01", "CMA_EVLU_AMT_ICLD_YN": "N", "OVRS_ICLD_YN": "N"}
        resp = await self.rest.get(wire.PSBL_ORDER, wire.TR_PSBL_ORDER, params, lane=Lane.ORDER)
        return parse.dec(resp.body.get("output") or {}, "ord_psbl_cash")

    # -- notices ------------------------------------------------------------------------

    async def _consume_notices(self, stream: KisStream) -> None:
        while True:
            n = await stream.notices.get()
            try:
                self._apply(n)
            except Exception:                     # never let one notice stop the stream
                log.exception("kis_notice_failed", odno=n.order_no)
            if n.is_fill or n.kind == "1":
                await self._persist()

    async def _persist(self) -> None:
        if self._memory is None:
            return
        await self._memory.save(Remembered(c, t.odno, t.orgno, t.order, t.filled, t.sent_ns)
                                for c, t in self._orders.items())

    def _apply(self, n: parse.Notice) -> None:
        odno = n.orig_order_no if n.kind in ("1", "2") and not n.is_fill else n.order_no
        coid = self._by_odno.get(odno)
        if coid is None:
            self._orphans.setdefault(odno, []).append(n)
            return
        t = self._orders[coid]
        now = self.clock.now_ns()
        t.heard_ns = now
        if n.is_fill and 0 < n.quantity <= t.recovered:           # counted from REST already
            t.recovered -= n.quantity
            log.info("kis_notice_already_recovered", coid=coid, odno=n.order_no,
                     quantity=str(n.quantity))
            return
        if n.kind == "1" and not n.is_fill and not n.refused:     # modified: new ODNO
            t.odno = n.order_no
            self._by_odno[n.order_no] = coid
            return
        if n.refused:
            t.closed = True
            self._events.put_nowait(OrderEvent(coid, OrderStatus.REJECTED, now, odno,
                                               t.filled, reason="refused by KIS"))
        elif n.is_fill:
            t.add_fill(n.quantity, n.price)
            self._events.put_nowait(Fill("kis", self.account, f"{n.order_no}:{t.filled}", coid,
                                        n.symbol, n.side, n.quantity, n.price, Decimal(0),
                                        Decimal(0), now, t.order.strategy))
            done = t.filled >= t.order.quantity
            self._events.put_nowait(OrderEvent(
                coid, OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED, now,
                t.odno, t.filled))
        elif n.kind == "2":
            t.closed = True
            self._events.put_nowait(OrderEvent(coid, OrderStatus.CANCELLED, now, t.odno,
                                               t.filled))

    async def catch_up(self) -> int:
        """Read today's orders and emit the fills and cancellations the notices missed;
        returns how many events were emitted."""
        open_ = {t.odno: (c, t) for c, t in self._orders.items() if t.odno and not t.closed}
        if not open_:
            return 0
        rows = await self.today_orders(lane=Lane.BACKGROUND)
        self.catch_ups += 1
        now = self.clock.now_ns()
        seen: set[str] = set()
        emitted = 0
        for row in rows:
            hit = open_.get(row.order_no)
            if hit is None:
                continue
            seen.add(row.order_no)
            for ev in recover(hit[1], hit[0], row, self.account, now):
                if isinstance(ev, Fill):
                    self.recovered_fills += 1
                    log.warning("kis_fill_recovered", coid=ev.client_order_id,
                                trade_id=ev.trade_id, quantity=str(ev.quantity),
                                price=str(ev.price))
                self._events.put_nowait(ev)
                emitted += 1
        today = parse.kst_day(now)
        for odno, (_, t) in open_.items():       # day orders of earlier days have expired
            if odno not in seen and parse.kst_day(t.sent_ns) != today:
                t.closed = True
        if emitted:
            await self._persist()
        return emitted

    async def _catch_up_loop(self) -> None:
        interval = self.cfg.fill_poll_interval
        while interval > 0:
            waiter = asyncio.ensure_future(self._wake.wait())
            sleeper = asyncio.ensure_future(self.clock.sleep(interval))
            try:
                await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                sleeper.cancel()
            woke = self._wake.is_set()
            self._wake.clear()
            quiet_ns = self.clock.now_ns() - int(interval * 1e9)
            if woke or any(t.odno and not t.closed and t.heard_ns <= quiet_ns
                           for t in self._orders.values()):
                try:
                    await self.catch_up()
                except Exception as e:            # the next round tries again
                    log.warning("kis_catch_up_failed", error=f"{type(e).__name__}: {e}"[:200])

    async def events(self) -> AsyncIterator[BrokerEvent]:
        while True:
            yield await self._events.get()

    def stats(self) -> dict[str, object]:
        return {"limiter": self.limiter.stats(), "rest": dict(self.rest.counters),
                "stream": dict(self.stream.counters) if self.stream else {},
                "unstreamed": sorted(self.stream.unstreamed) if self.stream else [],
                "tokens_issued": self.auth.issued, "catch_ups": self.catch_ups,
                "recovered_fills": self.recovered_fills}
