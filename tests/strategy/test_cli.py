"""`jts strategy check|explain` through Typer's CliRunner."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from jts.strategy.cli import strategy_app

RUN = CliRunner()


def test_check_all_valid_exits_0() -> None:
    files = sorted(str(p) for p in Path("strategies").glob("*.toml"))
    r = RUN.invoke(strategy_app, ["check", *files])
    assert r.exit_code == 0, r.output
    assert r.output.count(": ok (") == len(files)


def test_check_reports_file_line_col_and_exits_2(write: Callable[..., Path]) -> None:
    good = write(name="good.toml")
    bad = write(entry="close > emaa(close, 3)", name="bad.toml")
    r = RUN.invoke(strategy_app, ["check", str(good), str(bad)])
    assert r.exit_code == 2
    assert f"{bad}:11:18: unknown function `emaa`" in r.output
    assert "did you mean `ema`?" in r.output
    assert "Traceback" not in r.output


def test_check_config_error_exits_2(tmp_path: Path) -> None:
    p = tmp_path / "x.toml"
    p.write_text("[strategy]\nname = 1\n", encoding="utf-8")
    r = RUN.invoke(strategy_app, ["check", str(p)])
    assert r.exit_code == 2 and f"{p}:" in r.output


def test_explain_shows_tree_indicators_warmup() -> None:
    r = RUN.invoke(strategy_app, ["explain", "strategies/ema_cross_rsi.toml"])
    assert r.exit_code == 0, r.output
    assert "crossover()" in r.output
    assert "indicators: ema(timeperiod=12), ema(timeperiod=26), rsi(timeperiod=14), " \
           "sma(timeperiod=20)" in r.output
    assert "warm-up bars: 26" in r.output
