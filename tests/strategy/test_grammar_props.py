"""Property tests: printed formulas re-parse to the same tree; arbitrary text only ever
raises the DSL error type (parsing and compiling)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jts.errors import DSLError
from jts.strategy import ast as A
from jts.strategy.compile import Compiler
from jts.strategy.dsl import parse
from jts.strategy.errors import DSLSyntaxError, Source

NAMES = st.sampled_from(["close", "open", "volume", "fast", "x1", "bars_held", "sma", "if",
                         "anda", "nota", "_y"])
NUMS = st.one_of(st.integers(0, 10**6).map(float),
                 st.floats(0, 1e6, allow_nan=False, allow_infinity=False))


def _nodes() -> st.SearchStrategy[A.Node]:
    leaf = st.one_of(NUMS.map(A.Num), NAMES.map(A.Name), st.booleans().map(A.Bool))

    def extend(inner: st.SearchStrategy[A.Node]) -> st.SearchStrategy[A.Node]:
        return st.one_of(
            st.builds(A.Unary, st.sampled_from(["-", "not"]), inner),
            st.builds(A.Bin, st.sampled_from(["+", "-", "*", "/", "<", "<=", ">", ">=", "==",
                                              "!=", "and", "or"]), inner, inner),
            st.builds(A.Lookback, inner, st.one_of(st.integers(0, 500).map(float).map(A.Num),
                                                   NAMES.map(A.Name))),
            st.builds(A.Call, NAMES.map(str), st.lists(inner, max_size=3).map(tuple),
                      st.lists(st.builds(A.Kwarg, NAMES.map(str), inner),
                               max_size=2).map(tuple)),
        )

    return st.recursive(leaf, extend, max_leaves=12)


SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(_nodes())
def test_print_parse_roundtrip(node: A.Node) -> None:
    text = A.to_source(node)
    assert parse(text) == node
    assert A.to_source(parse(text)) == text


ALPHABET = st.sampled_from([*"abcelosvrmi_0123456789 .,()[]<>=!+-*/%#\n\t\"'&|",
                            "and ", "or ", "not ", "sma(", "close", "rsi(close, 14)",
                            "crossover(", "if(", "true", "1e400"])


@SETTINGS
@given(st.lists(ALPHABET, max_size=30).map("".join))
def test_random_text_only_raises_dsl_errors(text: str) -> None:
    src = Source(text, "f.toml", 3, 9)
    try:
        node = parse(text, src)
    except DSLSyntaxError as e:
        assert str(e).startswith("f.toml:")
        return
    try:
        Compiler({"fast": 3.0}, {}).compile(node, src)
    except DSLError as e:
        assert str(e).startswith("f.toml:")
