"""Replay/backtest parity: ``jts replay --json`` (the live components on a fake clock) and
``jts backtest --json`` (the numba kernel) must report exactly the same trades and equity
for every strategy in ``strategies/`` and for position-dependent test strategies, on the
same stored bars and cost model. Known gaps of the live engine are pinned as mismatches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from jts.backtest.cli import backtest_cmd
from jts.krx import price_limits
from jts.replay_cli import replay_cmd
from tests.replay.conftest import JUMP, SYMBOLS, Store

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent / "strategies"
SHIPPED = sorted((ROOT / "strategies").glob("*.toml"))
PARITY = [*SHIPPED, *(HERE / f"rp_{n}.toml" for n in (
    "bars_held", "unrealized", "entry_price", "churn")),
    HERE / "rp_max_positions.toml"]
TRADE_KEYS = ("symbol", "side", "quantity", "signal_time", "entry_time", "entry_ts_ns",
              "entry_price", "exit_time", "exit_ts_ns", "exit_price", "fees", "slippage",
              "pnl", "return_pct", "bars_held", "exit_reason")

app = typer.Typer()
app.command("backtest")(backtest_cmd)
app.command("replay")(replay_cmd)
runner = CliRunner()


@pytest.fixture(autouse=True)
def _cli_logging() -> None:
    from jts.log import setup_logging
    setup_logging(level="warning", console=True)     # as jts.cli.main does


def invoke(cmd: str, path: Path, store: Store, *extra: str) -> dict[str, Any]:
    """Run a command once per (command, file, options) in this session; tests share runs."""
    key = (cmd, str(path), str(store.config), extra)
    if key not in _RUNS:
        args = [cmd, str(path), "--json", "-c", str(store.config), *extra]
        if "--symbols" not in extra:
            args += ["--symbols", ",".join(SYMBOLS)]
        if cmd == "backtest":
            args.append("--no-store")
        r = runner.invoke(app, args)
        assert r.exit_code == 0, r.output
        _RUNS[key] = json.loads(r.stdout)
    return _RUNS[key]


_RUNS: dict[tuple[str, str, str, tuple[str, ...]], dict[str, Any]] = {}
# rp_churn trades on every other bar: the two gapping symbols are plenty
CHURN = ("--symbols", ",".join(JUMP))


def trades(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: t[k] for k in TRADE_KEYS} for t in doc["trades"]]


def first_difference(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> str:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"trade {i}: backtest {x} != replay {y}"
    return f"{len(a)} backtest trades, {len(b)} replay trades"


@pytest.mark.parametrize("path", PARITY, ids=lambda p: Path(p).stem)
def test_replay_reports_exactly_the_backtests_trades(path: Path, store: Store) -> None:
    extra = CHURN if Path(path).stem == "rp_churn" else ()
    bt = invoke("backtest", path, store, *extra)
    rp = invoke("replay", path, store, *extra)
    # the backtest must not have exits the live engine does not make ([stops]: see below)
    assert {t["exit_reason"] for t in bt["trades"]} <= {"signal", "open"}
    assert len(bt["trades"]) >= 3, "the data must make the strategy trade"
    assert trades(rp) == trades(bt), first_difference(trades(bt), trades(rp))
    assert rp["metrics"]["final_equity"] == bt["metrics"]["final_equity"]
    assert rp["metrics"] == bt["metrics"]
    assert rp["monthly_returns"] == bt["monthly_returns"]
    assert (rp["kind"], bt["kind"]) == ("replay", "backtest")
    assert {k: v for k, v in rp.items() if k not in ("kind", "replay")} == \
        {k: v for k, v in bt.items() if k != "kind"}
    stats = rp["replay"]
    assert stats["ledger_verified"] is True
    assert stats["risk_rejected"] == stats["broker_rejected"] == 0
    assert stats["fills"] == bt["metrics"]["fills"]
    assert stats["prints_accepted"] == stats["prints"] == 4 * stats["bars"]


def test_gap_opens_fill_at_the_daily_limits_in_both(store: Store) -> None:
    """rp_churn trades on every other bar; the data gap up 40 % (000660) and down 40 %
    (035420) overnight, so a buy and a sell fill on those opens, clamped into ±30 %."""
    rp = invoke("replay", HERE / "rp_churn.toml", store, *CHURN)
    f = store.frame
    hits = []
    for sym in JUMP:
        bars = f[f.symbol == sym].reset_index(drop=True)
        day = (bars.ts_ns + 9 * 3600 * 10**9) // (86_400 * 10**9)
        first = int(day.ne(day.shift()).to_numpy().nonzero()[0][-1])   # the jump day's open
        lo, hi = price_limits(float(bars.close[first - 1]))
        at = int(bars.ts_ns[first])
        for t in rp["trades"]:
            if t["symbol"] == sym and t["entry_ts_ns"] == at:
                hits.append((sym, "buy", t["entry_price"], float(hi)))
            if t["symbol"] == sym and t["exit_ts_ns"] == at:
                hits.append((sym, "sell", t["exit_price"], float(lo)))
    assert sorted((s, side) for s, side, _, _ in hits) == [("000660", "buy"), ("035420", "sell")]
    for _, _, got, limit in hits:
        assert got == limit


def test_other_timeframes_match_too(store: Store) -> None:
    path = HERE / "rp_bars_held.toml"
    bt = invoke("backtest", path, store, "--timeframe", "5m")
    rp = invoke("replay", path, store, "--timeframe", "5m")
    assert len(bt["trades"]) >= 3
    assert trades(rp) == trades(bt), first_difference(trades(bt), trades(rp))
    assert rp["metrics"] == bt["metrics"]


# --- known gaps of the live pipeline (or the kernel), pinned so a fix shows up ----------

def test_stops_are_enforced_by_the_live_engine(store: Store) -> None:
    """[stops] trigger on the same levels live (on prints) as in the backtest (on the bar's
    high/low). The backtest fills a stop at the level (or a gapping open); live, the closing
    market order fills on the next print. So trades agree up to each symbol's first stop
    exit, and that trade is a stop exit of the same entry, in the same bar or the next."""
    path = HERE / "rp_stops.toml"
    bt, rp = invoke("backtest", path, store), invoke("replay", path, store)
    stops = {"stop_loss", "take_profit", "trailing_stop"}
    assert {t["exit_reason"] for t in bt["trades"]} & stops
    assert {t["exit_reason"] for t in rp["trades"]} & stops
    assert rp["replay"]["ledger_verified"] is True
    checked = 0
    for sym in SYMBOLS:
        mine_bt = [t for t in trades(bt) if t["symbol"] == sym]
        mine_rp = [t for t in trades(rp) if t["symbol"] == sym]
        k = next((i for i, t in enumerate(mine_bt) if t["exit_reason"] in stops), len(mine_bt))
        assert mine_rp[:k] == mine_bt[:k], first_difference(mine_bt[:k], mine_rp[:k])
        if k < len(mine_bt):
            a, b = mine_bt[k], mine_rp[k]
            assert (b["entry_ts_ns"], b["quantity"]) == (a["entry_ts_ns"], a["quantity"])
            assert b["exit_reason"] in stops
            assert 0 <= b["exit_ts_ns"] - a["exit_ts_ns"] <= 60 * 10**9
            checked += 1
    assert checked >= 1


@pytest.mark.parametrize("sizing", ["method = \"atr_target\"\nvalue = 0.01",
                                    "method = \"kelly\"\nvalue = 0.5"],
                         ids=["atr_target", "kelly"])
def test_history_based_sizing_matches_the_backtest(sizing: str, store: Store, tmp_path: Path
                                                   ) -> None:
    """atr_target (equity × value% / ATR) and kelly (equity × fraction of the strategy's
    closed trades / price) size live exactly as the backtest kernel does."""
    path = tmp_path / "s.toml"
    path.write_text((HERE / "rp_bars_held.toml").read_text(encoding="utf-8").replace(
        'method = "fixed_quantity"\nvalue = 10', sizing), encoding="utf-8")
    # cash that never binds: the kernel shrinks an unaffordable buy, live refuses it
    # (900100 has a stretch of flat minutes: its ATR collapses and atr_target asks for
    # billions, which the live risk gate refuses while the kernel buys it)
    rich = ("--cash", "100000000000", "--symbols",
            ",".join(s for s in SYMBOLS if s != "900100"))
    bt, rp = invoke("backtest", path, store, *rich), invoke("replay", path, store, *rich)
    assert len(bt["trades"]) >= 3
    assert len({t["quantity"] for t in bt["trades"]}) > 1      # sized, not a constant
    assert trades(rp) == trades(bt), first_difference(trades(bt), trades(rp))
    assert rp["metrics"] == bt["metrics"]
