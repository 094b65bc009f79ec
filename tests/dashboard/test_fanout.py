"""WebSocket fan-out: one frame for every client; a client that falls behind gets no more
deltas, then one resync snapshot once it has drained (or is closed if it never does); the
fan-out's own figures (publish time, event-loop lag) are served at /api/fanout."""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any, cast

import pytest
from aiohttp import web

from jts.clock import FakeClock
from jts.dashboard.live import next_due
from jts.dashboard.metrics import LoopLag, Samples
from jts.dashboard.ws import CLOSE_TOO_SLOW, Broadcaster, Client, text_frame
from tests.dashboard.conftest import Env, FakeTime


class FakeTransport:
    def __init__(self) -> None:
        self.backlog = 0
        self.written: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_write_buffer_size(self) -> int:
        return self.backlog

    def is_closing(self) -> bool:
        return self.closing


class FakeWS:
    def __init__(self) -> None:
        self.closed_with: int | None = None

    async def close(self, *, code: int, message: bytes = b"") -> bool:
        self.closed_with = code
        return True


def _client(bc: Broadcaster) -> tuple[Client, FakeTransport, FakeWS]:
    tr, ws = FakeTransport(), FakeWS()
    c = Client(cast(web.WebSocketResponse, ws), cast(asyncio.Transport, tr), "admin")
    bc.clients.add(c)
    return c, tr, ws


async def test_publish_writes_one_frame_object_to_every_client() -> None:
    bc = Broadcaster()
    trs = [_client(bc)[1] for _ in range(3)]
    assert bc.publish(b'{"t":"u","seq":1}') == 3
    (frame,) = trs[0].written
    assert frame == text_frame(b'{"t":"u","seq":1}')
    assert all(t.written[0] is frame for t in trs)
    assert bc.stats()["publish_ms"]["n"] == 1 and bc.writes == 3


async def test_behind_client_is_coalesced_then_resynced_with_one_shared_snapshot() -> None:
    built: list[int] = []

    def snapshot() -> bytes:
        built.append(1)
        return b'{"t":"snapshot","seq":5}'

    bc = Broadcaster(behind_bytes=1000, snapshot=snapshot, monotonic=FakeTime())
    (_, fast_tr, _), (s1, t1, _), (s2, t2, _) = (_client(bc) for _ in range(3))
    t1.backlog = t2.backlog = 5000
    assert bc.publish(b'{"t":"u","seq":1}') == 1          # only the fast one gets it
    assert s1.behind_since is not None and s2.behind_since is not None
    t1.backlog = t2.backlog = 400                         # drained, but not enough
    assert bc.publish(b'{"t":"u","seq":2}') == 1
    t1.backlog = t2.backlog = 250                         # <= a quarter of behind_bytes
    assert bc.publish(b'{"t":"u","seq":3}') == 3
    assert built == [1] and t1.written[-1] is t2.written[-1]
    assert json.loads(t1.written[-1][2:])["t"] == "snapshot"
    assert len(t1.written) == 1 and len(fast_tr.written) == 3
    assert bc.publish(b'{"t":"u","seq":4}') == 3          # deltas again
    assert t1.written[-1] is fast_tr.written[-1]
    assert (bc.coalesced, bc.resyncs, bc.dropped_clients) == (4, 2, 0)
    assert s1.behind_since is None and bc.stats()["behind"] == 0


async def test_client_behind_too_long_or_too_far_is_closed_with_1013() -> None:
    now = FakeTime()
    bc = Broadcaster(backlog_bytes=100_000, behind_bytes=1000, behind_timeout=30.0,
                     snapshot=lambda: b'{"t":"snapshot"}', monotonic=now)
    (late, late_tr, late_ws), (big, big_tr, big_ws) = _client(bc), _client(bc)
    late_tr.backlog = 2000
    bc.publish(b"{}")
    now.t += 29
    bc.publish(b"{}")
    assert not late.slow
    now.t += 2
    big_tr.backlog = 200_000
    assert bc.publish(b"{}") == 0
    await asyncio.sleep(0)
    assert late.slow and big.slow and bc.dropped_clients == 2
    assert late_ws.closed_with == CLOSE_TOO_SLOW and big_ws.closed_with == CLOSE_TOO_SLOW
    bc.publish(b"{}")
    assert bc.dropped_clients == 2 and late_tr.written == [] and len(big_tr.written) == 2


async def test_without_a_snapshot_source_a_behind_client_is_closed() -> None:
    bc = Broadcaster(behind_bytes=1000)
    c, tr, ws = _client(bc)
    tr.backlog = 1001
    assert bc.publish(b"{}") == 0
    await asyncio.sleep(0)
    assert c.slow and ws.closed_with == CLOSE_TOO_SLOW and bc.coalesced == 0


