"""The JSON API over real HTTP on loopback: every route refuses strangers; login, CSRF,
throttling and bad input give clear answers; operator actions and strategy editing work."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from decimal import Decimal

import pytest
from structlog.testing import capture_logs

from jts.dashboard.server import start_site
from jts.errors import DaemonError
from jts.krx import round_price
from tests.dashboard.conftest import PASSWORD, Env

OPEN = {("POST", "/api/login")}


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def api_routes(env: Env) -> list[tuple[str, str]]:
    out = []
    for r in env.client.app.router.routes():
        info = r.resource.get_info() if r.resource else {}
        path = info.get("path") or info.get("formatter") or ""
        if (path.startswith("/api/") or path == "/ws") and r.method != "HEAD":
            out.append((r.method, path))
    return out


async def test_every_api_route_refuses_unauthenticated_requests(env: Env) -> None:
    routes = api_routes(env)
    assert len(routes) >= 20 and ("GET", "/ws") in routes
    forged = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhZG1pbiIsImV4cCI6OTk5OTk5OTk5OX0"
              ".bm90LWEtc2lnbmF0dXJl")
    env.dash.signer.ttl = -10
    expired = env.dash.signer.issue("admin", csrf="x")
    checked = 0
    for method, path in routes:
        if (method, path) in OPEN:
            continue
        for headers in ({}, {"Authorization": f"Bearer {forged}"},
                        {"Authorization": f"Bearer {expired}"},
                        {"Cookie": f"jts_session={forged}"}):
            r = await env.client.request(method, _concrete(path), headers=headers, json={})
            assert r.status == 401, (method, path, headers, r.status)
            assert "error" in await r.json()
        checked += 1
    assert checked == len(routes) - 1


async def test_login_sets_strict_http_only_session_cookie(env: Env) -> None:
    r = await env.client.post("/api/login", json={"password": PASSWORD})
    assert r.status == 200
    cookies = r.headers.getall("Set-Cookie")
    session = next(c for c in cookies if c.startswith("jts_session="))
    csrf = next(c for c in cookies if c.startswith("jts_csrf="))
    assert "HttpOnly" in session and "SameSite=Strict" in session and "Path=/" in session
    assert "HttpOnly" not in csrf and "SameSite=Strict" in csrf
    s = await env.client.get("/api/session")
    assert s.status == 200 and (await s.json())["user"] == "admin"
    assert r.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]


async def test_wrong_passwords_are_throttled_and_logged(env: Env) -> None:
    with capture_logs() as logs:
        for _ in range(5):
            r = await env.client.post("/api/login", json={"password": "wrong-password"})
            assert r.status == 401
            assert (await r.json())["error"] == "wrong user name or password"
        r = await env.client.post("/api/login", json={"password": PASSWORD})
        assert r.status == 429 and (await r.json())["retry_after"] >= 1
    events = [e["event"] for e in logs]
    assert events.count("dashboard_login_failed") == 5 and "dashboard_login_throttled" in events
    env.clock.t += 60
    await env.login()


async def test_state_changes_need_the_csrf_token_and_same_origin(env: Env) -> None:
    csrf = await env.login()
    r = await env.client.post("/api/resume", json={})
    assert r.status == 403 and "CSRF" in (await r.json())["error"]
    r = await env.client.post("/api/resume", json={}, headers={"X-CSRF-Token": "nope"})
    assert r.status == 403
    r = await env.client.post("/api/resume", json={}, headers={
        "X-CSRF-Token": csrf, "Origin": "https://evil.example"})
    assert r.status == 403 and "cross-origin" in (await r.json())["error"]
    r = await env.client.post("/api/resume", json={}, headers={"X-CSRF-Token": csrf})
    assert r.status == 200 and (await r.json())["trading_state"] == "active"
    r = await env.client.post("/api/login", json={"password": PASSWORD},
                              headers={"Origin": "https://evil.example"})
    assert r.status == 403


async def test_bad_bodies_get_clear_errors(env: Env) -> None:
    csrf = await env.login()
    h = {"X-CSRF-Token": csrf}
    r = await env.client.post("/api/kill", data="{not json", headers={
        **h, "Content-Type": "application/json"})
    assert r.status == 400 and "malformed JSON" in (await r.json())["error"]
    r = await env.client.post("/api/kill", json=[1, 2], headers=h)
    assert r.status == 400 and "object" in (await r.json())["error"]
    r = await env.client.post("/api/kill", data="flatten=1", headers=h)
    assert r.status == 400 and "JSON" in (await r.json())["error"]
    big = "x" * (env.dash.cfg.max_body_bytes + 10)
    r = await env.client.post("/api/strategies/a/validate", json={"text": big}, headers=h)
    assert r.status == 413
    r = await env.client.post("/api/kill", json={"flatten": True}, headers=h)
    assert r.status == 400 and "confirm" in (await r.json())["error"]
    r = await env.client.post("/api/orders", json={"symbol": "NOPE", "side": "buy"}, headers=h)
    assert r.status == 400 and "NOPE" in (await r.json())["error"]
    r = await env.client.post("/api/logout", json={}, headers=h)
    assert r.status == 200
    r = await env.client.get("/api/session")
    assert r.status == 401


async def test_api_rate_limit_per_user(env: Env) -> None:
    await env.login()
    env.dash.api_limit.burst = 3
    env.dash.api_limit.rate = 1.0
    env.dash.api_limit._buckets.clear()
    codes = [(await env.client.get("/api/session")).status for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    env.clock.t += 1
    assert (await env.client.get("/api/session")).status == 200


async def test_order_cancel_and_stop_all_twice(env: Env) -> None:
    csrf = await env.login()
    h = {"X-CSRF-Token": csrf}
    sym = env.app.market.symbols[0]
    pc = float(env.app.market.prev_close(sym))
    env.feed({sym: pc})
    price = str(round_price(Decimal(str(pc * 0.97)), "down"))
    off_grid = str(Decimal(price) + 1)
    r = await env.client.post("/api/orders", json={"symbol": sym, "side": "buy", "type": "limit",
                                                   "quantity": 3, "limit_price": off_grid},
                              headers=h)
    assert r.status == 422 and "tick grid" in (await r.json())["error"]
    r = await env.client.post("/api/orders", json={"symbol": sym, "side": "buy", "type": "limit",
                                                   "quantity": 3, "limit_price": price}, headers=h)
    assert r.status == 200, await r.text()
    snap = await (await env.client.get("/api/snapshot")).json()
    (order,) = snap["orders"]
    assert order["symbol"] == sym and order["limit"] == price and order["status"] == "accepted"
    r = await env.client.post(f"/api/orders/{order['coid']}/cancel", json={}, headers=h)
    assert r.status == 200 and (await r.json())["status"] == "cancelled"
    r = await env.client.post(f"/api/orders/{order['coid']}/cancel", json={}, headers=h)
    assert r.status == 409 and "no open order" in (await r.json())["error"]
    await env.client.post("/api/orders", json={"symbol": sym, "side": "buy", "type": "limit",
                                               "quantity": 1, "limit_price": price}, headers=h)
    first = await env.client.post("/api/kill", json={"confirm": True}, headers=h)
    second = await env.client.post("/api/kill", json={"confirm": True, "flatten": True},
                                   headers=h)
    a, b = await first.json(), await second.json()
    assert first.status == second.status == 200
    assert a == {"trading_state": "halted", "cancelled": 1, "closing_orders": 0,
                 "already_halted": False}
    assert b["already_halted"] is True and b["cancelled"] == 0
    snap = await (await env.client.get("/api/snapshot")).json()
    assert snap["ov"]["trading_state"] == "halted" and snap["orders"] == []
    r = await env.client.post("/api/orders", json={"symbol": sym, "side": "buy", "type": "limit",
                                                   "quantity": 1, "limit_price": price}, headers=h)
    assert r.status == 422 and "trading state is halted" in (await r.json())["error"]


async def test_port_in_use_is_one_clear_error(env: Env, tmp_path: object) -> None:
    import msgspec

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        cfg = msgspec.structs.replace(env.app.cfg, dashboard=msgspec.structs.replace(
            env.app.cfg.dashboard, port=port))
        with pytest.raises(DaemonError, match=f"dashboard port {port} on 127.0.0.1 is already "
                                              "in use"):
            await start_site(env.dash, cfg)


async def test_run_dashboard_publishes_its_url(env: Env) -> None:
    import msgspec

    from jts.dashboard.server import run_dashboard

    cfg = msgspec.structs.replace(env.app.cfg, dashboard=msgspec.structs.replace(
        env.app.cfg.dashboard, port=0))
    task = asyncio.get_running_loop().create_task(run_dashboard(env.app, cfg))
    for _ in range(200_000):
        if getattr(env.app, "dashboard_url", None):
            break
        await asyncio.sleep(0)
    url = getattr(env.app, "dashboard_url", "")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url), url
    assert env.app.dashboard_hub is not None  # type: ignore[attr-defined]
