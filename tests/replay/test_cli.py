"""``jts replay`` through Typer's CliRunner: summary, kept ledger, report files, and every
bad input as one ``jts: error:`` line with exit status 2."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from jts.replay_cli import replay_cmd
from jts.storage.ledger import open_ledger
from tests.replay.conftest import Store

HERE = Path(__file__).parent / "strategies"
BARS_HELD = HERE / "rp_bars_held.toml"

app = typer.Typer()
app.command("replay")(replay_cmd)
app.command("noop")(lambda: None)        # keeps "replay" a sub-command, as in jts.cli
runner = CliRunner()


@pytest.fixture(autouse=True)
def _cli_logging() -> None:
    from jts.log import setup_logging
    setup_logging(level="warning", console=True)     # as jts.cli.main does


def test_summary_and_kept_ledger(store: Store, tmp_path: Path) -> None:
    led = tmp_path / "replay.sqlite3"
    r = runner.invoke(app, ["replay", str(BARS_HELD), "--symbols", "005930", "--from",
                            "2025-03-04", "--to", "2025-03-04", "--ledger", str(led),
                            "-c", str(store.config)])
    assert r.exit_code == 0, r.output
    assert "rp_bars_held  005930  1m" in r.stdout
    assert "trade_count" in r.stdout and "intents / fills" in r.stdout
    assert str(led) in r.stdout

    async def read() -> tuple[int, int, bool]:
        ledger = await open_ledger(f"sqlite:///{led}")
        try:
            fills = await ledger.fills()
            orders = {f.client_order_id for f in fills}
            return len(fills), len(orders), (await ledger.verify()).ok
        finally:
            await ledger.close()
    n_fills, n_orders, ok = asyncio.run(read())
    assert ok and n_fills == n_orders > 10     # one fill per (write-ahead) order
    again = runner.invoke(app, ["replay", str(BARS_HELD), "--symbols", "005930", "--ledger",
                                str(led), "-c", str(store.config)])
    assert again.exit_code == 2
    assert again.stderr.startswith("jts: error: --ledger") and "exists" in again.stderr


def test_report_files(store: Store, tmp_path: Path) -> None:
    html, js = tmp_path / "r.html", tmp_path / "r.json"
    for out in (html, js):
        r = runner.invoke(app, ["replay", str(BARS_HELD), "--symbols", "005930,000660",
                                "--from", "2025-03-05", "--report", str(out),
                                "-c", str(store.config)])
        assert r.exit_code == 0, r.output
    assert html.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
    doc = json.loads(js.read_text(encoding="utf-8"))
    assert doc["kind"] == "replay" and doc["symbols"] == ["005930", "000660"]
    assert doc["replay"]["ledger_verified"] is True and doc["equity_curve"]["equity"]


@pytest.mark.parametrize(("args", "message"), [
    (["--symbols", "123456"], "unknown symbol(s) 123456"),
    (["--symbols", " , "], "--symbols: empty list"),
    (["--symbols", "005930", "--from", "2025-13-01"], "--from: expected a date"),
    (["--symbols", "005930", "--from", "2025-03-05", "--to", "2025-03-03"],
     "empty date range"),
    (["--symbols", "005930", "--from", "2024-01-01", "--to", "2024-01-31"],
     "no 1m bars for 005930 in the requested range"),
    (["--symbols", "005930", "--cash", "0"], "--cash must be > 0"),
    (["--symbols", "005930", "--timeframe", "7x"], "timeframe"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, store: Store) -> None:
    r = runner.invoke(app, ["replay", str(BARS_HELD), *args, "-c", str(store.config)])
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jts: error: ") and message in lines[0]
    assert r.stdout == ""


def test_bad_strategy_file_and_universe(store: Store, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(BARS_HELD.read_text(encoding="utf-8").replace(
        '"fixed_quantity"', '"bogus"'), encoding="utf-8")
    r = runner.invoke(app, ["replay", str(bad), "--symbols", "005930", "-c",
                            str(store.config)])
    assert r.exit_code == 2 and "bad.toml" in r.stderr and "sizing.method" in r.stderr
    r = runner.invoke(app, ["replay", str(BARS_HELD), "-c", str(store.config)])
    assert r.exit_code == 2
    assert "universe is 'all': pass --symbols" in r.stderr
    r = runner.invoke(app, ["replay", str(tmp_path / "missing.toml"), "--symbols", "005930",
                            "-c", str(store.config)])
    assert r.exit_code == 2 and r.stderr.startswith("jts: error: ")
