"""``jts dashboard passwd|url`` — set the dashboard password, print the dashboard URL.

The lead mounts :data:`dashboard_app` as ``jts dashboard``. The password hash (scrypt) goes
to ``<state_dir>/dashboard.passwd`` (mode 0600); a running daemon reads it at the next login.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from jts.errors import ConfigError

dashboard_app = typer.Typer(help="Dashboard: password and URL.", no_args_is_help=True)
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Path to jts.toml.")]


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"jts: error: {message}", err=True)
    return typer.Exit(code)


@dashboard_app.command()
def passwd(config: ConfigOpt = None,
           stdin: Annotated[bool, typer.Option("--stdin", help="Read the password from the "
                                               "first line of standard input.")] = False,
           ) -> None:
    """Set the dashboard password (asked twice unless --stdin)."""
    from jts.config import load_config
    from jts.dashboard.auth import MIN_PASSWORD, PasswordStore

    try:
        cfg = load_config(config)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    if stdin:
        pw = sys.stdin.readline().rstrip("\r\n")
    else:
        pw = typer.prompt("New dashboard password", hide_input=True)
        again = typer.prompt("Repeat it", hide_input=True)
        if pw != again:
            raise _fail("the two passwords differ; nothing changed")
    if len(pw) < MIN_PASSWORD:
        raise _fail(f"the password needs at least {MIN_PASSWORD} characters; nothing changed")
    store = PasswordStore(cfg.state_dir, cfg.dashboard.password_hash)
    try:
        cfg.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        store.set(pw)
    except OSError as exc:
        raise _fail(f"cannot write {store.path}: {exc.strerror or exc}", 1) from None
    typer.echo(f"dashboard password set ({store.path})")
    if cfg.dashboard.password_hash:
        typer.echo("note: [dashboard] password_hash in the config takes precedence; remove it "
                   "to use this password")


@dashboard_app.command()
def url(config: ConfigOpt = None) -> None:
    """Print the dashboard URL from the configuration."""
    from jts.config import load_config
    from jts.dashboard.server import dashboard_url

    try:
        cfg = load_config(config)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    u = dashboard_url(cfg)
    if u is None:
        raise _fail("the dashboard is disabled ([dashboard] enabled = false)", 1)
    typer.echo(u)
