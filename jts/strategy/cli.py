"""``jts strategy check|explain`` — validate strategy files and show what they compile to."""

from __future__ import annotations

from pathlib import Path

import typer

from jts.errors import ConfigError, DSLError
from jts.strategy import ast as A
from jts.strategy.errors import FormulaError

strategy_app = typer.Typer(help="Check and explain strategy files.", no_args_is_help=True)


def _headline(e: Exception, file: str) -> str:
    if isinstance(e, FormulaError):
        return str(e)
    if isinstance(e, ConfigError):
        return str(e) if e.file else f"{file}: {e}"
    return f"{file}: {e}"


@strategy_app.command()
def check(files: list[Path] = typer.Argument(..., help="strategy TOML files")) -> None:  # noqa: B008
    """Exit 0 when every file is valid, 2 otherwise (one `FILE:LINE:COL: message` per error)."""
    from jts.strategy.loader import load_strategy

    bad = 0
    for f in files:
        try:
            cs = load_strategy(f)
        except (ConfigError, DSLError) as e:
            bad += 1
            typer.echo(_headline(e, str(f)), err=False)
            continue
        for w in cs.warnings:
            typer.echo(f"warning: {w}")
        typer.echo(f"{f}: ok ({cs.name}, warm-up {cs.warmup_bars} bars)")
    raise typer.Exit(2 if bad else 0)


@strategy_app.command()
def explain(file: Path = typer.Argument(..., help="a strategy TOML file")) -> None:  # noqa: B008
    """Print the parsed rules, the indicators used and the warm-up bars needed."""
    from jts.strategy.loader import load_strategy

    try:
        cs = load_strategy(file)
    except (ConfigError, DSLError) as e:
        typer.echo(_headline(e, str(file)))
        raise typer.Exit(2) from None
    typer.echo(f"strategy {cs.name} ({cs.timeframe}, universe {cs.universe})")
    if cs.params:
        typer.echo("params: " + ", ".join(f"{k}={v:g}" for k, v in cs.params.items()))
    for k, node in cs.vars.items():
        typer.echo(f"var {k} = {A.to_source(node)}")
    for which, node in cs.rules.items():
        typer.echo(f"{which}: {A.to_source(node)}")
        typer.echo(A.tree(node, "  "))
    typer.echo("indicators: " + (", ".join(cs.indicators) or "none"))
    typer.echo(f"position-dependent: {'yes' if cs.position_dependent else 'no'}")
    typer.echo(f"warm-up bars: {cs.warmup_bars}")
    for w in cs.warnings:
        typer.echo(f"warning: {w}")
