"""End to end: the daemon in live mode against the KIS simulator over loopback.

The simulator (``python -m brokers.kis.cli sim kis``, 30× market speed) and the daemon
(``python -m jts start``) run as processes, as a user would run them. The daemon starts,
streams ticks, a strategy buys, the fill notice reaches the ledger, ``jts status`` shows it,
``jts stop`` stops it; a restart reuses the access token kept in Redis (the simulator issued
exactly one) and remembers the orders sent before the restart.
Needs Redis on 127.0.0.1:6379 (``tests/servers.sh up``); without it the test fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
REDIS = os.environ.get("JTS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRETS = {"KIS_APP_KEY": "PSe2eappkey0001", "KIS_APP_SECRET": "e2e-secret-0001",
           "KIS_ACCOUNT": "50000000-01", "KIS_HTS_ID": "e2euser"}
WATCH = ["005930", "000660", "035420"]
STRATEGY = """
[strategy]
name = "quick"
universe = "all"
timeframe = "1m"

[rules]
entry = "close > 0"
exit = "bars_held >= 2"

[sizing]
method = "fixed_notional"
value = 1000000
"""


def _redis_or_fail() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=3).ping()
    except (redis.RedisError, OSError) as e:
        pytest.fail(f"Redis is needed at {REDIS} ({e}); run tests/servers.sh up")


@pytest.fixture
def simulator() -> Iterator[str]:
    env = {**os.environ, **SECRETS, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "brokers.kis.cli", "sim", "kis", "--port", "0", "--speed", "30",
         "--rate-limit", "20", "--cash", "100000000", "--symbols", ",".join(WATCH)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    base = ""
    for line in proc.stdout:             # blocks until the simulator says where it listens
        m = re.search(r"rest_url=(http://\S+)", line)
        if m:
            base = m.group(1)
            break
    assert base, "simulator did not start"
    # keep reading its output, or a full pipe would block the simulator
    threading.Thread(target=lambda: sum(1 for _ in proc.stdout or ()), daemon=True).start()
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _config(tmp: Path, base: str) -> Path:
    (tmp / "strategies").mkdir()
    (tmp / "strategies" / "quick.toml").write_text(STRATEGY)
    prefix = f"jts-e2e-{uuid.uuid4().hex[:8]}:"
    cfg = tmp / "jts.toml"
    cfg.write_text(f"""
[daemon]
mode = "live"
state_dir = "state"
stop_timeout = 5.0
watchdog = false

[paper]
initial_cash = 100000000      # the ledger's opening cash: the simulated account's

[market]
feed = "kis"
watchlist = {json.dumps(WATCH)}
history_bars = 30

[storage]
cache = "{REDIS}?prefix={prefix}"

[dashboard]
enabled = false

[brokers.kis.accounts.main]
domain = "virtual"
rest_url = "{base}"
ws_url = "{base.replace('http://', 'ws://')}/tryitout"
rate_limit = 20
""")
    return cfg


def _jts(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **SECRETS, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "jts", *args, "-c", str(cfg)], cwd=cfg.parent,
                          env=env, capture_output=True, text=True, timeout=120)


def _status_until(cfg: Path, ok: Callable[[dict[str, Any]], bool], tries: int = 60
                  ) -> dict[str, Any]:
    """Ask ``jts status`` (each call is a process start, which paces the loop) until ``ok``."""
    st: dict[str, Any] = {}
    for _ in range(tries):
        r = _jts(cfg, "status", "--json")
        assert r.returncode == 0, r.stderr
        st = json.loads(r.stdout)
        if ok(st):
            return st
    raise AssertionError(f"status never satisfied the condition; last: {st}")


def _sim_stats(base: str) -> dict[str, Any]:
    with urllib.request.urlopen(base + "/_sim/stats", timeout=10) as resp:
        out: dict[str, Any] = json.loads(resp.read())
        return out


def _log_events(cfg: Path, event: str) -> list[dict[str, Any]]:
    lines = (cfg.parent / "state" / "logs" / "jts.log").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e.get("event") == event]


def test_live_daemon_against_the_simulator(simulator: str, tmp_path: Path) -> None:
    _redis_or_fail()
    cfg = _config(tmp_path, simulator)
    started = _jts(cfg, "start")
    assert started.returncode == 0, started.stderr + started.stdout
    try:
        st = _status_until(cfg, lambda s: s["fills"] >= 1 and s["ticks"] > 0)
        assert st["mode"] == "live" and st["brokers"][0]["name"] == "kis"
        assert st["brokers"][0]["account"] == "main"
    finally:
        stopped = _jts(cfg, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert _sim_stats(simulator)["tokens_issued"] == 1
    sent = _sim_stats(simulator)["orders"]
    assert sent >= 1
    first_fills = _log_events(cfg, "fill_applied")
    assert first_fills and all(f["trade_id"].count(":") == 1 for f in first_fills)

    again = _jts(cfg, "start")
    assert again.returncode == 0, again.stderr + again.stdout
    try:
        st = _status_until(cfg, lambda s: s["ticks"] > 0)
        # startup reconciliation found the ledger and the broker in agreement
        assert st["reconcile"]["ok"], st["reconcile"]
        assert st["trading_state"] == "active"
    finally:
        assert _jts(cfg, "stop").returncode == 0
    assert _sim_stats(simulator)["tokens_issued"] == 1          # the token came from Redis
    restored = _log_events(cfg, "kis_orders_restored")
    assert len(restored) == 2 and restored[0]["orders"] == 0
    assert restored[1]["orders"] >= 1                           # orders remembered
    ledger = _log_events(cfg, "ledger_restored")
    assert ledger[-1]["fills"] >= len(first_fills) >= 1
