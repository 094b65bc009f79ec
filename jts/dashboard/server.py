"""The dashboard web server: aiohttp inside the daemon's event loop.

``run_dashboard(app, cfg)`` is the supervised component the daemon starts. It builds the
:class:`Dashboard` (hub, broadcaster, auth, strategy service), serves the static PWA and the
JSON API (:mod:`jts.dashboard.api`) on ``[dashboard] host:port`` (TLS when a certificate is
configured), sets ``app.dashboard_url`` and ``app.dashboard_hub``, and runs until cancelled.

Request pipeline (middlewares, outermost first): security headers and JSON errors → auth
(session cookie or bearer token on ``/api/*`` and ``/ws``; only ``POST /api/login`` is open)
→ per-user-and-IP rate limit → CSRF (state-changing calls need ``X-CSRF-Token`` equal to the
session's token and a same-origin ``Origin`` when the browser sends one).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web

from jts.clock import LiveClock
from jts.dashboard.auth import PasswordStore, RateLimiter, TokenError, TokenSigner, load_secret
from jts.dashboard.live import Hub
from jts.dashboard.metrics import LoopLag
from jts.dashboard.strategies import BadRequest, NotAvailable, StrategyService
from jts.dashboard.ws import Broadcaster
from jts.errors import DaemonError, JTSError

if TYPE_CHECKING:
    from jts.app import App
    from jts.config import Config
    from jts.dashboard.config import DashboardConfig
    from jts.storage.documents import Documents

log = structlog.get_logger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OPEN_ROUTES = frozenset({("POST", "/api/login")})
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self' ws: wss:; manifest-src 'self'; worker-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


@dataclass
class Dashboard:
    app: App
    cfg: DashboardConfig
    hub: Hub
    broadcaster: Broadcaster
    passwords: PasswordStore
    signer: TokenSigner
    strategies: StrategyService
    secure: bool
    login_ip: RateLimiter
    login_user: RateLimiter
    api_limit: RateLimiter
    lag: LoopLag = field(default_factory=lambda: LoopLag(LiveClock()))
    kill_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    revoked: dict[str, int] = field(default_factory=dict)      # jti → exp
    url: str = ""

    @property
    def session_cookie(self) -> str:
        return "__Host-jts_session" if self.secure else "jts_session"

    @property
    def csrf_cookie(self) -> str:
        return "__Host-jts_csrf" if self.secure else "jts_csrf"

    def claims(self, request: web.Request) -> dict[str, Any]:
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else request.cookies.get(
            self.session_cookie, "")
        if not token:
            raise TokenError("not logged in")
        claims = self.signer.verify(token)
        if claims.get("jti") in self.revoked:
            raise TokenError("session ended (logged out)")
        claims["_bearer"] = auth.startswith("Bearer ")
        return claims

    def revoke(self, jti: str, exp: int) -> None:
        now = time.time()
        for k in [k for k, e in self.revoked.items() if e < now]:
            del self.revoked[k]
        self.revoked[jti] = exp


DASH: web.AppKey[Dashboard] = web.AppKey("dashboard", Dashboard)
CLAIMS: web.RequestKey[dict[str, Any]] = web.RequestKey("claims", dict)


def client_ip(request: web.Request) -> str:
    return request.remote or "?"


def json_error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def _origin_ok(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return origin == f"{request.scheme}://{request.host}"


@web.middleware
async def errors_mw(request: web.Request, handler: Handler) -> web.StreamResponse:
    api = request.path.startswith("/api/")
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        if not api or exc.content_type == "application/json":
            raise
        resp = json_error(exc.status, exc.reason)
    except BadRequest as exc:
        resp = json_error(400, str(exc))
    except NotAvailable as exc:
        resp = json_error(501, str(exc))
    except DaemonError as exc:
        resp = json_error(409, str(exc))
    except JTSError as exc:
        resp = json_error(400, str(exc))
    except Exception as exc:
        log.error("dashboard_handler_failed", path=request.path,
                  error=f"{type(exc).__name__}: {exc}", exc_info=True)
        resp = json_error(500, "internal error; see the daemon log")
    if not resp.prepared:
        h = resp.headers
        h.setdefault("Content-Security-Policy", CSP)
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Referrer-Policy", "no-referrer")
        if api:
            h["Cache-Control"] = "no-store"
        if request.app[DASH].secure:
            h.setdefault("Strict-Transport-Security", "max-age=31536000")
    return resp


@web.middleware
async def auth_mw(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if not (path.startswith("/api/") or path == "/ws"):
        return await handler(request)
    d = request.app[DASH]
    if (request.method, path) in OPEN_ROUTES:
        return await handler(request)
    try:
        claims = d.claims(request)
    except TokenError as exc:
        return json_error(401, str(exc))
    request[CLAIMS] = claims
    key = f"{claims.get('sub')}|{client_ip(request)}"
    if not d.api_limit.allow(key):
        retry = max(1, round(d.api_limit.retry_after(key)))
        log.warning("dashboard_rate_limited", user=claims.get("sub"), ip=client_ip(request),
                    path=path)
        return json_error(429, "too many requests", retry_after=retry)
    if request.method not in SAFE_METHODS or path == "/ws":
        if not _origin_ok(request):
            log.warning("dashboard_bad_origin", origin=request.headers.get("Origin"), path=path)
            return json_error(403, "cross-origin request refused")
        if request.method not in SAFE_METHODS and not claims["_bearer"]:
            sent = request.headers.get("X-CSRF-Token", "")
            if not sent or sent != claims.get("csrf"):
                return json_error(403, "missing or wrong CSRF token (X-CSRF-Token)")
    return await handler(request)


def _static(name: str, ctype: str, cache: str = "no-cache") -> Handler:
    path = STATIC / name

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path, headers={"Content-Type": ctype, "Cache-Control": cache})
    return handler


def build_web_app(d: Dashboard) -> web.Application:
    from jts.dashboard import api

    web_app = web.Application(middlewares=[errors_mw, auth_mw],
                              client_max_size=d.cfg.max_body_bytes)
    web_app[DASH] = d
    r = web_app.router
    r.add_get("/", _static("index.html", "text/html; charset=utf-8"))
    r.add_get("/sw.js", _static("sw.js", "text/javascript; charset=utf-8"))
    r.add_get("/manifest.webmanifest", _static("manifest.webmanifest",
                                               "application/manifest+json"))
    r.add_static("/static/", STATIC, show_index=False, follow_symlinks=False)
    api.add_routes(r)
    return web_app


async def open_docs(cfg: Config) -> Documents | None:
    try:
        from jts.storage.documents import open_documents

        return await open_documents(cfg.storage_url("documents"))
    except Exception as exc:  # the dashboard still serves live pages without the store
        log.warning("dashboard_documents_unavailable", error=f"{type(exc).__name__}: {exc}")
        return None


def make_dashboard(app: App, cfg: Config, docs: Documents | None) -> Dashboard:
    dc = cfg.dashboard
    state = cfg.state_dir
    passwords = PasswordStore(state, dc.password_hash)
    if passwords.ensure_from_env():
        log.info("dashboard_password_set", source="JTS_DASHBOARD_PASSWORD")
    if not passwords.is_set:
        log.warning("dashboard_password_not_set",
                    hint="run `jts dashboard passwd` or set JTS_DASHBOARD_PASSWORD")
    tls = bool(dc.tls_cert and dc.tls_key)
    secure = dc.secure_cookies == "true" or (dc.secure_cookies == "auto" and tls)
    hub = Hub(app, push_interval=dc.push_interval)
    bc = Broadcaster(dc.ws_backlog_bytes, dc.max_ws_clients, behind_bytes=dc.ws_behind_bytes,
                     behind_timeout=dc.ws_behind_timeout, snapshot=hub.encoded_snapshot)
    hub.broadcaster = bc
    per_min = dc.login_attempts_per_minute
    return Dashboard(
        app=app, cfg=dc, hub=hub, broadcaster=bc, passwords=passwords,
        signer=TokenSigner(load_secret(state), dc.session_ttl), secure=secure,
        strategies=StrategyService(cfg.strategies_dir, state / "dashboard-scratch", docs,
                                   cfg.source, lambda: list(app.market.symbols)),
        login_ip=RateLimiter(per_min / 60, per_min), login_user=RateLimiter(per_min / 60,
                                                                            per_min),
        api_limit=RateLimiter(dc.api_rate, dc.api_burst))


def dashboard_url(cfg: Config, port: int | None = None) -> str | None:
    """The URL the dashboard is (or will be) served at; None when disabled."""
    dc = cfg.dashboard
    if not dc.enabled:
        return None
    scheme = "https" if dc.tls_cert and dc.tls_key else "http"
    host = dc.host if ":" not in dc.host else f"[{dc.host}]"
    if host in ("0.0.0.0", "[::]"):
        host = "127.0.0.1"
    return f"{scheme}://{host}:{dc.port if port is None else port}/"


def _ssl_context(dc: DashboardConfig, cfg: Config) -> ssl.SSLContext | None:
    if not (dc.tls_cert and dc.tls_key):
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(cfg.path(dc.tls_cert), cfg.path(dc.tls_key))
    except (OSError, ssl.SSLError) as exc:
        raise DaemonError(f"dashboard TLS: cannot load certificate/key: {exc}") from None
    return ctx


async def start_site(d: Dashboard, cfg: Config) -> web.AppRunner:
    """Set up and bind; returns the runner (call ``cleanup()``). Sets ``d.url``."""
    dc = cfg.dashboard
    runner = web.AppRunner(build_web_app(d), access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, dc.host, dc.port, ssl_context=_ssl_context(dc, cfg))
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        if exc.errno == errno.EADDRINUSE:
            raise DaemonError(f"dashboard port {dc.port} on {dc.host} is already in use "
                              "(set [dashboard] port or stop the other program)") from None
        raise DaemonError(f"dashboard cannot listen on {dc.host}:{dc.port}: "
                          f"{exc.strerror or exc}") from None
    port = dc.port
    for s in runner.addresses:
        if isinstance(s, tuple) and len(s) >= 2:
            port = int(s[1])
            break
    d.url = dashboard_url(cfg, port) or ""
    return runner


async def run_dashboard(app: App, cfg: Config) -> None:
    """The daemon component: serve until cancelled, then close every client and the site."""
    docs = await open_docs(cfg)
    d = make_dashboard(app, cfg, docs)
    runner: web.AppRunner | None = None
    lag = asyncio.get_running_loop().create_task(d.lag.run(), name="dashboard-loop-lag")
    try:
        runner = await start_site(d, cfg)
        app.dashboard_url = d.url           # type: ignore[attr-defined]
        app.dashboard_hub = d.hub           # type: ignore[attr-defined]
        log.info("dashboard_listening", url=d.url, tls=d.url.startswith("https"))
        await d.hub.run()
    finally:
        lag.cancel()
        d.hub.close()
        await d.broadcaster.close_all()
        if runner is not None:
            await runner.cleanup()
        if docs is not None:
            with contextlib.suppress(Exception):
                await docs.close()
