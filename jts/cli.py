"""The ``jts`` command line (Typer).

Exit codes: 0 success; 1 runtime failure (daemon crashed, control endpoint error);
2 bad usage, configuration or input (the message names file, key and line);
3 the daemon is not running (``status``, ``stop``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from jts import __version__
from jts.config import Config, load_config
from jts.daemon import EXIT_FAILURE, EXIT_NOT_RUNNING, EXIT_USAGE, lock_is_held, read_pid
from jts.errors import ConfigError, DaemonError, JTSError

app = typer.Typer(name="jts", help="JTS (자동매매시스템): automated trading daemon.",
                  no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False)
service_app = typer.Typer(help="Install the systemd unit.", no_args_is_help=True)
app.add_typer(service_app, name="service")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Path to jts.toml "
                                                "(default: $JTS_CONFIG or ./jts.toml).")]


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    typer.echo(f"jts: error: {message}", err=True)
    raise typer.Exit(code)


def _load(path: Path | None) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)


def _call(cfg: Config, method: str, route: str, body: dict[str, Any] | None = None) -> Any:
    from jts.control import call

    return asyncio.run(call(cfg.socket_path, method, route, body))


@app.command()
def version() -> None:
    """Print the JTS version."""
    typer.echo(f"jts {__version__}")


@app.command()
def start(config: ConfigOpt = None,
          foreground: Annotated[bool, typer.Option("--foreground", help="Run in this process "
                                                   "(for systemd); logs also to the console.")
                                ] = False,
          quiet: Annotated[bool, typer.Option("--quiet", help="No console log output.")] = False,
          ) -> None:
    """Start the daemon (in the background unless --foreground)."""
    cfg = _load(config)
    from jts.app import load_strategies
    from jts.daemon import run_foreground, start_background

    try:
        load_strategies(cfg)           # fail fast, in the user's terminal, on a bad strategy
    except JTSError as exc:
        fail(str(exc), EXIT_USAGE)
    if foreground:
        try:
            code = run_foreground(cfg, console=not quiet)
        except ConfigError as exc:
            fail(str(exc), EXIT_USAGE)
        except DaemonError as exc:
            fail(str(exc), EXIT_FAILURE)
        if "chdb" in sys.modules:
            # every store is closed and the log flushed: skip the interpreter teardown, in
            # which the embedded ClickHouse engine can crash (a SIGSEGV after a clean stop
            # would make systemd restart the daemon)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        raise typer.Exit(code)
    try:
        pid = start_background(cfg, config)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)
    except DaemonError as exc:
        fail(str(exc), EXIT_FAILURE)
    typer.echo(f"jts started (pid {pid}, mode {cfg.daemon.mode})")
    from jts.dashboard.server import dashboard_url

    url = dashboard_url(cfg)
    if url:
        typer.echo(f"  dashboard: {url}")
    typer.echo(f"  log:     {cfg.log_file}")
    typer.echo(f"  control: {cfg.socket_path}")


@app.command()
def stop(config: ConfigOpt = None,
         force: Annotated[bool, typer.Option("--force", help="Kill the daemon (SIGKILL) if it "
                                             "has not exited gracefully in time.")] = False,
         timeout: Annotated[float | None, typer.Option(help="Seconds to wait (default: "
                                                       "daemon.stop_timeout + 5).")] = None,
         ) -> None:
    """Stop the daemon gracefully: no new orders, in-flight work settles, stores flush."""
    cfg = _load(config)
    pid = read_pid(cfg.pid_file)
    if not lock_is_held(cfg.pid_file):
        typer.echo("jts is not running")
        raise typer.Exit(EXIT_NOT_RUNNING)
    wait = timeout if timeout is not None else cfg.daemon.stop_timeout + 5
    try:
        _call(cfg, "POST", "/stop", {"force": force})
    except DaemonError as exc:
        if not force:
            fail(f"{exc} (use --force to terminate pid {pid})")
        if pid:
            os.kill(pid, signal.SIGTERM)
    t_end = time.monotonic() + wait
    while time.monotonic() < t_end:
        if not lock_is_held(cfg.pid_file):
            typer.echo(f"jts stopped (pid {pid})")
            return
        time.sleep(0.1)
    if force and pid:
        os.kill(pid, signal.SIGKILL)
        typer.echo(f"jts killed (pid {pid}) after {wait:.0f} s")
        return
    fail(f"daemon (pid {pid}) did not exit within {wait:.0f} s; use --force")


@app.command()
def status(config: ConfigOpt = None,
           as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
           ) -> None:
    """Show whether the daemon runs and what it is doing."""
    cfg = _load(config)
    if not lock_is_held(cfg.pid_file):
        st: dict[str, Any] = {"running": False, "pid": None, "mode": cfg.daemon.mode,
                              "ticks": 0, "orders": {}, "fills": 0, "positions": [],
                              "pnl": {}}
        typer.echo(json.dumps(st) if as_json else "jts is not running")
        raise typer.Exit(EXIT_NOT_RUNNING)
    try:
        st = _call(cfg, "GET", "/status")
    except DaemonError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(st, ensure_ascii=False))
        return
    from jts.render import render_status

    typer.echo(render_status(st))


@app.command()
def kill(config: ConfigOpt = None,
         flatten: Annotated[bool, typer.Option("--flatten", help="Also close every position "
                                               "with market orders.")] = False) -> None:
    """Emergency stop-all: halt new entries and cancel every open order."""
    cfg = _load(config)
    if not lock_is_held(cfg.pid_file):
        typer.echo("jts is not running")
        raise typer.Exit(EXIT_NOT_RUNNING)
    try:
        r = _call(cfg, "POST", "/kill", {"flatten": flatten})
    except DaemonError as exc:
        fail(str(exc))
    typer.echo(f"trading state {r['trading_state']}: cancelled {r['cancelled']} orders, "
               f"{r['closing_orders']} closing orders sent")


@app.command()
def resume(config: ConfigOpt = None) -> None:
    """Return to ACTIVE trading after `jts kill`."""
    cfg = _load(config)
    if not lock_is_held(cfg.pid_file):
        typer.echo("jts is not running")
        raise typer.Exit(EXIT_NOT_RUNNING)
    try:
        r = _call(cfg, "POST", "/resume", {})
    except DaemonError as exc:
        fail(str(exc))
    typer.echo(f"trading state {r['trading_state']}")


@app.command()
def logs(config: ConfigOpt = None,
         follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines."
                                              )] = False,
         level: Annotated[str | None, typer.Option("--level", "-l", help="Minimum level: "
                                                   "debug, info, warning, error.")] = None,
         grep: Annotated[str | None, typer.Option("--grep", "-g", help="Only lines containing "
                                                  "TEXT.")] = None,
         lines: Annotated[int, typer.Option("--lines", "-n", min=0, help="Show the last N lines "
                                            "first.")] = 50,
         raw: Annotated[bool, typer.Option("--raw", help="Print the JSON lines as they are."
                                           )] = False,
         ) -> None:
    """Tail the JSON log file and render it readably."""
    from jts.render import LEVELS, follow_log, render_log_line

    cfg = _load(config)
    if level is not None and level.lower() not in LEVELS:
        fail(f"--level must be one of {', '.join(LEVELS)}", EXIT_USAGE)
    path = cfg.log_file
    if not path.exists() and not follow:
        fail(f"no log file at {path}", EXIT_USAGE)
    try:
        for line in follow_log(path, lines, follow):
            out = render_log_line(line, min_level=level, grep=grep, raw=raw)
            if out is not None:
                typer.echo(out)
    except KeyboardInterrupt:
        return


@app.command("check-config")
def check_config(config: ConfigOpt = None) -> None:
    """Validate jts.toml and every strategy file it enables."""
    from jts.app import load_strategies

    cfg = _load(config)
    errors: list[str] = []
    try:
        strategies = load_strategies(cfg)
    except JTSError as exc:
        errors.append(str(exc))
        strategies = []
    else:
        pass
    if errors:
        for e in errors:
            typer.echo(f"jts: error: {e}", err=True)
        raise typer.Exit(EXIT_USAGE)
    where = cfg.source or "(built-in defaults)"
    typer.echo(f"{where}: ok ({len(strategies)} strategies: "
               f"{', '.join(s.name for s in strategies) or 'none'})")


@service_app.command("install")
def service_install(config: ConfigOpt = None,
                    user: Annotated[bool, typer.Option("--user", help="Install for this user "
                                                       "(~/.config/systemd/user).")] = False,
                    system: Annotated[bool, typer.Option("--system", help="Install system-wide "
                                                         "(/etc/systemd/system).")] = False,
                    print_only: Annotated[bool, typer.Option("--print", help="Print the unit "
                                                             "instead of writing it.")] = False,
                    dest: Annotated[Path | None, typer.Option(help="Write the unit here instead."
                                                              )] = None,
                    ) -> None:
    """Write config/jts.service with this installation's paths."""
    from jts.service import install_unit, render_unit

    if user and system:
        fail("choose one of --user and --system", EXIT_USAGE)
    cfg = _load(config)
    text = render_unit(cfg, system=system)
    if print_only:
        typer.echo(text, nl=False)
        return
    try:
        path = install_unit(text, system=system, dest=dest)
    except OSError as exc:
        fail(f"cannot write the unit: {exc}")
    scope = "" if system else " --user"
    typer.echo(f"wrote {path}\nnext: systemctl{scope} daemon-reload && "
               f"systemctl{scope} enable --now jts")