def test_samples_summary_since() -> None:
    s = Samples(maxlen=1000)
    for i in range(1, 201):
        s.add(i, float(i))
    assert s.summary() == {"n": 200, "p50": 100.0, "p99": 198.0, "max": 200.0}
    assert s.summary(since_ns=101) == {"n": 100, "p50": 150.0, "p99": 199.0, "max": 200.0}
    assert s.summary(since_ns=1000)["n"] == 0


async def test_loop_lag_records_how_late_each_wake_up_was_and_its_cpu_share() -> None:
    clock = FakeClock(0)
    cpu = [0.0]
    lag = LoopLag(clock, interval=0.05, thread_cpu=lambda: cpu[0])
    task = asyncio.get_running_loop().create_task(lag.run())

    async def wake(advance: float, cpu_s: float) -> None:
        cpu[0] += cpu_s
        clock.advance(advance)
        for _ in range(3):
            await asyncio.sleep(0)

    await asyncio.sleep(0)
    await wake(0.05, 0.01)               # on time
    await wake(0.25, 0.01)               # 200 ms late, 10 ms of it ours: waited for a core
    await wake(0.15, 0.14)               # 100 ms late, the loop ran 140 ms: our own stall
    task.cancel()
    assert lag.samples.summary() == {"n": 3, "p50": 100.0, "p99": 200.0, "max": 200.0}
    on_cpu = lag.on_cpu.summary()
    assert on_cpu["n"] == 3 and on_cpu["p50"] == pytest.approx(10.0)
    assert on_cpu["max"] == pytest.approx(100.0)


async def _read_frame(r: asyncio.StreamReader) -> dict[str, Any]:
    b0, b1 = await r.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await r.readexactly(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", await r.readexactly(8))
    assert b0 == 0x81
    return dict(json.loads(await r.readexactly(n)))


async def test_real_socket_behind_then_snapshot_then_deltas(env: Env) -> None:
    await env.login()
    cookie = env.client.session.cookie_jar.filter_cookies(env.client.make_url("/"))
    port = env.client.port
    assert port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2 ** 16)
    writer.write((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\nCookie: jts_session="
                  f"{cookie['jts_session'].value}\r\n\r\n").encode())
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    assert (await _read_frame(reader))["t"] == "snapshot"
    bc = env.dash.broadcaster
    bc.behind_bytes = 65_536
    (client,) = bc.clients
    pad = "x" * 100_000
    sent = 0
    while client.behind_since is None and sent < 2000:     # we do not read: buffers fill
        bc.publish(json.dumps({"t": "u", "seq": sent, "pad": pad}))
        sent += 1
        await asyncio.sleep(0)
    assert client.behind_since is not None and bc.coalesced == 1
    kinds: list[str] = []
    while "snapshot" not in kinds:                          # read; the server sees the drain
        kinds.append((await _read_frame(reader))["t"])
        bc.publish(b'{"t":"u","seq":-1}')
    assert kinds.count("snapshot") == 1 and kinds[-1] == "snapshot"
    assert kinds[:-1] == ["u"] * (sent - 1) and bc.resyncs == 1 and bc.dropped_clients == 0
    assert (await _read_frame(reader)) == {"t": "u", "seq": -1}
    writer.close()


async def test_fanout_figures_are_served(env: Env) -> None:
    await env.login()
    env.dash.broadcaster.publish(b"{}")
    r = await env.client.get("/api/fanout")
    body = await r.json()
    assert r.status == 200 and body["published"] == 1 and body["publish_ms"]["n"] == 1
    assert body["loop_lag_ms"] == {"n": 0, "p50": None, "p99": None, "max": None}
    assert body["loop_lag_on_cpu_ms"]["n"] == 0
    assert body["build_ms"]["n"] == 0 and body["gc_full_ms"]["n"] == 0
    assert (await env.client.get("/api/fanout?since=1")).status == 200
    r = await env.client.get("/api/fanout?since=yesterday")
    assert r.status == 400 and "since" in (await r.json())["error"]


def test_updates_are_paced_on_deadlines_without_bursts_after_a_stall() -> None:
    assert next_due(10.0, 10.03, 0.1) == 10.1        # 30 ms of work does not stretch it
    assert next_due(10.0, 10.15, 0.1) == 10.1        # one late push: caught up at once
    assert next_due(10.0, 10.5, 0.1) == 10.5         # a long stall restarts from now
