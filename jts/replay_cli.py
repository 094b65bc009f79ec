"""CLI command ``jts replay``: the live pipeline over stored bars on a fake clock, printing
the same report as ``jts backtest`` (``--json``: the same JSON shape). The lead registers it::

    app.command("replay")(replay_cmd)

Exit status: 0 ok, 2 bad input (one ``jts: error: ...`` line on stderr), 1 runtime failure.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from jts.backtest.cli import (
    CashOpt,
    ConfigOpt,
    FromOpt,
    JsonOpt,
    ReportOpt,
    StrategyArg,
    SymbolsOpt,
    TfOpt,
    guarded,
    run,
    strategy_info,
)
from jts.backtest.data import InputError

LedgerOpt = Annotated[Path | None, typer.Option(
    "--ledger", help="keep the replay's SQLite ledger here (a new file; default: temporary)")]
ToOpt = Annotated[str | None, typer.Option("--to", help="last KST day, YYYY-MM-DD")]


def _symbols(arg: str | None, universe: object) -> list[str]:
    if arg is not None:
        syms = list(dict.fromkeys(s.strip() for s in arg.split(",") if s.strip()))
        if not syms:
            raise InputError("--symbols: empty list")
        return syms
    if isinstance(universe, tuple) and universe:
        return list(universe)
    raise InputError(f"the strategy's universe is {universe!r}: pass --symbols A,B,…")


def replay_doc(res: Any, stats: Any, cs: Any, gaps: list[dict[str, object]],
               close: Any) -> dict[str, Any]:
    """The report document: the backtest's shape, ``kind = "replay"``, plus the pipeline's
    counters under ``"replay"``."""
    from jts.backtest.report import build
    from jts.replay import WIDE_RISK

    doc = build(res, strategy=strategy_info(cs), gaps=gaps, close=close)
    doc["kind"] = "replay"
    doc["replay"] = {**stats.as_dict(), "pipeline": "collector → engine → risk → desk → "
                     "paper broker → ledger", "risk_limits": {
                         "max_position_notional": WIDE_RISK.max_position_notional,
                         "max_total_exposure": WIDE_RISK.max_total_exposure,
                         "max_open_positions": WIDE_RISK.max_open_positions,
                         "max_orders_per_minute": WIDE_RISK.max_orders_per_minute,
                         "max_daily_loss": WIDE_RISK.max_daily_loss}}
    return doc


def replay_cmd(strategy: StrategyArg, symbols: SymbolsOpt = None, from_: FromOpt = None,
               to: ToOpt = None, timeframe: TfOpt = None, json_out: JsonOpt = False,
               report: ReportOpt = None, cash: CashOpt = 100_000_000.0,
               ledger: LedgerOpt = None, config: ConfigOpt = None) -> None:
    """Replay stored bars through the live pipeline (paper broker, fake clock)."""
    def body() -> None:
        from jts.backtest.cli import _print_summary
        from jts.backtest.data import day_range, find_gaps, load_bars
        from jts.backtest.report import render_html
        from jts.config import load_config
        from jts.replay import run_replay
        from jts.strategy import load_strategy

        cfg = load_config(config)
        cs = load_strategy(strategy)
        if not cash > 0:
            raise InputError(f"--cash must be > 0, got {cash}")
        if ledger is not None and ledger.exists():
            raise InputError(f"--ledger {ledger}: file exists (the replay needs a new ledger)")
        syms = _symbols(symbols, cs.universe)
        lo, hi = day_range(from_, to)
        tf = timeframe or cs.timeframe
        bars = run(load_bars(cfg.storage_url("timeseries"), syms, lo, hi, tf, cs.warmup_bars))
        gaps = find_gaps(bars)
        if gaps:
            typer.echo(f"jts: warning: {len(gaps)} data gap(s), not filled; first: "
                       f"{gaps[0].symbol} after {gaps[0].as_dict()['after']}", err=True)
        res, stats = run(run_replay(cs, bars, cfg.costs, initial_cash=cash,
                                    ledger_path=ledger))
        doc = replay_doc(res, stats, cs, [g.as_dict() for g in gaps], bars.close)
        if report is not None:
            text = json.dumps(doc, indent=1) if report.suffix == ".json" else render_html(doc)
            report.write_text(text, encoding="utf-8")
        if json_out:
            slim = {k: v for k, v in doc.items() if k not in ("equity_curve", "prices")}
            sys.stdout.write(json.dumps(slim) + "\n")
        else:
            _print_summary(doc)
            typer.echo(f"  intents / fills      {stats.intents:>9,} / {stats.fills:,}")
            if stats.ledger:
                typer.echo(f"  ledger               {stats.ledger}")
    guarded(body)


__all__ = ["replay_cmd"]
