"""``jts broker ping|balance|orders kis[:ACCOUNT]`` against the simulator (served from a
thread), and the usage errors they report."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from brokers.kis.cli import main_app, parse_target
from brokers.kis.simulator import KisSimulator, SimSettings
from jts.errors import ConfigError
from tests.brokers.kis.conftest import ACCOUNT, APP_KEY, APP_SECRET, HTS

ENV = {"KIS_APP_KEY": APP_KEY, "KIS_APP_SECRET": APP_SECRET, "KIS_ACCOUNT": ACCOUNT,
       "KIS_HTS_ID": HTS}


@pytest.fixture
def sim() -> Iterator[tuple[str, KisSimulator]]:
    loop = asyncio.new_event_loop()
    s = KisSimulator(SimSettings(domain="virtual", rate_limit=1000, auto_step=False,
                                 ping_interval=0))
    s.add_app(APP_KEY, APP_SECRET, account=ACCOUNT, hts_id=HTS, cash=Decimal(5_000_000),
              positions={"005930": (7, 70_000)})
    runner, port = loop.run_until_complete(s.serve())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}", s
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def write_config(tmp: Path, base: str, secret_env: str = "KIS_APP_SECRET") -> Path:
    p = tmp / "jts.toml"
    p.write_text(f"""
[brokers.kis.accounts.main]
domain = "virtual"
rest_url = "{base}"
app_secret_env = "{secret_env}"
rate_limit = 100
""")
    return p


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    r = CliRunner().invoke(main_app, list(args), env=env if env is not None else ENV)
    return r.exit_code, r.output


def last_json(out: str) -> dict[str, object]:
    """The command's JSON line (log lines may precede it when logging is unconfigured)."""
    value: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return value


def test_ping_issues_a_token_and_quotes(sim: tuple[str, KisSimulator], tmp_path: Path) -> None:
    base, s = sim
    code, out = invoke("broker", "ping", "kis:main", "-c", str(write_config(tmp_path, base)),
                       "--json")
    assert code == 0, out
    r = last_json(out)
    assert r["broker"] == "kis:main" and r["domain"] == "virtual" and r["token"] == "issued"
    assert r["price"] == s.venue.market.quotes["005930"].price
    assert APP_SECRET not in out


def test_balance_shows_cash_and_holdings(sim: tuple[str, KisSimulator], tmp_path: Path) -> None:
    base, _ = sim
    code, out = invoke("broker", "balance", "kis", "-c", str(write_config(tmp_path, base)))
    assert code == 0, out
    assert "cash 5,000,000" in out and "005930" in out and "7 @ 70,000" in out


def test_orders_lists_today(sim: tuple[str, KisSimulator], tmp_path: Path) -> None:
    base, s = sim
    s.venue.book.place(ACCOUNT, "005930", "02", 3, 60_000, "00", s.clock.now_ns())
    code, out = invoke("broker", "orders", "kis", "-c", str(write_config(tmp_path, base)),
                       "--json")
    assert code == 0, out
    [row] = last_json(out)["orders"]  # type: ignore[misc]
    assert (row["symbol"], row["side"], row["quantity"], row["price"], row["remaining"]) == \
        ("005930", "buy", "3", "60000", "3")


@pytest.mark.parametrize(("target", "env", "message"), [
    ("upbit", ENV, "unknown broker 'upbit'"),
    ("kis:nope", ENV, "no KIS account 'nope'"),
    ("kis:", ENV, "empty account name"),
    ("kis", {**ENV, "KIS_ACCOUNT": "12-3"}, "must look like 12345678-01"),
    ("kis", {**ENV, "KIS_APP_KEY": ""}, "KIS_APP_KEY is not set"),
])
def test_usage_errors_exit_2(tmp_path: Path, target: str, env: dict[str, str],
                             message: str) -> None:
    code, out = invoke("broker", "ping", target, "-c",
                       str(write_config(tmp_path, "http://127.0.0.1:9")), env=env)
    assert code == 2 and message in out


def test_refused_credentials_exit_1(sim: tuple[str, KisSimulator], tmp_path: Path) -> None:
    base, _ = sim
    cfg = write_config(tmp_path, base, secret_env="WRONG_SECRET")
    code, out = invoke("broker", "balance", "kis", "-c", str(cfg),
                       env={**ENV, "WRONG_SECRET": "not-the-secret"})
    assert code == 1 and "kis:main:" in out and "EGW00103" in out


def test_parse_target() -> None:
    assert parse_target("kis") is None and parse_target("kis:second") == "second"
    with pytest.raises(ConfigError):
        parse_target("creon")
