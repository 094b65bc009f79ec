"""The KIS simulator as one object: gateway rules, market, REST routes and WebSocket hub.

``KisSimulator(settings, clock=...)`` builds an aiohttp application (``.app()``) that tests
mount with ``aiohttp.test_utils.TestServer`` and ``python -m brokers.kis.simulator`` serves.
With ``auto_step`` the market advances every ``step_interval`` seconds of the injected clock
and PINGPONG goes out every ``ping_interval`` wall-clock seconds; tests may instead call
:meth:`step` directly.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal

import structlog
from aiohttp import web

from brokers.kis.simulator.market import KisSimMarket, kst_yyyymmdd
from brokers.kis.simulator.rest import FAULTS, VENUE, add_routes
from brokers.kis.simulator.venue import SimApp, SimSettings, SimVenue
from brokers.kis.simulator.wsserver import WsHub
from brokers.kis.wire import Domain
from jts.clock import Clock, LiveClock, to_kst

log = structlog.get_logger(__name__)


class KisSimulator:
    def __init__(self, settings: SimSettings | None = None, *, clock: Clock | None = None,
                 market: KisSimMarket | None = None) -> None:
        self.clock: Clock = clock or LiveClock()
        self.venue = SimVenue(settings, clock=self.clock, market=market)
        self.settings = self.venue.settings
        self.hub = WsHub(self.venue)
        self.faults: dict[str, list[str]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    # -- setup and control -------------------------------------------------------------

    def add_app(self, app_key: str, app_secret: str, *, domain: Domain | None = None,
                account: str = "50000000-01", hts_id: str = "simuser",
                cash: Decimal = Decimal(10_000_000),
                positions: dict[str, tuple[int, int]] | None = None) -> SimApp:
        """Register an app key (and its one account, ``CANO-ACNT_PRDT_CD``)."""
        return self.venue.add_app(app_key, app_secret, domain=domain, account=account,
                                  hts_id=hts_id, cash=cash, positions=positions)

    def inject(self, path: str, *faults: str) -> None:
        """Queue faults for the next requests to ``path``: ``"html502"`` answers an HTML
        error page without processing; ``"hang<seconds>"`` processes, then stalls."""
        self.faults.setdefault(path, []).extend(faults)

    def step(self) -> None:
        """One market step: prices move, resting orders match, frames go out."""
        prints = self.venue.book.step(self.clock.now_ns())
        self.hub.publish(prints)

    def ping(self) -> None:
        self.hub.ping_all(to_kst(self.clock.now_ns()).strftime("%Y%m%d%H%M%S"))

    @property
    def stats(self) -> object:
        return self.venue.stats

    # -- aiohttp ------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app[VENUE] = self.venue
        app[FAULTS] = self.faults
        add_routes(app)
        app.router.add_get("/_sim/stats", self._stats)
        app.router.add_get("/tryitout", self.hub.handle)
        app.router.add_get("/tryitout/{tr_id}", self.hub.handle)
        app.cleanup_ctx.append(self._background)
        return app

    async def _stats(self, _request: web.Request) -> web.Response:
        """Simulator-only: counters for tests and operators (not a KIS endpoint)."""
        st = self.venue.stats
        book = self.venue.book
        return web.json_response({
            "requests": st.requests, "rate_rejected": st.rate_rejected,
            "tokens_issued": st.tokens_issued, "token_throttled": st.token_throttled,
            "orders": sum(len(a.orders) for a in book.accounts.values()),
            "ws_sessions": len(self.hub.sessions), "frames_sent": self.hub.frames_sent,
            "market_time": to_kst(self.clock.now_ns()).isoformat()})

    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, int]:
        """Listen on ``host:port`` (0: any free port); returns the runner and the port."""
        runner = web.AppRunner(self.app())
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        bound = int(sockets[0].getsockname()[1]) if sockets else port
        return runner, bound

    async def _background(self, _app: web.Application) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        if self.settings.auto_step:
            self._tasks.append(loop.create_task(self._every(self.settings.step_interval,
                                                            self.step)))
        if self.settings.ping_interval > 0:
            # the heartbeat runs on wall time, as KIS's does, whatever the market speed
            self._tasks.append(loop.create_task(self._every(self.settings.ping_interval,
                                                            self.ping, wall=True)))
        log.info("kis_sim_started", domain=self.settings.domain,
                 day=kst_yyyymmdd(self.clock.now_ns()))
        yield
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()
        await self.hub.close_all()

    async def _every(self, seconds: float, fn: object, *, wall: bool = False) -> None:
        assert callable(fn)
        while True:
            if wall:
                await asyncio.sleep(seconds)
            else:
                await self.clock.sleep(seconds)
            try:
                fn()
            except Exception:                    # a simulator bug must not stop the loop
                log.exception("kis_sim_background_error")
