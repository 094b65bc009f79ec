"""Nothing lost: SIGKILL the daemon in the middle of a burst of fills, restart it, and every
acknowledged fill is in the ledger exactly once, every order it sent is in the ledger (the
order journal recovers those the kill caught between journal and ledger), none was sent
twice, and `jts db verify` passes — on SQLite and on PostgreSQL. A kill that lands exactly
between the journal append and the ledger write is recovered by asking the broker; a
corrupt journal or an unreachable ledger stops the start with one line."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from tests.daemon.conftest import REPO, Daemon, poll_until, write_config

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
        sent_before = submitted(d)

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
        sent = submitted(d)
        assert len(sent) == len(set(sent)), "an order was sent twice"
        orders = _ledger_orders(ledger_url, tmp_path, sent_before)
        assert set(sent_before) <= set(orders), "an order sent before the kill is missing " \
            "from the ledger"
    finally:
        d.jts("stop", "--force", "--timeout", "15", "-c", c)


def submitted(d: Daemon) -> list[str]:
    return [str(e["client_order_id"]) for e in d.log_events() if e["event"] == "order_submitted"]


# a Desk with the real order journal and ledger of a daemon's state directory, whose broker
# dies (SIGKILL) inside submit: the order is journaled, maybe sent, and not in the ledger
_KILLED_IN_SUBMIT = """
import asyncio, os, signal, sys
from decimal import Decimal
from brokers.paper import PaperBroker
from jts.clock import LiveClock
from jts.config import load_config
from jts.desk import Desk
from jts.portfolio import Portfolio
from jts.risk import RiskGate
from jts.storage.ledger import open_ledger
from jts.storage.order_wal import OrderWal
from jts.types import OrderIntent, Side


class DiesInSubmit(PaperBroker):
    async def submit(self, order):
        print(order.client_order_id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


async def main():
    cfg = load_config(sys.argv[1])
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    ledger = await open_ledger(cfg.storage_url("ledger"))
    wal = OrderWal.open(cfg.journal_path)
    clock = LiveClock()
    desk = Desk(DiesInSubmit(account=cfg.paper.account), RiskGate(cfg.risk),
                Portfolio(cash=Decimal(10**8)), clock, lambda s: 70_000.0, journal=ledger,
                wal=wal, id_prefix="K")
    await desk.handle(OrderIntent("killed", "005930", Side.BUY, Decimal(1), clock.now_ns()))

asyncio.run(main())
"""


def test_a_kill_between_journal_and_ledger_is_asked_about_never_resent(
        tmp_path: Path, ledger_url: str) -> None:
    cfg = write_config(tmp_path, f'[storage]\nledger = "{ledger_url}"\n')
    d = Daemon(tmp_path, cfg)
    c = str(cfg)
    if ledger_url.startswith("postgresql"):
        assert d.jts("db", "migrate", "-c", c).returncode == 0
    killed = subprocess.run([sys.executable, "-c", _KILLED_IN_SUBMIT, c], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    coid = killed.stdout.strip().splitlines()[-1]      # (after the console log lines)
    assert coid.startswith("K")
    try:
        r = d.jts("start", "-c", c)
        assert r.returncode == 0, r.stderr
        poll_until(lambda: any(e["event"] == "reconcile_done" for e in d.log_events()), 60,
                   "the start-up reconciliation")
        evs = d.log_events()
        (recovered,) = [e for e in evs if e["event"] == "order_recovered_from_journal"]
        assert recovered["client_order_id"] == coid and recovered["level"] == "warning"
        assert recovered["symbol"] == "005930" and recovered["quantity"] == "1"
        (mismatch,) = [e for e in evs if e["event"] == "reconcile_mismatch"
                       and e["key"] == coid]
        assert mismatch["kind"] == "order_unknown_to_broker" and mismatch["resolved"] is True
        assert coid not in submitted(d), "the journaled order was sent again"
        assert d.jts("stop", "-c", c).returncode == 0
        assert _ledger_orders(ledger_url, tmp_path, [coid]) == {coid: "rejected"}  # the
        # restarted paper venue never had it: reconciliation marked it so, nothing resent
        v = d.jts("db", "verify", "-c", c)
        assert v.returncode == 0 and "OK" in v.stdout, v.stdout + v.stderr
    finally:
        d.jts("stop", "--force", "--timeout", "15", "-c", c)


def test_a_corrupt_journal_or_unreachable_ledger_refuses_to_start(tmp_path: Path) -> None:
    from jts.storage.order_wal import OrderWal
    from jts.types import OrderRequest, Side

    cfg = write_config(tmp_path, "[storage]\nledger = "
                                 '"postgresql://postgres@127.0.0.1:1/nowhere"\n')
    d = Daemon(tmp_path, cfg)
    c = str(cfg)
    journal = tmp_path / "state" / "orders.wal"
    wal = OrderWal.open(journal)
    for i in range(3):
        wal.append([OrderRequest(f"J-{i}", "paper", "paper-1", "005930", Side.BUY,
                                 Decimal(1))], i)
    r = d.jts("start", "-c", c)                  # the ledger cannot be reached
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "ledger store postgresql://postgres@127.0.0.1:1/nowhere: cannot connect" in r.stderr
    assert len(OrderWal.open(journal).recovered) == 3          # kept for the next start

    cfg.write_text(cfg.read_text().replace("postgresql://postgres@127.0.0.1:1/nowhere",
                                           "sqlite:///ledger.sqlite3"))
    (seg,) = [p for p in journal.glob("*.seg") if b"J-0" in p.read_bytes()]
    data = bytearray(seg.read_bytes())
    data[data.index(b"J-0")] ^= 0x20             # the first record, in the middle
    seg.write_bytes(bytes(data))
    r = d.jts("start", "-c", c)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert f"order journal {journal}: {seg.name}" in r.stderr
    assert "corrupt in the middle" in r.stderr


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _ledger_orders(url: str, tmp_path: Path, coids: list[str]) -> dict[str, str]:
    """client order id → status in the ledger, for those of ``coids`` it has."""
    from jts.storage.ledger import open_ledger

    if url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'state' / 'ledger.sqlite3'}"

    async def read() -> dict[str, str]:
        led = await open_ledger(url)
        try:
            known = await led.known_orders(coids)
            recs = [await led.order(c) for c in sorted(known)]
            return {r.request.client_order_id: r.status.value for r in recs if r is not None}
        finally:
            await led.close()

    return asyncio.run(read())


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
