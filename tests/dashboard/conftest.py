"""Fixtures: a real App (paper broker, simulated market, the repo's strategies; not running)
with the dashboard's aiohttp app served on loopback by aiohttp's TestServer."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from jts.app import App
from jts.config import load_config
from jts.dashboard.server import Dashboard, build_web_app, make_dashboard
from jts.storage.documents import open_documents
from jts.types import Tick

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"


def write_config(d: Path, extra: str = "") -> Path:
    cfg = d / "jts.toml"
    cfg.write_text(f"""
[daemon]
state_dir = "state"
[market]
symbols = 20
history_bars = 30
[strategies]
dir = "{REPO / 'strategies'}"
{extra}
""", encoding="utf-8")
    return cfg


class FakeTime:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@dataclass
class Env:
    app: App
    dash: Dashboard
    client: TestClient[aiohttp.web.Request, aiohttp.web.Application]
    clock: FakeTime

    async def login(self, password: str = PASSWORD) -> str:
        r = await self.client.post("/api/login", json={"password": password})
        assert r.status == 200, await r.text()
        return str((await r.json())["csrf"])

    def feed(self, prices: dict[str, float]) -> None:
        now = time.time_ns()
        ticks = [Tick("krx", s, now, now, p, 10.0) for s, p in prices.items()]
        self.app.broker.on_ticks(ticks)
        for t in ticks:
            self.app.last_prices[t.symbol] = t.price
            self.app.portfolio.mark(t.symbol, t.price)
        self.app.bus.ticks.publish_nowait(ticks)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    cfg = load_config(write_config(tmp_path))
    cfg.state_dir.mkdir(parents=True)
    app = App(cfg)
    await app.broker.connect()
    docs = await open_documents(cfg.storage_url("documents"))
    dash = make_dashboard(app, cfg, docs)
    dash.passwords.set(PASSWORD)
    clock = FakeTime()
    for lim in (dash.login_ip, dash.login_user, dash.api_limit):
        lim.now = clock
    server = TestServer(build_web_app(dash), host="127.0.0.1")
    client = TestClient(server, cookie_jar=aiohttp.CookieJar(unsafe=True))
    await client.start_server()
    dash.url = str(server.make_url("/"))
    try:
        yield Env(app, dash, client, clock)
    finally:
        await dash.broadcaster.close_all()
        await client.close()
        await docs.close()
        await app.broker.close()