def _mount_optional() -> None:
    """Sub-apps owned by other packages (strategy DSL, storage) when they are installed."""
    try:
        from jts.strategy.cli import strategy_app
    except ImportError:
        pass
    else:
        app.add_typer(strategy_app, name="strategy", help="Check and explain strategy files.")
    from jts.storage.cli import build_data_app, build_db_app
    from jts.storage.urls import StorageUrls

    def urls(path: Path | None) -> StorageUrls:
        cfg = _load(path)
        return StorageUrls(**{k: cfg.storage_url(k)
                              for k in ("ledger", "timeseries", "documents", "cache")})

    from jts.backtest.cli import backtest_cmd, optimize_cmd, reports_cmd
    from jts.dashboard.cli import dashboard_app

    app.add_typer(dashboard_app, name="dashboard", help="Dashboard password and URL.")
    from brokers.kis.cli import broker_app, sim_app

    app.add_typer(broker_app, name="broker", help="Talk to a configured broker account.")
    app.add_typer(sim_app, name="sim", help="Run a broker simulator on loopback.")

    app.command("backtest", help="Backtest a strategy over stored bars.")(backtest_cmd)
    app.command("optimize", help="Search a strategy's parameters (grid, random, "
                "walk-forward).")(optimize_cmd)
    app.command("reports", help="List and show stored backtest and optimization reports."
                )(reports_cmd)
    from jts.replay_cli import replay_cmd

    app.command("replay", help="Replay stored bars through the live pipeline (paper broker, "
                "fake clock); prints what `jts backtest` prints.")(replay_cmd)
    app.add_typer(build_db_app(urls), name="db", help="Ledger: migrate, status, verify.")
    app.add_typer(build_data_app(urls), name="data", help="Market data: import, export, list.")


_mount_optional()


def main() -> None:
    from jts.log import setup_logging

    setup_logging(level="warning", console=True)    # CLI commands: only problems on stderr
    try:
        app()
    except JTSError as exc:   # last resort: never a traceback for our own errors
        typer.echo(f"jts: error: {exc}", err=True)
        sys.exit(EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_FAILURE)
