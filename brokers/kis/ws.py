"""KIS real-time WebSocket client: subscriptions, frames, notices, reconnects.

:class:`KisStream` keeps the wanted registrations (at most ``ws_max_subscriptions`` per
session; the rest, and anything the server refuses with ``OPSP0008``, is reported in
:attr:`KisStream.unstreamed` so the collector can poll those symbols over REST instead).
It reconnects with exponential backoff on the injected clock, registers everything again,
and emits a :class:`StreamGap` covering the outage so the gap can be filled from REST.
Market data goes to a bounded queue that drops the oldest (counted); fill notices go to an
unbounded one and are never dropped. Bad frames are logged and counted, never fatal.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import msgspec
import structlog

from brokers.kis import parse, wire
from brokers.kis.auth import KisAuth
from brokers.kis.config import KisAccountConfig
from jts.clock import Clock
from jts.errors import BrokerError, DataError
from jts.types import Tick

log = structlog.get_logger(__name__)


class StreamGap(msgspec.Struct, frozen=True):
    """The stream was down from ``since_ns`` to ``until_ns`` for these (tr_id, key)."""

    since_ns: int
    until_ns: int
    keys: tuple[tuple[str, str], ...]


MarketEvent = Tick | parse.Book | StreamGap


class KisStream:
    def __init__(self, session: aiohttp.ClientSession, cfg: KisAccountConfig, auth: KisAuth,
                 *, clock: Clock, backoff_initial: float = 1.0, backoff_max: float = 60.0,
                 queue_size: int = 10_000) -> None:
        self._session = session
        self._cfg = cfg
        self._auth = auth
        self._clock = clock
        self._backoff0, self._backoff_max = backoff_initial, backoff_max
        self.wanted: dict[tuple[str, str], None] = {}
        self.unstreamed: set[tuple[str, str]] = set()
        self.active: set[tuple[str, str]] = set()
        self._cipher: dict[str, tuple[str, str]] = {}        # tr_id -> (key, iv)
        self.market: asyncio.Queue[MarketEvent] = asyncio.Queue(queue_size)
        self.notices: asyncio.Queue[parse.Notice] = asyncio.Queue()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._approval = ""
        self._closed = False
        self.connected = asyncio.Event()
        self.on_reconnect: Callable[[], None] | None = None   # called after a gap
        self.counters = {"frames": 0, "bad_frames": 0, "undecryptable": 0, "reconnects": 0,
                         "dropped": 0, "refused": 0, "pings": 0}

    # -- subscriptions ------------------------------------------------------------------

    async def subscribe(self, tr_id: str, key: str) -> bool:
        """Want (tr_id, key) streamed; False when the session's cap is reached."""
        sub = (tr_id, key)
        if sub in self.wanted:
            return True
        if len(self.wanted) >= self._cfg.ws_max_subscriptions:
            self.unstreamed.add(sub)
            log.warning("kis_ws_cap_reached", tr_id=tr_id, key=key,
                        cap=self._cfg.ws_max_subscriptions)
            return False
        self.wanted[sub] = None
        self.unstreamed.discard(sub)
        await self._send_sub(sub, "1")
        return True

    async def unsubscribe(self, tr_id: str, key: str) -> None:
        sub = (tr_id, key)
        self.unstreamed.discard(sub)
        if self.wanted.pop(sub, "absent") is None:
            await self._send_sub(sub, "2")

    async def _send_sub(self, sub: tuple[str, str], tr_type: str) -> None:
        ws = self._ws
        if ws is None or ws.closed:
            return                      # sent on (re)connect
        await ws.send_str(json.dumps({
            "header": {"approval_key": self._approval, "custtype": self._cfg.custtype,
                       "tr_type": tr_type, "content-type": "utf-8"},
            "body": {"input": {"tr_id": sub[0], "tr_key": sub[1]}}}))

    # -- connection loop ----------------------------------------------------------------

    async def run(self) -> None:
        """Connect, stream, reconnect with backoff until :meth:`close`."""
        backoff = self._backoff0
        down_since: int | None = None
        while not self._closed:
            try:
                if not self._approval:
                    self._approval = await self._auth.approval_key()
                async with self._session.ws_connect(self._cfg.ws_endpoint,
                                                    autoping=True) as ws:
                    self._ws = ws
                    self.active.clear()
                    for sub in list(self.wanted):
                        await self._send_sub(sub, "1")
                    self.connected.set()
                    if down_since is not None:
                        if self.on_reconnect is not None:
                            self.on_reconnect()
                        self._put_market(StreamGap(down_since, self._clock.now_ns(),
                                                   tuple(self.wanted)))
                        down_since = None
                    backoff = self._backoff0
                    log.info("kis_ws_connected", url=self._cfg.ws_endpoint,
                             subscriptions=len(self.wanted))
                    await self._read(ws)
            except (aiohttp.ClientError, OSError, BrokerError) as e:
                log.warning("kis_ws_error", error=f"{type(e).__name__}: {e}"[:200])
            finally:
                self._ws = None
                self.connected.clear()
            if self._closed:
                break
            if down_since is None:
                down_since = self._clock.now_ns()
            self.counters["reconnects"] += 1
            log.info("kis_ws_reconnect_wait", seconds=backoff)
            await self._clock.sleep(backoff)
            backoff = min(backoff * 2, self._backoff_max)

    async def close(self) -> None:
        self._closed = True
        if self._ws is not None:
            await self._ws.close()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            text: str = msg.data
            if text.startswith("{"):
                await self._control(ws, text)
                continue
            try:
                self._frame(text)
            except DataError as e:
                self.counters["bad_frames"] += 1
                log.warning("kis_ws_bad_frame", error=str(e), head=text[:60])

    async def _control(self, ws: aiohttp.ClientWebSocketResponse, text: str) -> None:
        try:
            msg: dict[str, Any] = json.loads(text)
            header = msg.get("header", {})
            tr_id, key = str(header.get("tr_id", "")), str(header.get("tr_key", ""))
        except (ValueError, AttributeError):
            self.counters["bad_frames"] += 1
            log.warning("kis_ws_bad_control", head=text[:60])
            return
        if tr_id == "PINGPONG":
            self.counters["pings"] += 1
            await ws.send_str(text)               # echo, as the established clients do
            return
        body = msg.get("body") or {}
        code = str(body.get("msg_cd", ""))
        sub = (tr_id, key)
        if code == wire.WS_SUBSCRIBED or code == "OPSP0002":
            self.active.add(sub)
            out = body.get("output") or {}
            if out.get("key") and out.get("iv"):
                self._cipher[tr_id] = (str(out["key"]), str(out["iv"]))
        elif code == wire.WS_UNSUBSCRIBED:
            self.active.discard(sub)
        elif code == wire.WS_MAX_SUBSCRIBE:
            self.counters["refused"] += 1
            self.wanted.pop(sub, None)
            self.unstreamed.add(sub)
            log.warning("kis_ws_refused_cap", tr_id=tr_id, key=key)
        else:
            log.warning("kis_ws_control", tr_id=tr_id, key=key, code=code,
                        msg=str(body.get("msg1", ""))[:80])

    def _frame(self, text: str) -> None:
        encrypted, tr_id, count, payload = parse.split_frame(text)
        self.counters["frames"] += 1
        now = self._clock.now_ns()
        if encrypted:
            if tr_id not in self._cipher:
                self.counters["undecryptable"] += 1
                raise DataError(f"encrypted {tr_id} frame before its key arrived")
            key, iv = self._cipher[tr_id]
            try:
                payload = parse.decrypt(key, iv, payload)
            except DataError:
                self.counters["undecryptable"] += 1
                raise
        if tr_id == wire.WS_TRADE:
            for tick in parse.trades(payload, count, now):
                self._put_market(tick)
        elif tr_id == wire.WS_BOOK:
            for b in parse.book(payload, count, now):
                self._put_market(b)
        elif tr_id in (wire.WS_NOTICE_REAL, wire.WS_NOTICE_VIRTUAL):
            self.notices.put_nowait(parse.notice(payload))
        else:
            raise DataError(f"unknown real-time TR id {tr_id!r}")

    def _put_market(self, event: MarketEvent) -> None:
        if self.market.full():
            self.market.get_nowait()
            self.counters["dropped"] += 1
        self.market.put_nowait(event)

    async def events(self) -> AsyncIterator[MarketEvent]:
        while True:
            yield await self.market.get()
