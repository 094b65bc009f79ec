"""The three commands through Typer's CliRunner, on the session store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from jts.backtest import run_backtest
from jts.backtest.cli import backtest_cmd, optimize_cmd, reports_cmd
from jts.config import load_config
from jts.strategy import load_strategy
from tests.backtest.conftest import SYMBOLS, Store
from tests.backtest.helpers import strategy

app = typer.Typer()
app.command("backtest")(backtest_cmd)
app.command("optimize")(optimize_cmd)
app.command("reports")(reports_cmd)
runner = CliRunner()


@pytest.fixture(autouse=True)
def _cli_logging() -> None:
    from jts.log import setup_logging
    setup_logging(level="warning", console=True)     # as jts.cli.main does


def sma(tmp: Path) -> Path:
    return strategy(tmp, "crossover(sma(close, fast), sma(close, slow))",
                    "crossunder(sma(close, fast), sma(close, slow))", name="sma_cross",
                    universe=json.dumps(SYMBOLS),
                    extra="[params]\nfast = 5\nslow = 20\n")


def test_backtest_json_equals_the_engine(store: Store, tmp_path: Path) -> None:
    path = sma(tmp_path)
    r = runner.invoke(app, ["backtest", str(path), "--json", "-c", str(store.config)])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert set(doc) >= {"metrics", "trades", "strategy", "assumptions", "report_id"}
    res = run_backtest(load_strategy(path), store.bars, load_config(store.config).costs)
    assert doc["metrics"]["final_equity"] == pytest.approx(res.final_equity, rel=1e-12)
    assert len(doc["trades"]) == len(res.trades) > 10
    for got, want in zip(doc["trades"], res.trades, strict=True):
        assert (got["symbol"], got["entry_ts_ns"], got["exit_ts_ns"], got["quantity"]) == \
            (want.symbol, want.entry_ts_ns, want.exit_ts_ns, want.quantity)
        assert got["pnl"] == pytest.approx(want.pnl, rel=1e-12, abs=1e-9)
        assert {"side", "entry_price", "exit_price", "fees", "entry_time", "exit_time"} <= set(got)
    assert set(doc["metrics"]["per_symbol"]) == set(SYMBOLS)


def test_backtest_summary_report_and_listing(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    r = runner.invoke(app, ["backtest", str(sma(tmp_path)), "--symbols", "005930",
                            "--from", "2025-01-03", "--report", str(out), "-c", str(store.config)])
    assert r.exit_code == 0, r.output
    assert "sharpe" in r.stdout and "total_return" in r.stdout
    page = out.read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page and "<circle" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page
    listing = runner.invoke(app, ["reports", "-c", str(store.config), "--kind", "backtest"])
    assert listing.exit_code == 0 and "sma_cross" in listing.stdout
    rid = listing.stdout.splitlines()[1].split()[0]
    shown = runner.invoke(app, ["reports", "--show", rid, "-c", str(store.config)])
    assert json.loads(shown.stdout)["kind"] == "backtest"
    exported = tmp_path / "x.html"
    r = runner.invoke(app, ["reports", "--show", rid, "--html", str(exported), "-c",
                            str(store.config)])
    assert r.exit_code == 0 and exported.read_text().startswith("<!doctype html>")


def test_gaps_are_reported_not_filled(store: Store, tmp_path: Path) -> None:
    r = runner.invoke(app, ["backtest", str(sma(tmp_path)), "--symbols", store.gappy, "--json",
                            "--no-store", "-c", str(store.config)])
    assert r.exit_code == 0, r.output
    assert "data gap" in r.stderr
    gaps = json.loads(r.stdout)["gaps"]
    assert any(g["missing"] == 30 and g["unit"] == "bars" for g in gaps)


@pytest.mark.parametrize(("args", "needle"), [
    (["--symbols", "123456"], "unknown symbol(s) 123456"),
    (["--from", "2024-01-01", "--to", "2024-02-01"], "no 1m bars for 005930"),
    (["--from", "2025-02-01", "--to", "2025-01-01"], "empty date range"),
    (["--from", "yesterday"], "--from: expected a date"),
    (["--fill", "sometimes"], "--fill must be one of"),
    (["--short"], "short selling is not allowed"),
])
def test_backtest_bad_input_exits_2(store: Store, tmp_path: Path, args: list[str],
                                    needle: str) -> None:
    r = runner.invoke(app, ["backtest", str(sma(tmp_path)), "--no-store", "-c",
                            str(store.config), *args])
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("jts: error: ") and needle in r.stderr
    assert "Traceback" not in r.output and len(r.stderr.strip().splitlines()) == 1


def test_not_enough_warmup_exits_2(store: Store, tmp_path: Path) -> None:
    p = strategy(tmp_path, "crossover(sma(close, 5), sma(close, 500))", "close < 0",
                 name="long_warm")
    r = runner.invoke(app, ["backtest", str(p), "--from", "2025-01-02", "--to", "2025-01-02",
                            "--no-store", "-c", str(store.config)])
    assert r.exit_code == 2 and "warm-up" in r.stderr


def test_bad_strategy_file_exits_2(store: Store, tmp_path: Path) -> None:
    p = strategy(tmp_path, "crossover(smaa(close, 5), sma(close, 20))", "close < 0", name="bad")
    r = runner.invoke(app, ["backtest", str(p), "-c", str(store.config)])
    assert r.exit_code == 2 and "unknown function" in r.stderr


def test_optimize_grid_and_walk_forward(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "opt.json"
    r = runner.invoke(app, ["optimize", str(sma(tmp_path)), "--param", "fast=3:6:1",
                            "--param", "slow=15,25", "--walk-forward", "4:2", "--jobs", "2",
                            "--out", str(out), "-c", str(store.config)])
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert doc["evaluated"] == 8 and len(doc["results"]) == 8
    sharpe = [x["sharpe"] if x["sharpe"] is not None else -np.inf for x in doc["results"]]
    assert sharpe == sorted(sharpe, reverse=True)
    # the grid result for one set equals a plain backtest with those parameters
    best = doc["results"][0]
    cs = load_strategy(sma(tmp_path), best["params"])
    res = run_backtest(cs, store.bars, load_config(store.config).costs)
    assert best["final_equity"] == pytest.approx(res.final_equity, rel=1e-12)
    folds = doc["walk_forward"]["folds"]
    assert len(folds) == 2
    assert all(f["oos_from"] > f["is_to"] for f in folds)
    assert "out-of-sample" in r.stdout
    listing = runner.invoke(app, ["reports", "--kind", "optimization", "-c", str(store.config)])
    assert "sma_cross" in listing.stdout


@pytest.mark.parametrize(("args", "needle"), [
    (["--param", "fast=30:5:1"], "empty range"),
    (["--param", "fast=1:5:0"], "step must be > 0"),
    (["--param", "nope=1:5"], "no parameter 'nope'"),
    (["--param", "fast=a:b"], "not numbers"),
    (["--param", "fast=3:5", "--objective", "luck"], "--objective must be one of"),
    (["--param", "fast=3:5", "--walk-forward", "50:50"], "needs 100 trading days"),
])
def test_optimize_bad_input_exits_2(store: Store, tmp_path: Path, args: list[str],
                                    needle: str) -> None:
    r = runner.invoke(app, ["optimize", str(sma(tmp_path)), "--no-store", "--jobs", "1", "-c",
                            str(store.config), *args])
    assert r.exit_code == 2, r.output
    assert needle in r.stderr and "Traceback" not in r.output
