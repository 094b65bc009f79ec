"""Load a strategy TOML file into a :class:`CompiledStrategy` (validated, parsed, compiled)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
import structlog

from jts.errors import ConfigError
from jts.strategy import ast as A
from jts.strategy.compile import RESERVED, Compiler, Program
from jts.strategy.dsl import parse
from jts.strategy.errors import DSLNameError, DSLTypeError, Source
from jts.strategy.runtime import StreamEvaluator, VectorSignals
from jts.strategy.schema import (
    TIMEFRAMES,
    ParamRange,
    Sizing,
    Stops,
    StrategyFile,
    decode,
    find_line,
)

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class CompiledStrategy:
    name: str
    path: Path
    universe: tuple[str, ...] | str
    timeframe: str
    description: str
    enabled: bool
    params: Mapping[str, float]
    param_ranges: Mapping[str, ParamRange]
    sizing: Sizing
    stops: Stops
    max_positions: int | None
    warmup_bars: int
    rules: Mapping[str, A.Node]
    vars: Mapping[str, A.Node]
    program: Program
    entry_reg: int
    exit_reg: int
    warnings: tuple[str, ...] = field(default=())

    @property
    def indicators(self) -> list[str]:
        return list(self.program.indicators)

    @property
    def position_dependent(self) -> bool:
        return bool(self.program.tail.shape[0])

    def stream(self, n_symbols: int) -> StreamEvaluator:
        return StreamEvaluator(self.program, n_symbols, self.entry_reg, self.exit_reg)

    def vector(self, open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
               volume: np.ndarray, value: np.ndarray) -> VectorSignals:
        cols = [np.ascontiguousarray(c, np.float64)
                for c in (open_, high, low, close, volume, value)]
        if cols[0].shape[0] < self.warmup_bars:
            log.warning("strategy_data_shorter_than_warmup", strategy=self.name,
                        bars=cols[0].shape[0], warmup_bars=self.warmup_bars)
        return VectorSignals(self.program, self.entry_reg, self.exit_reg, cols)


def formula_source(text: str, file: str, table: str, key: str, value: str) -> Source:
    """Map a formula string back to its position in the TOML file (exact unless escaped)."""
    line = find_line(text, [table, key])
    if line is None:
        return Source(value, file, 1, 1, exact=False)
    lines = text.splitlines(keepends=True)
    start = sum(len(x) for x in lines[: line - 1])
    eq = text.find("=", start)
    i = eq + 1
    while i < len(text) and text[i] in " \t":
        i += 1
    q = text[i: i + 3]
    if q in ('"""', "'''"):
        i += 3
        if text[i: i + 1] == "\n":
            i += 1
        elif text[i: i + 2] == "\r\n":
            i += 2
    else:
        i += 1
    fline = text.count("\n", 0, i) + 1
    fcol = i - (text.rfind("\n", 0, i) + 1) + 1
    exact = text[i: i + len(value)] == value
    return Source(value, file, fline, fcol, exact)


