"""The dashboard's JSON API and WebSocket endpoint (routes under ``/api`` and ``/ws``).

Every route except ``POST /api/login`` requires a session (enforced by the auth middleware
in :mod:`jts.dashboard.server`); handlers validate their input and answer with a JSON
``{"error": …}`` and a 4xx status for bad input, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal, InvalidOperation
from typing import Any

import structlog
from aiohttp import web

from jts.dashboard.auth import new_csrf_token
from jts.dashboard.server import CLAIMS, DASH, Dashboard, client_ip, json_error
from jts.dashboard.strategies import BadRequest, NotAvailable
from jts.errors import DaemonError
from jts.types import OrderIntent, OrderType, Side

log = structlog.get_logger(__name__)


def _d(request: web.Request) -> Dashboard:
    return request.app[DASH]


async def body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise BadRequest("send a JSON body (Content-Type: application/json)")
    try:
        data = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest("the JSON body must be an object")
    return data


def _str(data: dict[str, Any], key: str, default: str | None = None, limit: int = 200) -> str:
    v = data.get(key, default)
    if not isinstance(v, str):
        raise BadRequest(f"field {key!r} must be a string")
    if len(v) > limit:
        raise BadRequest(f"field {key!r} is longer than {limit} characters")
    return v


def _int_query(request: web.Request, key: str) -> int:
    try:
        return int(request.query[key])
    except (KeyError, ValueError):
        raise BadRequest(f"query parameter {key!r} must be an integer") from None


# --- session ---------------------------------------------------------------------------------
async def login(request: web.Request) -> web.Response:
    d = _d(request)
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        return json_error(403, "cross-origin login refused")
    data = await body(request)
    user = _str(data, "username", d.cfg.username, 64) or d.cfg.username
    password = _str(data, "password", "", 1024)
    ip = client_ip(request)
    if not (d.login_ip.allow(f"ip:{ip}") and d.login_user.allow(f"user:{user}")):
        retry = max(1, round(max(d.login_ip.retry_after(f"ip:{ip}"),
                                 d.login_user.retry_after(f"user:{user}"))))
        log.warning("dashboard_login_throttled", user=user, ip=ip)
        return json_error(429, "too many login attempts; try again later", retry_after=retry)
    if not d.passwords.is_set:
        return json_error(409, "no dashboard password is set: run `jts dashboard passwd` "
                               "(or start with JTS_DASHBOARD_PASSWORD)")
    ok = user == d.cfg.username and await asyncio.to_thread(d.passwords.check, password)
    if not ok:
        log.warning("dashboard_login_failed", user=user, ip=ip)
        return json_error(401, "wrong user name or password")
    csrf = new_csrf_token()
    token = d.signer.issue(user, csrf=csrf)
    log.info("dashboard_login", user=user, ip=ip)
    resp = web.json_response({"user": user, "csrf": csrf, "lang": d.cfg.language})
    ttl = int(d.cfg.session_ttl)
    resp.set_cookie(d.session_cookie, token, max_age=ttl, path="/", httponly=True,
                    secure=d.secure, samesite="Strict")
    resp.set_cookie(d.csrf_cookie, csrf, max_age=ttl, path="/", httponly=False,
                    secure=d.secure, samesite="Strict")
    return resp


async def session(request: web.Request) -> web.Response:
    c = request[CLAIMS]
    d = _d(request)
    return web.json_response({"user": c["sub"], "csrf": c.get("csrf"), "exp": c["exp"],
                              "lang": d.cfg.language, "url": d.url,
                              "backtest": d.strategies.backtest_available()})


async def logout(request: web.Request) -> web.Response:
    d = _d(request)
    c = request[CLAIMS]
    d.revoke(str(c.get("jti")), int(c["exp"]))
    resp = web.json_response({"ok": True})
    resp.del_cookie(d.session_cookie, path="/")
    resp.del_cookie(d.csrf_cookie, path="/")
    return resp


# --- live data -------------------------------------------------------------------------------
async def snapshot(request: web.Request) -> web.Response:
    return web.json_response(_d(request).hub.snapshot(), dumps=_dumps)


async def status(request: web.Request) -> web.Response:
    d = _d(request)
    st = d.app.status()
    st["dashboard"] = st.get("dashboard") or d.url
    return web.json_response(st, dumps=_dumps)


async def chart(request: web.Request) -> web.Response:
    c = _d(request).hub.chart(request.match_info["symbol"])
    if c is None:
        return json_error(404, f"unknown symbol {request.match_info['symbol']!r}")
    return web.json_response(c)


async def alerts(request: web.Request) -> web.Response:
    return web.json_response({"alerts": list(_d(request).hub.alerts)})


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=str, ensure_ascii=False)


# --- operator actions --------------------------------------------------------------------------
async def place_order(request: web.Request) -> web.Response:
    d = _d(request)
    data = await body(request)
    symbol = _str(data, "symbol", "", 20)
    if symbol not in d.app.last_prices:
        raise BadRequest(f"unknown or not yet priced symbol {symbol!r}")
    try:
        side = Side(_str(data, "side", "", 8))
        otype = OrderType(_str(data, "type", "limit", 8))
        qty = Decimal(str(data.get("quantity")))
        price = None if otype is OrderType.MARKET else Decimal(str(data.get("limit_price")))
    except (ValueError, InvalidOperation):
        raise BadRequest("side must be buy/sell, type market/limit, quantity and "
                         "limit_price numbers") from None
    if not qty.is_finite() or qty <= 0 or qty != qty.to_integral_value():
        raise BadRequest("quantity must be a positive whole number")
    if price is not None and (not price.is_finite() or price <= 0):
        raise BadRequest("limit_price must be a positive number")
    intent = OrderIntent("operator", symbol, side, qty, d.app.clock.now_ns(),
                         order_type=otype, limit_price=price, reason="dashboard")
    decision = await d.app.desk.handle(intent)
    log.info("dashboard_order", user=request[CLAIMS]["sub"], symbol=symbol,
             side=side.value, quantity=str(qty), approved=decision.approved)
    if not decision.approved:
        return json_error(422, f"rejected by risk ({decision.check}): {decision.reason}")
    rec = next((o for o in reversed(d.app.desk.orders.values())
                if o.request.strategy == "operator" and o.request.symbol == symbol), None)
    if rec is not None and rec.status.value == "rejected":
        return json_error(422, f"rejected by the broker: {rec.reason}")
    return web.json_response({"ok": True, "client_order_id": rec.request.client_order_id
                              if rec else None, "status": rec.status.value if rec else None})


async def cancel(request: web.Request) -> web.Response:
    d = _d(request)
    coid = request.match_info["coid"]
    log.info("dashboard_cancel", user=request[CLAIMS]["sub"], client_order_id=coid)
    return web.json_response(await d.app.cancel(coid))


async def kill(request: web.Request) -> web.Response:
    d = _d(request)
    data = await body(request)
    if data.get("confirm") is not True:
        raise BadRequest("stop-all needs \"confirm\": true")
    flatten = data.get("flatten", False)
    if not isinstance(flatten, bool):
        raise BadRequest("field 'flatten' must be true or false")
    if d.kill_lock.locked():
        return json_error(409, "stop-all is already in progress")
    async with d.kill_lock:
        already = d.app.risk.state.value == "halted"
        log.warning("dashboard_stop_all", user=request[CLAIMS]["sub"], flatten=flatten,
                    already_halted=already)
        r = await d.app.kill(flatten=flatten, reason="dashboard stop-all")
    return web.json_response({**r, "already_halted": already})


async def resume(request: web.Request) -> web.Response:
    d = _d(request)
    if d.kill_lock.locked():
        raise DaemonError("stop-all is in progress")
    log.warning("dashboard_resume", user=request[CLAIMS]["sub"])
    return web.json_response(await d.app.resume())


# --- strategies --------------------------------------------------------------------------------
async def strategies_list(request: web.Request) -> web.Response:
    d = _d(request)
    return web.json_response({"strategies": await d.strategies.list_all(),
                              "backtest": d.strategies.backtest_available()})


async def strategy_get(request: web.Request) -> web.Response:
    return web.json_response(await _d(request).strategies.get(request.match_info["name"]))


async def strategy_validate(request: web.Request) -> web.Response:
    data = await body(request)
    return web.json_response(await _d(request).strategies.validate(
        request.match_info["name"], data.get("text")))  # type: ignore[arg-type]


async def strategy_params(request: web.Request) -> web.Response:
    from jts.dashboard.strategies import check_text, set_params

    data = await body(request)
    params = data.get("params")
    if not isinstance(params, dict):
        raise BadRequest("field 'params' must be an object of name → number")
    text = set_params(check_text(data.get("text")), params)
    result = await _d(request).strategies.validate(request.match_info["name"], text)
    return web.json_response({**result, "text": text})


async def strategy_save(request: web.Request) -> web.Response:
    data = await body(request)
    r = await _d(request).strategies.save(request.match_info["name"], data.get("text"),  # type: ignore[arg-type]
                                          _str(data, "message", "", 500),
                                          str(request[CLAIMS]["sub"]))
    return web.json_response(r, status=200 if r["ok"] else 422)


async def strategy_versions(request: web.Request) -> web.Response:
    return web.json_response({"versions": await _d(request).strategies.versions(
        request.match_info["name"])})


async def strategy_version(request: web.Request) -> web.Response:
    try:
        v = int(request.match_info["version"])
    except ValueError:
        raise BadRequest("version must be an integer") from None
    return web.json_response(await _d(request).strategies.version(request.match_info["name"], v))


async def strategy_diff(request: web.Request) -> web.Response:
    text = await _d(request).strategies.diff(request.match_info["name"], _int_query(request, "a"),
                                             _int_query(request, "b"))
    return web.json_response({"diff": text})


async def strategy_backtest(request: web.Request) -> web.Response:
    data = await body(request)
    r = await _d(request).strategies.backtest(request.match_info["name"], data.get("text"))  # type: ignore[arg-type]
    return web.json_response(r, status=200 if r["ok"] else 422)


async def reports(request: web.Request) -> web.Response:
    return web.json_response({"reports": await _d(request).strategies.reports()})


async def report(request: web.Request) -> web.Response:
    return web.json_response(await _d(request).strategies.report(request.match_info["id"]),
                             dumps=_dumps)


REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"


async def report_html(request: web.Request) -> web.Response:
    """The stored report rendered by the backtest package (no scripts allowed)."""
    r = await _d(request).strategies.report(request.match_info["id"])
    try:
        from jts.backtest.report import render_html
    except ImportError:
        raise NotAvailable("report rendering is not available in this build") from None
    html = await asyncio.to_thread(render_html, r["data"])
    return web.Response(text=html, content_type="text/html",
                        headers={"Content-Security-Policy": REPORT_CSP})


# --- websocket ---------------------------------------------------------------------------------
async def websocket(request: web.Request) -> web.StreamResponse:
    d = _d(request)
    # no per-message compression: one encoded update goes to every client unchanged
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=4096, compress=False)
    await ws.prepare(request)

    def on_message(text: str) -> bytes | None:
        return b'{"t":"pong"}' if text == "ping" else None

    await d.broadcaster.serve(ws, request.transport, str(request[CLAIMS]["sub"]),
                              d.hub.encoded_snapshot, on_message)
    return ws


async def fanout(request: web.Request) -> web.Response:
    """The WebSocket fan-out's counters, publish time and event-loop lag (ms; and the part
    of it the loop's thread was on a CPU) over the samples taken since
    ``?since=<unix ns>`` (default: all kept)."""
    d = _d(request)
    try:
        since = int(request.query.get("since", "0"))
    except ValueError:
        raise BadRequest("since must be Unix nanoseconds") from None
    return web.json_response(d.broadcaster.stats(since)
                             | {"build_ms": d.hub.build_ms.summary(since),
                                "loop_lag_ms": d.lag.samples.summary(since),
                                "loop_lag_on_cpu_ms": d.lag.on_cpu.summary(since),
                                "gc_full_ms": d.lag.gc_full_ms.summary(since)})


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_post("/api/login", login)
    r.add_get("/api/session", session)
    r.add_post("/api/logout", logout)
    r.add_get("/api/snapshot", snapshot)
    r.add_get("/api/status", status)
    r.add_get("/api/chart/{symbol}", chart)
    r.add_get("/api/alerts", alerts)
    r.add_post("/api/orders", place_order)
    r.add_post("/api/orders/{coid}/cancel", cancel)
    r.add_post("/api/kill", kill)
    r.add_post("/api/resume", resume)
    r.add_get("/api/strategies", strategies_list)
    r.add_get("/api/strategies/{name}", strategy_get)
    r.add_post("/api/strategies/{name}/validate", strategy_validate)
    r.add_post("/api/strategies/{name}/params", strategy_params)
    r.add_post("/api/strategies/{name}/versions", strategy_save)
    r.add_get("/api/strategies/{name}/versions", strategy_versions)
    r.add_get("/api/strategies/{name}/versions/{version}", strategy_version)
    r.add_get("/api/strategies/{name}/diff", strategy_diff)
    r.add_post("/api/strategies/{name}/backtest", strategy_backtest)
    r.add_get("/api/reports", reports)
    r.add_get("/api/reports/{id}", report)
    r.add_get("/api/reports/{id}/html", report_html)
    r.add_get("/api/fanout", fanout)
    r.add_get("/ws", websocket)
