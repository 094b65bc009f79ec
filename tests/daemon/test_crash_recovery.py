"""Nothing lost: SIGKILL the daemon in the middle of a burst of fills, restart it, and every
acknowledged fill is in the ledger exactly once and `jts db verify` passes — on SQLite and on
PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.daemon.conftest import Daemon, poll_until, write_config

PG_ADMIN = os.environ.get("JTS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "sqlite":
        yield "sqlite:///ledger.sqlite3"
        return
    if os.environ.get("JTS_TEST_NO_SERVERS") == "1":
        pytest.skip("JTS_TEST_NO_SERVERS=1: PostgreSQL suite not run")
    name = f"jts_kill_{secrets.token_hex(4)}"
    try:
        asyncio.run(_admin(f"CREATE DATABASE {name}"))
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL at {PG_ADMIN} is not reachable ({exc}); start it "
                    "(bash tests/servers.sh up) or set JTS_TEST_NO_SERVERS=1", pytrace=False)
    base = PG_ADMIN.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    asyncio.run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def acknowledged(d: Daemon) -> list[str]:
    return [str(e["trade_id"]) for e in d.log_events() if e["event"] == "fill_applied"]


def test_sigkill_mid_burst_loses_and_duplicates_nothing(tmp_path: Path, ledger_url: str) -> None:
    cfg = write_config(tmp_path, f'[storage]\nledger = "{ledger_url}"\n'
                                 "[risk]\nmax_orders_per_minute = 100000\n"
                                 "max_open_positions = 100\n")
    cfg.write_text(cfg.read_text().replace("speed = 120.0", "speed = 600.0")
                   .replace("symbols = 60", "symbols = 150"))
    d = Daemon(tmp_path, cfg)
    c = str(cfg)
    if ledger_url.startswith("postgresql"):
        m = d.jts("db", "migrate", "-c", c)
        assert m.returncode == 0, m.stderr
    try:
        assert d.jts("start", "-c", c).returncode == 0
        poll_until(lambda: len(acknowledged(d)) >= 60, 90, "60 acknowledged fills")
        pid = int((tmp_path / "state" / "jts.pid").read_text())
        os.kill(pid, signal.SIGKILL)                     # mid-burst: fills are flowing
        poll_until(lambda: not _alive(pid), 10, "the killed daemon to be gone")
        before = set(acknowledged(d))

        r = d.jts("start", "-c", c)                      # stale pid file, same ledger
        assert r.returncode == 0, r.stderr
        restored = [e for e in d.log_events() if e["event"] == "ledger_restored"]
        assert int(restored[-1]["fills"]) >= len(before)
        poll_until(lambda: len(set(acknowledged(d)) - before) >= 10, 90,
                   "fills after the restart")
        assert d.jts("stop", "-c", c).returncode == 0

        v = d.jts("db", "verify", "-c", c)
        assert v.returncode == 0, v.stdout + v.stderr
        assert "OK" in v.stdout
        fills = _ledger_trade_ids(ledger_url, tmp_path)
        assert len(fills) == len(set(fills)), "a fill is in the ledger twice"
        acked = acknowledged(d)
        assert len(acked) == len(set(acked)), "a fill was applied twice"
        assert set(acked) <= set(fills), "an acknowledged fill is missing from the ledger"
    finally:
        d.jts("stop", "--force", "--timeout", "15", "-c", c)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _ledger_trade_ids(url: str, tmp_path: Path) -> list[str]:
    from jts.storage.ledger import open_ledger

    if url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'state' / 'ledger.sqlite3'}"

    async def read() -> list[str]:
        led = await open_ledger(url)
        try:
            return [f.trade_id for f in await led.fills()]
        finally:
            await led.close()

    return asyncio.run(read())
