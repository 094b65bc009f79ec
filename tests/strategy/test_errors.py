"""Bad formulas and bad TOML give specific errors with file, line, column, caret and hint."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from jts.errors import ConfigError, DSLError
from jts.strategy import load_strategy
from jts.strategy.errors import (
    DSLArityError,
    DSLNameError,
    DSLParamError,
    DSLSyntaxError,
    DSLTypeError,
)

W = Callable[..., Path]
RULE_LINE = 11  # line of `entry = "...` in the conftest layout (no extra)
COL0 = len('entry = "') + 1


def _err(write: W, entry: str, cls: type[DSLError]) -> DSLError:
    p = write(entry=entry)
    with pytest.raises(cls) as ei:
        load_strategy(p)
    return ei.value


def test_unknown_function_points_at_it_with_hint(write: W) -> None:
    e = _err(write, "close > smaa(close, 20)", DSLNameError)
    head, line, caret = str(e).split("\n")
    assert head.endswith(f"s.toml:{RULE_LINE}:{COL0 + 8}: unknown function `smaa`")
    assert line == "close > smaa(close, 20)"
    assert caret == " " * 8 + "^ did you mean `sma`?"


def test_unknown_name_hint(write: W) -> None:
    e = _err(write, "clsoe > 1", DSLNameError)
    assert "did you mean `close`?" in str(e)
    assert f":{RULE_LINE}:{COL0}:" in str(e)


@pytest.mark.parametrize("bad", ["close >", "close > > 1", "(close > 1", "close = 1",
                                 "close && 1", "sma(close,, 3) > 1", "1 2"])
def test_syntax_errors(write: W, bad: str) -> None:
    e = _err(write, bad, DSLSyntaxError)
    assert f"s.toml:{RULE_LINE}:" in str(e) and "^" in str(e)


def test_type_number_where_condition_needed(write: W) -> None:
    e = _err(write, "close + 1", DSLTypeError)
    assert "entry rule must be a condition" in str(e)


def test_type_condition_where_number_needed(write: W) -> None:
    e = _err(write, "(close > 1) + 1 > 2", DSLTypeError)
    assert "must be a number, but this is a condition" in str(e)
    e = _err(write, "close and close > 1", DSLTypeError)
    assert "must be a condition" in str(e)


def test_arity_and_keywords(write: W) -> None:
    assert "takes at most 2" in str(_err(write, "rsi(close, 14, 3) > 1", DSLArityError))
    assert "needs a series" in str(_err(write, "rsi() > 1", DSLArityError))
    e = _err(write, "rsi(close, timeperod=14) > 1", DSLArityError)
    assert "did you mean `timeperiod`?" in str(e)
    assert "takes 2 positional" in str(_err(write, "crossover(close) ", DSLArityError))


def test_parameter_errors(write: W) -> None:
    assert "whole number" in str(_err(write, "sma(close, 2.5) > 1", DSLParamError))
    assert "out of range" in str(_err(write, "sma(close, 1) > 1", DSLParamError))
    assert "must be a constant" in str(_err(write, "sma(close, volume) > 1", DSLParamError))
    assert "exceeds the maximum" in str(_err(write, "close[1000000] > 1", DSLParamError))


def test_position_state_cannot_feed_indicators(write: W) -> None:
    assert "position state" in str(_err(write, "sma(unrealized_pct, 3) > 1", DSLTypeError))
    assert "position state" in str(_err(write, "bars_held[1] > 1", DSLTypeError))


def test_var_cycle_and_var_error_position(write: W) -> None:
    p = write(entry="a > 1", extra='\n[vars]\na = "b + 1"\nb = "a * 2"\n')
    with pytest.raises(DSLNameError, match="refers to itself"):
        load_strategy(p)
    p = write(entry="a > 1", extra='\n[vars]\na = "rsi(close, 14) + bogus"\n')
    with pytest.raises(DSLNameError) as ei:
        load_strategy(p)
    assert "s.toml:11:23: unknown name `bogus`" in str(ei.value)


def test_multiline_formula_positions(tmp_path: Path) -> None:
    from tests.strategy.conftest import HEADER

    p = tmp_path / "m.toml"
    p.write_text(HEADER + '[rules]\nentry = """\nclose > 1   # fine\n  and volume > nope\n"""\n'
                 'exit = "close < 1"\n', encoding="utf-8")
    with pytest.raises(DSLNameError) as ei:
        load_strategy(p)
    assert str(ei.value).startswith(f"{p}:12:16: unknown name `nope`")


def test_config_errors_name_key_and_line(write: W) -> None:
    p = write(extra="\n[stops]\nstop_los_pct = 2\n")
    with pytest.raises(ConfigError, match="unknown field `stop_los_pct`") as ei:
        load_strategy(p)
    assert (ei.value.line, ei.value.key) == (11, "stops.stop_los_pct")
    assert str(ei.value).startswith(f"{p}:11: stops.stop_los_pct:")
    p = write(header=HEADER_TF)
    with pytest.raises(ConfigError, match="unknown timeframe '7m'") as ei:
        load_strategy(p)
    assert ei.value.line == 4
    p = write(extra="lo = { default = 5, min = 9, max = 3 }\n")
    with pytest.raises(ConfigError, match="empty range"):
        load_strategy(p)
    p = write(entry=" ")
    with pytest.raises(ConfigError, match="empty rule"):
        load_strategy(p)
    with pytest.raises(ConfigError, match="unknown parameter `nope`"):
        load_strategy(write(), params={"nope": 1})
    p = write(extra='\n[sizing]\nmethod = "martingale"\n')
    with pytest.raises(ConfigError) as ei:
        load_strategy(p)
    assert ei.value.key == "sizing.method" and ei.value.line == 11


HEADER_TF = '[strategy]\nname = "t"\nuniverse = "all"\ntimeframe = "7m"\n'


def test_constant_rule_warns(write: W) -> None:
    cs = load_strategy(write(entry="1 > 2"))
    assert any("always true or always false" in w for w in cs.warnings)


def test_params_override(write: W) -> None:
    cs = load_strategy(write(entry="crossover(ema(close, fast), ema(close, slow))"),
                       params={"fast": 5})
    assert cs.params["fast"] == 5 and "ema(timeperiod=5)" in cs.indicators
    with pytest.raises(DSLParamError, match="whole number"):
        load_strategy(write(entry="ema(close, fast) > 1"), params={"fast": 2.5})


def test_errors_are_never_python_tracebacks(write: W) -> None:
    p = write()
    p.write_bytes(b"\xff\xfe garbage")
    with pytest.raises(ConfigError):
        load_strategy(p)
    with pytest.raises(ConfigError):
        load_strategy(p.parent / "missing.toml")
