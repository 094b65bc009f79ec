"""WebSocket fan-out: one encoded frame, many clients, none able to slow the others.

An update is JSON-encoded once and framed once (server frames are unmasked and we do not
compress, so the bytes on the wire are identical for every client); ``publish`` then hands
that same ``bytes`` object to each connection's transport — no per-client task, queue or
encoding. The kernel and the transport buffer absorb short stalls. A client whose unsent
backlog exceeds ``backlog_bytes`` has fallen too far behind to be shown a correct picture
from deltas: it is closed with code 1013 ("try again later") and the page reconnects from a
fresh snapshot. Nothing is silently skipped.

Frames from aiohttp itself (pings, pongs, close) are written to the same transport from the
same thread, whole, so they never interleave with ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable

import structlog
from aiohttp import WSMsgType, web

log = structlog.get_logger(__name__)
CLOSE_TOO_SLOW = 1013


def text_frame(payload: bytes) -> bytes:
    """One unmasked, final WebSocket text frame (RFC 6455 §5.2)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x81, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x81, 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 127, n)
    return head + payload


class Client:
    __slots__ = ("slow", "transport", "user", "ws")

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport,
                 user: str) -> None:
        self.ws = ws
        self.transport = transport
        self.user = user
        self.slow = False


class Broadcaster:
    def __init__(self, backlog_bytes: int = 4_000_000, max_clients: int = 5000) -> None:
        self.backlog_bytes = backlog_bytes
        self.max_clients = max_clients
        self.clients: set[Client] = set()
        self.published = 0
        self.dropped_clients = 0

    def _drop(self, c: Client, why: str) -> None:
        c.slow = True
        self.dropped_clients += 1
        log.warning("dashboard_client_too_slow", user=c.user, reason=why,
                    backlog=c.transport.get_write_buffer_size())
        asyncio.get_running_loop().create_task(
            c.ws.close(code=CLOSE_TOO_SLOW, message=b"too slow; reconnect"))

    def publish(self, payload: bytes | str) -> int:
        """Send ``payload`` (UTF-8 JSON) to every client; returns how many it was written to."""
        if isinstance(payload, str):
            payload = payload.encode()
        self.published += 1
        frame = text_frame(payload)
        n = 0
        for c in self.clients:
            if c.slow:
                continue
            tr = c.transport
            if tr.is_closing():
                continue
            if tr.get_write_buffer_size() > self.backlog_bytes:
                self._drop(c, "backlog")
                continue
            tr.write(frame)
            n += 1
        return n

    async def serve(self, ws: web.WebSocketResponse, transport: asyncio.Transport | None,
                    user: str, first: Callable[[], bytes],
                    on_message: Callable[[str], bytes | None] | None = None) -> None:
        """Send ``first()`` (the snapshot) to the prepared ``ws``, then every published
        update until the socket closes. ``on_message`` answers client text messages."""
        if transport is None or transport.is_closing():
            return
        if len(self.clients) >= self.max_clients:
            await ws.close(code=CLOSE_TOO_SLOW, message=b"too many clients")
            return
        c = Client(ws, transport, user)
        # snapshot and registration with no await between them: no update is lost or
        # delivered before the snapshot
        transport.write(text_frame(first()))
        self.clients.add(c)
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT and on_message is not None:
                    reply = on_message(msg.data)
                    if reply is not None and not transport.is_closing():
                        transport.write(text_frame(reply))
                elif msg.type is WSMsgType.ERROR:
                    break
        finally:
            self.clients.discard(c)

    async def close_all(self) -> None:
        for c in list(self.clients):
            with contextlib.suppress(Exception):
                await c.ws.close(code=1001, message=b"server shutdown")
