"""Live updates: the WebSocket gets a snapshot then every update in order; prices, fills and
alerts flow from the bus; a client too slow to keep up is closed (1013), not fed gaps."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import aiohttp

from jts.dashboard.ws import CLOSE_TOO_SLOW
from tests.dashboard.conftest import Env


async def _recv(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await ws.receive()
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    return dict(json.loads(msg.data))


async def _pump_router(env: Env) -> None:
    async for report in env.app.broker.events():
        await env.app.desk.on_report(report)


async def test_websocket_snapshot_then_ordered_updates_with_prices_and_fills(env: Env) -> None:
    await env.login()
    hub, bc = env.dash.hub, env.dash.broadcaster
    ws = await env.client.ws_connect("/ws")
    snap = await _recv(ws)
    assert snap["t"] == "snapshot" and snap["ov"]["mode"] == "paper"
    router = asyncio.get_running_loop().create_task(_pump_router(env))
    notifier = asyncio.get_running_loop().create_task(env.app.notifier.run())
    sym = env.app.market.symbols[1]
    pc = float(env.app.market.prev_close(sym))
    env.feed({sym: pc})
    hub.drain_inputs()
    bc.publish(hub.build_update())
    u1 = await _recv(ws)
    assert u1["t"] == "u" and u1["seq"] == snap["seq"] + 1 and u1["px"][sym][0] == pc
    r = await env.client.post("/api/orders", json={"symbol": sym, "side": "buy", "type": "market",
                                                   "quantity": 2},
                              headers={"X-CSRF-Token": (await (await env.client.get(
                                  "/api/session")).json())["csrf"]})
    assert r.status == 200, await r.text()
    fills: list[dict[str, Any]] = []
    seq = u1["seq"]
    for _ in range(50):
        env.feed({sym: pc + 100})
        await asyncio.sleep(0)
        hub.drain_inputs()
        bc.publish(hub.build_update())
        u = await _recv(ws)
        assert u["seq"] == seq + 1
        seq = u["seq"]
        fills += u["fills"]
        if fills:
            break
    assert fills and fills[0]["symbol"] == sym and fills[0]["qty"] == "2"
    assert u["pos"] and u["pos"][0]["symbol"] == sym
    alerts: list[dict[str, Any]] = []
    for _ in range(10_000):            # the notifier delivers to its dashboard feed
        await asyncio.sleep(0)
        hub.drain_inputs()
        bc.publish(hub.build_update())
        u = await _recv(ws)
        alerts += u["alerts"]
        if any(a["kind"] == "fill" for a in alerts):
            break
    router.cancel()
    notifier.cancel()
    fill_alert = next(a for a in alerts if a["kind"] == "fill")
    assert fill_alert["source"] == "alerts" and sym in fill_alert["message"]
    chart = await (await env.client.get(f"/api/chart/{sym}")).json()
    assert chart["markers"] and chart["markers"][0][2] == "buy"
    await ws.close()


async def test_alert_sink_and_state_change_reach_the_feed(env: Env) -> None:
    hub = env.dash.hub
    hub.push_alert(kind="feed_stale", level="warning", message="sim feed stale", feed="sim",
                   extra=Decimal("1.5"))
    await env.app.kill(reason="test")
    hub.build_update()
    kinds = [a["kind"] for a in hub.alerts]
    assert kinds[:2] == ["feed_stale", "trading_state"]
    assert hub.alerts[0]["extra"] == "1.5" and "halted" in hub.alerts[1]["message"]
    await env.login()
    alerts = await (await env.client.get("/api/alerts")).json()
    assert [a["kind"] for a in alerts["alerts"]][:2] == ["feed_stale", "trading_state"]


async def test_slow_client_is_closed_not_fed_gaps(env: Env) -> None:
    await env.login()
    bc = env.dash.broadcaster
    ws = await env.client.ws_connect("/ws")
    await _recv(ws)
    (client,) = bc.clients
    bc.behind_bytes = bc.backlog_bytes = -1     # any state counts as "too far behind"
    assert bc.publish(b'{"t":"u"}') == 0 and client.slow and bc.dropped_clients == 1
    while True:
        msg = await ws.receive()
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            break
        assert json.loads(msg.data)["t"] != "u"
    assert ws.close_code == CLOSE_TOO_SLOW


def test_text_frame_lengths() -> None:
    from jts.dashboard.ws import text_frame

    assert text_frame(b"hi") == b"\x81\x02hi"
    assert text_frame(b"x" * 200)[:4] == b"\x81\x7e\x00\xc8"
    assert text_frame(b"x" * 70_000)[:10] == b"\x81\x7f" + (70_000).to_bytes(8, "big")


async def test_websocket_ping_and_cross_origin_refused(env: Env) -> None:
    await env.login()
    ws = await env.client.ws_connect("/ws")
    await _recv(ws)
    await ws.send_str("ping")
    assert (await _recv(ws)) == {"t": "pong"}
    await ws.close()
    r = await env.client.get("/ws", headers={"Origin": "http://evil.example"})
    assert r.status == 403
