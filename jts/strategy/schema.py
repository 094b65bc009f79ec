"""The strategy TOML schema (msgspec structs) and decoding with file/key/line errors.

Layout: ``[strategy]`` name, universe, timeframe, description, enabled, max_positions;
``[params]`` name = number or ``{default, min, max, step}``; ``[vars]`` name = formula;
``[rules]`` entry, exit; ``[sizing]``; ``[stops]``; optional top-level ``max_positions``.
"""

from __future__ import annotations

import re
import tomllib
from typing import Literal

import msgspec

from jts.errors import ConfigError

TIMEFRAMES = ("1m", "3m", "5m", "10m", "15m", "30m", "60m", "1h", "1d", "1w")
SizingMethod = Literal["fixed_quantity", "fixed_notional", "percent_equity", "atr_target", "kelly"]


class StrategySection(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    universe: list[str] | str
    timeframe: str
    description: str = ""
    enabled: bool = True
    max_positions: int | None = None


class ParamRange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    default: float
    min: float | None = None
    max: float | None = None
    step: float | None = None


class Rules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    entry: str
    exit: str


class Sizing(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How much to buy. ``value`` means: shares (fixed_quantity), KRW (fixed_notional), percent
    of equity (percent_equity), percent of equity risked per ATR (atr_target), or the Kelly
    fraction multiplier (kelly, capped by ``max_fraction``)."""

    method: SizingMethod = "fixed_notional"
    value: float = 1_000_000.0
    atr_period: int = 14
    max_fraction: float = 0.25


class Stops(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    stop_loss_pct: float | None = None
    take_profit_pct: float | None = None
    trailing_pct: float | None = None


class StrategyFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    strategy: StrategySection
    rules: Rules
    params: dict[str, float | ParamRange] = {}
    vars: dict[str, str] = {}
    sizing: Sizing = Sizing()
    stops: Stops = Stops()
    max_positions: int | None = None


_HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\s\"-]+?)\s*\]\s*(#.*)?$")


def find_line(text: str, path: list[str]) -> int | None:
    """1-based line of a table or ``key`` (path like ["strategy", "name"]) in TOML text."""
    table = ""
    want_table = ".".join(path[:-1])
    for i, raw in enumerate(text.splitlines(), 1):
        m = _HEADER.match(raw)
        if m:
            table = m.group(1).replace(" ", "")
            if table == ".".join(path):
                return i
            continue
        key = raw.split("=", 1)[0].strip().strip('"') if "=" in raw else None
        if key is not None and table == want_table and path and key == path[-1]:
            return i
    return None


def _parse_path(msg: str) -> tuple[str, list[str]]:
    m = re.search(r" - at `\$([^`]*)`$", msg)
    raw = m.group(1) if m else ""
    text = msg[: m.start()] if m else msg
    parts = [p for p in re.split(r"\.|\[[^\]]*\]", raw) if p]
    u = re.search(r"unknown field `([^`]+)`", text)
    if u:
        parts.append(u.group(1))
    r = re.search(r"missing required field `([^`]+)`", text)
    if r:
        parts.append(r.group(1))
    return text, parts


def decode(text: str, file: str) -> StrategyFile:
    """TOML text -> :class:`StrategyFile`; every problem is a ConfigError naming file/key/line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        raise ConfigError(f"invalid TOML: {e}", file=file,
                          line=int(m.group(1)) if m else None) from None
    try:
        return msgspec.convert(data, StrategyFile)
    except msgspec.ValidationError as e:
        msg, parts = _parse_path(str(e))
        line = find_line(text, parts) if parts else None
        if line is None and len(parts) > 1:
            line = find_line(text, parts[:-1])
        raise ConfigError(msg, file=file, key=".".join(parts) or None, line=line) from None
