"""The dashboard in a real browser: headless Debian Chromium driven by Playwright against the
daemon running in paper mode in a subprocess. Screenshots go to test-artifacts/dashboard/.

Needs: apt `chromium` (/usr/bin/chromium) and pip `playwright` (no `playwright install`)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from jts.krx import round_price
from tests.daemon.conftest import poll_until
from tests.dashboard.conftest import REPO

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ART = REPO / "test-artifacts" / "dashboard"
PASSWORD = "browser-test-pass"

pw_sync = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
if not Path(CHROMIUM).exists():   # a missing browser is a setup failure, not a skip
    raise RuntimeError(f"{CHROMIUM} is missing: apt-get install -y chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _up(url: str) -> bool:
    try:
        urllib.request.urlopen(url + "manifest.webmanifest", timeout=2).close()
        return True
    except (urllib.error.URLError, OSError):
        return False


def seed_bars(state: Path) -> None:
    """Stored 1-minute bars for the symbols the backtest button will use (the daemon's first
    20 simulated symbols), so the backtest has data."""
    import asyncio

    import numpy as np
    import pandas as pd

    from jts.calendar import kst_midnight_ns
    from jts.krx import round_prices_f64
    from jts.sim import SimMarket
    from jts.storage.timeseries import open_timeseries

    syms = list(SimMarket(symbols=30, seed=42, tick_interval_s=0.1).symbols)[:20]
    import datetime as dt

    days = [dt.date(2025, 1, 6) + dt.timedelta(days=k) for k in range(3)]   # Mon-Wed
    ts = np.concatenate([kst_midnight_ns(day) + (9 * 60 + np.arange(390)) * 60 * 10**9
                         for day in days]).astype(np.int64)
    rng = np.random.default_rng(7)
    rows = []
    for sym in syms:
        close = round_prices_f64(50_000 * np.exp(np.cumsum(rng.normal(0, 0.002, ts.size))))
        open_ = np.concatenate([[close[0]], close[:-1]])
        vol = rng.integers(100, 5000, ts.size).astype(np.float64)
        rows.append(pd.DataFrame({"symbol": sym, "timeframe": "1m", "ts_ns": ts,
                                  "open": open_, "high": np.maximum(open_, close),
                                  "low": np.minimum(open_, close), "close": close,
                                  "volume": vol, "value": vol * close}))
    frame = pd.concat(rows, ignore_index=True)

    async def write() -> None:
        ts = await open_timeseries(f"chdb:///{state / 'timeseries'}")
        try:
            await ts.migrate()
            await ts.write_bars(frame)
        finally:
            await ts.close()

    asyncio.run(write())


def seed_bars_in_child(state: Path) -> None:
    """The embedded engine locks its directory for the process's life: seed from a child."""
    state.mkdir(parents=True, exist_ok=True)
    code = ("import sys; from pathlib import Path; from tests.dashboard.test_browser import "
            "seed_bars; seed_bars(Path(sys.argv[1]))")
    subprocess.run([sys.executable, "-c", code, str(state)], cwd=REPO, check=True,
                   capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    d = tmp_path_factory.mktemp("dash-e2e")
    port = free_port()
    cfg = d / "jts.toml"
    cfg.write_text(f"""
[daemon]
state_dir = "state"
stop_timeout = 5
[market]
symbols = 30
speed = 120.0
tick_interval = 0.1
history_bars = 60
[strategies]
dir = "{REPO / 'strategies'}"
[dashboard]
port = {port}
push_interval = 0.2
""", encoding="utf-8")
    seed_bars_in_child(d / "state")
    env = {**os.environ, "JTS_DASHBOARD_PASSWORD": PASSWORD}
    env.pop("JTS_CONFIG", None)
    out = open(d / "daemon.out", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "jts", "start", "--foreground", "--quiet",
                             "-c", str(cfg)], cwd=d, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}/"
    try:
        poll_until(lambda: proc.poll() is not None or _up(url), 90, "the dashboard to listen")
        assert proc.poll() is None, (d / "daemon.out").read_text()
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        out.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with pw_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def shot(page: object, name: str) -> None:
    ART.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ART / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def test_dashboard_end_to_end(daemon: str, browser: object) -> None:
    expect = pw_sync.expect
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    ctx.set_default_timeout(60_000)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(daemon)

    # log in: a wrong password is refused with a message, the right one opens the app
    expect(page.locator("#login")).to_be_visible()
    page.fill("#password", "not-the-password")
    page.click("#login-btn")
    expect(page.locator("#login-error")).to_contain_text("로그인 실패")
    shot(page, "01-login-error")
    page.fill("#password", PASSWORD)
    page.click("#login-btn")
    expect(page.locator("#nav")).to_be_visible()
    expect(page.locator("#conn")).to_have_attribute("data-state", "connected")
    expect(page.locator("#ov-mode")).to_have_text("모의")

    # the service worker registers
    expect(page.locator("body")).to_have_attribute("data-sw", "registered")
    assert page.evaluate("navigator.serviceWorker.ready.then(r => !!r.active)")

    # prices update
    page.click("nav button[data-page=watch]")
    first = page.locator("#watch tbody tr").first
    expect(first).to_be_visible()
    sym = first.get_attribute("data-symbol")
    assert sym
    row_sel = f'#watch tbody tr[data-symbol="{sym}"] td.price'
    before = page.inner_text(row_sel)
    page.wait_for_function("([sel, v]) => document.querySelector(sel)?.textContent !== v",
                           arg=[row_sel, before])
    shot(page, "02-watchlist")

    # a fill appears (the paper strategy trades on the simulated market)
    page.click("nav button[data-page=fills]")
    expect(page.locator("#fills tbody tr").first).to_be_visible(timeout=90_000)
    shot(page, "03-fills")
    page.click("nav button[data-page=overview]")
    shot(page, "04-overview")

    # place a resting limit order, then cancel it from the orders page
    chart = json.loads(page.evaluate(f"fetch('/api/chart/{sym}').then(r => r.text())"))
    price = round_price(Decimal(str(chart["last"] * 0.97)), "down")
    page.click("nav button[data-page=orders]")
    page.fill("#o-symbol", sym)
    page.select_option("#o-type", "limit")
    page.fill("#o-qty", "1")
    page.fill("#o-price", str(price))
    page.click("#o-submit")
    expect(page.locator("#o-result")).to_have_text("✓")
    row = page.locator("#orders tbody tr", has_text=sym).filter(has_text=f"{int(price):,}")
    expect(row).to_have_count(1)
    shot(page, "05-open-order")
    row.locator("button.cancel").click()
    expect(page.locator("#o-result")).to_contain_text("cancelled")
    expect(row).to_have_count(0)

    # a formula with an error shows line and column; the fixed one saves as a new version
    page.click("nav button[data-page=strategies]")
    page.select_option("#st-list", "paper_momentum")
    editor = page.locator("#st-editor")
    expect(editor).to_have_value(re.compile(r"crossover\(fast_ma, slow_ma\)"))
    good = editor.input_value()
    bad = good.replace('entry = "crossover(fast_ma, slow_ma)"',
                       'entry = "crossover(fast_ma, slow_mx)"')
    editor.fill(bad)
    err = page.locator("#st-errors .err-line")
    expect(err).to_contain_text("slow_mx")
    line = bad.splitlines().index('entry = "crossover(fast_ma, slow_mx)"') + 1
    expect(err).to_have_attribute("data-line", str(line))
    expect(err).to_contain_text(f"line {line}, col 29")
    shot(page, "06-formula-error")
    editor.fill(good)
    expect(page.locator("#st-errors .ok-line")).to_be_visible()
    page.fill("#st-message", "from the browser test")
    page.click("#st-save")
    expect(page.locator("#st-status")).to_have_attribute("data-version", "1")
    expect(page.locator("#st-versions li")).to_have_count(1)
    shot(page, "07-saved")

    # backtest: a report when the engine is installed, a clear message otherwise
    page.click("#st-backtest")
    result = page.locator("#st-bt-result")
    expect(result).not_to_have_text("…")
    if page.evaluate("fetch('/api/strategies').then(r => r.json()).then(d => d.backtest)"):
        expect(page.locator("#st-report")).to_be_visible(timeout=120_000)
        with ctx.expect_page() as report_page:
            page.click("#st-report-link")
        rp = report_page.value
        rp.wait_for_load_state()
        assert "paper_momentum" in rp.content()
        shot(rp, "08b-backtest-report")
        rp.close()
        page.bring_to_front()
    else:
        expect(result).to_contain_text("백테스트 기능을 사용할 수 없습니다")
    shot(page, "08-backtest")

    # stop-all with confirmation; pressing it again is harmless
    page.click("#stop-all")
    expect(page.locator("#kill-modal")).to_be_visible()
    shot(page, "09-stop-all-confirm")
    page.click("#kill-confirm")
    expect(page.locator("#hdr-state")).to_have_attribute("data-state", "halted")
    expect(page.locator("#kill-modal")).to_be_hidden()
    page.click("#stop-all")
    page.check("#kill-flatten")
    page.click("#kill-confirm")
    expect(page.locator("#kill-modal")).to_be_hidden()
    expect(page.locator("#hdr-state")).to_have_attribute("data-state", "halted")
    expect(page.locator("#resume")).to_be_visible()
    page.click("nav button[data-page=alerts]")
    expect(page.locator("#alerts li[data-kind=trading_state]").first).to_be_visible()
    shot(page, "10-halted")

    # English labels on request
    page.click("#lang")
    expect(page.locator("nav button[data-page=overview]")).to_have_text("Overview")
    page.click("nav button[data-page=overview]")
    shot(page, "11-english")

    # offline: the shell loads from the service worker with the last snapshot
    page.evaluate("fetch('/api/snapshot').then(r => r.status)")
    ctx.set_offline(True)
    page.reload()
    expect(page.locator("#offline-note")).to_be_visible()
    shot(page, "12-offline")
    ctx.set_offline(False)
    assert not errors, errors
    ctx.close()


def test_phone_layout_and_manifest(daemon: str, browser: object) -> None:
    expect = pw_sync.expect
    ctx = browser.new_context(viewport={"width": 390, "height": 844},  # type: ignore[attr-defined]
                              is_mobile=True, has_touch=True, device_scale_factor=2)
    page = ctx.new_page()
    page.goto(daemon)
    page.fill("#password", PASSWORD)
    page.click("#login-btn")
    expect(page.locator("#conn")).to_have_attribute("data-state", "connected")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"page is {width}px wide on a 390px phone"
    shot(page, "20-phone-overview")
    manifest = json.loads(page.evaluate("fetch('/manifest.webmanifest').then(r => r.text())"))
    assert manifest["display"] == "standalone" and manifest["start_url"] == "/"
    assert {i["sizes"] for i in manifest["icons"]} >= {"192x192", "512x512"}
    ctx.close()