def _check(sf: StrategyFile, text: str, file: str, overrides: Mapping[str, float] | None
           ) -> tuple[dict[str, float], dict[str, ParamRange]]:
    def err(msg: str, *path: str) -> ConfigError:
        return ConfigError(msg, file=file, key=".".join(path), line=find_line(text, list(path)))

    st = sf.strategy
    if not st.name.strip():
        raise err("must not be empty", "strategy", "name")
    if st.timeframe not in TIMEFRAMES:
        raise err(f"unknown timeframe {st.timeframe!r}; use one of {', '.join(TIMEFRAMES)}",
                  "strategy", "timeframe")
    if isinstance(st.universe, list) and not st.universe:
        raise err("empty universe: list symbols or name a market ('all', 'KOSPI200', 'surge')",
                  "strategy", "universe")
    for which, f in (("entry", sf.rules.entry), ("exit", sf.rules.exit)):
        if not f.strip():
            raise err("empty rule", "rules", which)
    params: dict[str, float] = {}
    ranges: dict[str, ParamRange] = {}
    for k, v in sf.params.items():
        if k in RESERVED:
            raise err(f"parameter name `{k}` is reserved (a series or function)", "params", k)
        if isinstance(v, ParamRange):
            lo = v.min if v.min is not None else v.default
            hi = v.max if v.max is not None else v.default
            if lo > hi:
                raise err(f"empty range: min {lo:g} > max {hi:g}", "params", k)
            if v.step is not None and v.step <= 0:
                raise err("step must be > 0", "params", k)
            if not lo <= v.default <= hi:
                raise err(f"default {v.default:g} outside [{lo:g}, {hi:g}]", "params", k)
            ranges[k] = v
            params[k] = float(v.default)
        else:
            if not math.isfinite(v):
                raise err("must be a finite number", "params", k)
            params[k] = float(v)
    for k, x in (overrides or {}).items():
        if k not in params:
            raise ConfigError(f"override of unknown parameter `{k}`", file=file, key=f"params.{k}")
        params[k] = float(x)
    for k in sf.vars:
        if k in RESERVED or k in params:
            raise err(f"var name `{k}` clashes with a series, function or parameter", "vars", k)
    sz = sf.sizing
    if sz.value <= 0 or (sz.method == "percent_equity" and sz.value > 100):
        raise err(f"value {sz.value:g} out of range for {sz.method}", "sizing", "value")
    if sz.atr_period < 1 or not 0 < sz.max_fraction <= 1:
        raise err("atr_period must be ≥ 1 and max_fraction in (0, 1]", "sizing")
    for name in ("stop_loss_pct", "take_profit_pct", "trailing_pct"):
        x = getattr(sf.stops, name)
        if x is not None and not 0 < x < 1000:
            raise err(f"{x:g} must be > 0 (percent)", "stops", name)
    mp = sf.max_positions if sf.max_positions is not None else st.max_positions
    if mp is not None and mp < 1:
        raise err("must be ≥ 1", "max_positions")
    return params, ranges


def load_strategy(path: str | Path, params: Mapping[str, float] | None = None) -> CompiledStrategy:
    """Read, validate and compile one strategy file (ConfigError / DSLError on bad input)."""
    p = Path(path)
    file = str(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read strategy: {e}", file=file) from None
    sf = decode(text, file)
    values, ranges = _check(sf, text, file, params)
    vars_: dict[str, tuple[A.Node, Source]] = {}
    for k, f in sf.vars.items():
        src = formula_source(text, file, "vars", k, f)
        vars_[k] = (parse(f, src), src)
    comp = Compiler(values, vars_)
    rules: dict[str, A.Node] = {}
    vals = {}
    warnings: list[str] = []
    for which, f in (("entry", sf.rules.entry), ("exit", sf.rules.exit)):
        src = formula_source(text, file, "rules", which, f)
        node = rules[which] = parse(f, src)
        v = vals[which] = comp.compile(node, src)
        if v.typ != "condition":
            raise DSLTypeError(f"the {which} rule must be a condition (true/false), not a number",
                               src, node.loc, "compare it, e.g. `... > 0`")
        if v.const:
            warnings.append(f"{file}: rules.{which} does not depend on market data or position: "
                            "it is always true or always false")
    for k, (node, src) in vars_.items():
        if k not in comp.var_vals:
            try:
                comp.compile(node, src)
            except DSLNameError:
                raise
            warnings.append(f"{file}: vars.{k} is never used")
    for w in warnings:
        log.warning("strategy_warning", message=w)
    prog = comp.finish(vals)
    mp = sf.max_positions if sf.max_positions is not None else sf.strategy.max_positions
    uni = sf.strategy.universe
    return CompiledStrategy(
        name=sf.strategy.name, path=p, universe=tuple(uni) if isinstance(uni, list) else uni,
        timeframe=sf.strategy.timeframe, description=sf.strategy.description,
        enabled=sf.strategy.enabled, params=MappingProxyType(values),
        param_ranges=MappingProxyType(ranges), sizing=sf.sizing, stops=sf.stops,
        max_positions=mp, warmup_bars=max(vals["entry"].warm, vals["exit"].warm),
        rules=MappingProxyType(rules), vars=MappingProxyType({k: v[0] for k, v in vars_.items()}),
        program=prog, entry_reg=vals["entry"].reg, exit_reg=vals["exit"].reg,
        warnings=tuple(warnings))
