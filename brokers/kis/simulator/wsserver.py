"""WebSocket side of the KIS simulator: approval-key sessions, register/unregister JSON with
``OPSP*`` replies and the registration cap, ``0|TR|NNN|…`` data frames (multi-record
``H0STCNT0``), AES-256-CBC encrypted ``H0STCNI0``/``H0STCNI9`` notices and PINGPONG.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import WSMsgType, web
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from brokers.kis import wire
from brokers.kis.simulator.market import Quote, kst_hhmmss, kst_yyyymmdd, tick_size
from brokers.kis.simulator.venue import SimVenue

log = structlog.get_logger(__name__)
QUOTE_TRS = (wire.WS_TRADE, wire.WS_BOOK)
NOTICE_TRS = (wire.WS_NOTICE_REAL, wire.WS_NOTICE_VIRTUAL)


def aes_encrypt(key: str, iv: str, text: str) -> str:
    padder = padding.PKCS7(128).padder()
    data = padder.update(text.encode()) + padder.finalize()
    enc = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).encryptor()
    return base64.b64encode(enc.update(data) + enc.finalize()).decode()


def _secret(n: int) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(n))


@dataclass
class WsSession:
    ws: web.WebSocketResponse
    approval_key: str = ""
    subs: set[tuple[str, str]] = field(default_factory=set)
    key: str = field(default_factory=lambda: _secret(32))
    iv: str = field(default_factory=lambda: _secret(16))
    outbox: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    ping_pending: bool = False

    def push(self, text: str) -> None:
        self.outbox.put_nowait(text)


def _reply(tr_id: str, tr_key: str, rt_cd: str, msg_cd: str, msg1: str,
           output: dict[str, str] | None = None) -> str:
    body: dict[str, Any] = {"rt_cd": rt_cd, "msg_cd": msg_cd, "msg1": msg1}
    if output:
        body["output"] = output
    return json.dumps({"header": {"tr_id": tr_id, "tr_key": tr_key, "encrypt": "N"},
                       "body": body})


def trade_record(q: Quote, ts_ns: int, px: int, qty: int) -> str:
    f = dict.fromkeys(wire.TRADE_FIELDS, "0")
    f.update({"MKSC_SHRN_ISCD": q.code, "STCK_CNTG_HOUR": kst_hhmmss(ts_ns),
              "STCK_PRPR": str(px), "PRDY_VRSS": str(px - q.prev_close),
              "PRDY_VRSS_SIGN": "2" if px >= q.prev_close else "5",
              "PRDY_CTRT": f"{(px - q.prev_close) * 100 / q.prev_close:.2f}",
              "STCK_OPRC": str(q.open), "STCK_HGPR": str(q.high), "STCK_LWPR": str(q.low),
              "ASKP1": str(q.ask), "BIDP1": str(q.bid), "CNTG_VOL": str(qty),
              "ACML_VOL": str(q.volume), "ACML_TR_PBMN": str(q.value),
              "BSOP_DATE": kst_yyyymmdd(ts_ns), "NEW_MKOP_CLS_CODE": "20", "TRHT_YN": "N",
              "HOUR_CLS_CODE": "0", "MRKT_TRTM_CLS_CODE": "0"})
    return "^".join(f[name] for name in wire.TRADE_FIELDS)


def book_record(q: Quote, ts_ns: int) -> str:
    f = dict.fromkeys(wire.BOOK_FIELDS, "0")
    f.update({"MKSC_SHRN_ISCD": q.code, "BSOP_HOUR": kst_hhmmss(ts_ns), "HOUR_CLS_CODE": "0",
              "ACML_VOL": str(q.volume)})
    for i in range(1, 11):
        f[f"ASKP{i}"] = str(min(q.upper, q.ask + (i - 1) * tick_size(q.ask, q.market)))
        f[f"BIDP{i}"] = str(max(q.lower, q.bid - (i - 1) * tick_size(q.bid, q.market)))
        f[f"ASKP_RSQN{i}"] = str(100 * i)
        f[f"BIDP_RSQN{i}"] = str(120 * i)
    f["TOTAL_ASKP_RSQN"] = str(sum(100 * i for i in range(1, 11)))
    f["TOTAL_BIDP_RSQN"] = str(sum(120 * i for i in range(1, 11)))
    return "^".join(f[name] for name in wire.BOOK_FIELDS)


class WsHub:
    """All WebSocket sessions of one simulator."""

    def __init__(self, venue: SimVenue) -> None:
        self.venue = venue
        self.sessions: list[WsSession] = []
        self.frames_sent = 0
        venue.notice_sinks.append(self.notice)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        session = WsSession(ws)
        self.sessions.append(session)
        writer = asyncio.get_running_loop().create_task(self._writer(session))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_text(session, msg.data)
                elif msg.type == WSMsgType.PING:
                    await ws.pong(msg.data)
                elif msg.type == WSMsgType.PONG:
                    session.ping_pending = False
        finally:
            writer.cancel()
            self.sessions.remove(session)
        return ws

    async def _writer(self, session: WsSession) -> None:
        while True:
            text = await session.outbox.get()
            if session.ws.closed:
                return
            await session.ws.send_str(text)
            self.frames_sent += 1

    def _on_text(self, s: WsSession, text: str) -> None:
        try:
            msg = json.loads(text)
            header = msg["header"]
            if header.get("tr_id") == "PINGPONG":
                s.ping_pending = False
                return
            tr_id = str(msg["body"]["input"]["tr_id"])
            tr_key = str(msg["body"]["input"]["tr_key"])
            approval, tr_type = str(header["approval_key"]), str(header["tr_type"])
        except (ValueError, KeyError, TypeError):
            s.push(_reply("", "", "9", "OPSP0007", "JSON PARSING ERROR"))
            return
        if approval not in self.venue.approvals:
            s.push(_reply(tr_id, tr_key, "9", "OPSP0011", "invalid approval : NOT FOUND"))
            return
        s.approval_key = approval
        if tr_id not in QUOTE_TRS + NOTICE_TRS:
            s.push(_reply(tr_id, tr_key, "9", "OPSP0009", "invalid tr_id"))
            return
        sub = (tr_id, tr_key)
        if tr_type == "1":
            if sub in s.subs:
                s.push(_reply(tr_id, tr_key, "1", "OPSP0002", "ALREADY IN SUBSCRIBE"))
            elif len(s.subs) >= self.venue.settings.max_subscriptions:
                s.push(_reply(tr_id, tr_key, "1", wire.WS_MAX_SUBSCRIBE, "MAX SUBSCRIBE OVER"))
            else:
                s.subs.add(sub)
                s.push(_reply(tr_id, tr_key, "0", wire.WS_SUBSCRIBED, "SUBSCRIBE SUCCESS",
                              {"iv": s.iv, "key": s.key}))
        elif tr_type == "2":
            if sub in s.subs:
                s.subs.discard(sub)
                s.push(_reply(tr_id, tr_key, "0", wire.WS_UNSUBSCRIBED, "UNSUBSCRIBE SUCCESS"))
            else:
                s.push(_reply(tr_id, tr_key, "1", "OPSP0003", "UNSUBSCRIBE ERROR(not found!)"))
        else:
            s.push(_reply(tr_id, tr_key, "9", "OPSP0007", f"invalid tr_type {tr_type!r}"))

    # -- pushes -------------------------------------------------------------------------

    def publish(self, prints: dict[str, list[tuple[int, int, int]]]) -> None:
        for s in self.sessions:
            for code, trades in prints.items():
                q = self.venue.market.quotes[code]
                if (wire.WS_TRADE, code) in s.subs and trades:
                    recs = "^".join(trade_record(q, *t) for t in trades)
                    s.push(f"0|{wire.WS_TRADE}|{len(trades):03d}|{recs}")
                if (wire.WS_BOOK, code) in s.subs:
                    s.push(f"0|{wire.WS_BOOK}|001|{book_record(q, trades[-1][0])}")

    def notice(self, hts_id: str, fields: list[str]) -> None:
        tr = wire.WS_NOTICE_REAL if self.venue.settings.domain == "real" \
            else wire.WS_NOTICE_VIRTUAL
        for s in self.sessions:
            if (tr, hts_id) in s.subs:
                s.push(f"1|{tr}|001|{aes_encrypt(s.key, s.iv, '^'.join(fields))}")

    def ping_all(self, stamp: str) -> None:
        """Send PINGPONG; a session that did not answer the previous one is dropped."""
        for s in list(self.sessions):
            if s.ping_pending:
                log.info("kis_sim_ws_ping_timeout")
                asyncio.get_running_loop().create_task(s.ws.close())
                continue
            s.ping_pending = True
            s.push(json.dumps({"header": {"tr_id": "PINGPONG", "datetime": stamp}}))

    async def close_all(self) -> None:
        for s in list(self.sessions):
            await s.ws.close()
