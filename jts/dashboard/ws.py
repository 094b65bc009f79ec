"""WebSocket fan-out: one encoded frame, many clients, none able to slow the others.

An update is JSON-encoded once (by the hub) and framed once here (server frames are unmasked
and we do not compress, so the bytes on the wire are identical for every client);
``publish`` hands that same ``bytes`` object to each connection's transport — no per-client
task, queue, encoding or ``await``. The kernel socket buffer absorbs short stalls.

A client whose transport holds more than ``behind_bytes`` unsent is *behind*: it gets no more
deltas (each skipped update counts in ``coalesced``). Once its backlog has drained to a
quarter of that, it gets one fresh snapshot — every update it missed, coalesced into one
message, built at most once per publish for all clients that recover together — and then the
deltas again (``resyncs``). A client still behind after ``behind_timeout`` seconds, or whose
backlog passes ``backlog_bytes``, or any client that falls behind when there is no snapshot
source, is closed with 1013 ("try again later"; ``dropped_clients``) and the page reconnects
from a snapshot. Nothing is silently skipped: a client sees every update or a snapshot that
supersedes the ones it missed.

Frames from aiohttp itself (pings, pongs, close) are written to the same transport from the
same thread, whole, so they never interleave with ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections.abc import Callable
from typing import Any

import structlog
from aiohttp import WSMsgType, web

from jts.dashboard.metrics import Samples

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
    __slots__ = ("behind_since", "slow", "transport", "user", "ws")

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport,
                 user: str) -> None:
        self.ws = ws
        self.transport = transport
        self.user = user
        self.slow = False                        # closed as too slow; nothing more is sent
        self.behind_since: float | None = None   # monotonic s; None while keeping up


class Broadcaster:
    """``snapshot()``, when given, returns the encoded full state *including* the update
    being published (the hub builds the update first, then publishes it)."""

    def __init__(self, backlog_bytes: int = 4_000_000, max_clients: int = 5000, *,
                 behind_bytes: int = 262_144, behind_timeout: float = 30.0,
                 snapshot: Callable[[], bytes] | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 wall_ns: Callable[[], int] = time.time_ns) -> None:
        self.backlog_bytes = backlog_bytes
        self.behind_bytes = behind_bytes
        self.behind_timeout = behind_timeout
        self.max_clients = max_clients
        self.snapshot = snapshot
        self._monotonic = monotonic
        self._wall_ns = wall_ns
        self.clients: set[Client] = set()
        self.published = 0
        self.writes = 0
        self.dropped_clients = 0
        self.coalesced = 0
        self.resyncs = 0
        self.publish_ms = Samples()          # wall time of one publish (all clients)
        self.publish_cpu_ms = Samples()      # this thread's CPU time for it

    def _drop(self, c: Client, why: str) -> None:
        c.slow = True
        self.dropped_clients += 1
        log.warning("dashboard_client_too_slow", user=c.user, reason=why,
                    backlog=c.transport.get_write_buffer_size())
        asyncio.get_running_loop().create_task(
            c.ws.close(code=CLOSE_TOO_SLOW, message=b"too slow; reconnect"))

    def publish(self, payload: bytes | str) -> int:
        """Send ``payload`` (UTF-8 JSON) to every client; returns how many got a frame."""
        t0, c0 = time.perf_counter(), time.thread_time()
        if isinstance(payload, str):
            payload = payload.encode()
        self.published += 1
        frame = text_frame(payload)
        snap: bytes | None = None
        limit = self.behind_bytes
        n = 0
        for c in self.clients:
            if c.slow:
                continue
            tr = c.transport
            if tr.is_closing():
                continue
            size = tr.get_write_buffer_size()
            if c.behind_since is None and size <= limit:
                tr.write(frame)
                n += 1
            elif size > self.backlog_bytes or self.snapshot is None:
                self._drop(c, "backlog")
            elif c.behind_since is None:
                c.behind_since = self._monotonic()
                self.coalesced += 1
                log.info("dashboard_client_behind", user=c.user, backlog=size)
            elif size <= limit // 4:
                if snap is None:
                    snap = text_frame(self.snapshot())
                tr.write(snap)
                c.behind_since = None
                self.resyncs += 1
                n += 1
            elif self._monotonic() - c.behind_since > self.behind_timeout:
                self._drop(c, "behind_timeout")
            else:
                self.coalesced += 1
        self.writes += n
        now = self._wall_ns()
        self.publish_ms.add(now, (time.perf_counter() - t0) * 1000)
        self.publish_cpu_ms.add(now, (time.thread_time() - c0) * 1000)
        return n

    def stats(self, since_ns: int = 0) -> dict[str, Any]:
        return {"clients": len(self.clients),
                "behind": sum(1 for c in self.clients if c.behind_since is not None),
                "published": self.published, "writes": self.writes,
                "coalesced": self.coalesced, "resyncs": self.resyncs,
                "dropped_clients": self.dropped_clients,
                "publish_ms": self.publish_ms.summary(since_ns),
                "publish_cpu_ms": self.publish_cpu_ms.summary(since_ns)}

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
