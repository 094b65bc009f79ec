"""Thin Typer sub-apps for the storage ports: ``jts db migrate|status|verify`` and
``jts data import|export|list``.

The lead's CLI mounts them with a loader that turns ``-c CONFIG`` into :class:`StorageUrls`::

    app.add_typer(build_db_app(load_urls), name="db")
    app.add_typer(build_data_app(load_urls), name="data")

``--ledger`` / ``--timeseries`` override the configured URL. Every JTS error becomes one line
on stderr and exit status 1 (2 for a verify that found problems).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer

from jts.clock import KST, from_datetime, iso_utc
from jts.errors import JTSError
from jts.storage.urls import StorageUrls, redact

UrlLoader = Callable[[Path | None], StorageUrls]
ConfigOpt = Annotated[Path | None, typer.Option("-c", "--config", help="jts.toml to read")]
LedgerOpt = Annotated[str | None, typer.Option("--ledger", help="ledger URL override")]
TsOpt = Annotated[str | None, typer.Option("--timeseries", help="time-series URL override")]


def _default_loader(config: Path | None) -> StorageUrls:
    return StorageUrls()


def _run(coro: Coroutine[Any, Any, int]) -> None:
    try:
        code = asyncio.run(coro)
    except JTSError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if code:
        raise typer.Exit(code)


def build_db_app(load_urls: UrlLoader | None = None) -> typer.Typer:
    load = load_urls or _default_loader
    app = typer.Typer(help="Ledger database: migrations, status, verification.",
                      no_args_is_help=True)

    def url_of(config: Path | None, ledger: str | None) -> str:
        return ledger or load(config).ledger

    @app.command()
    def migrate(config: ConfigOpt = None, ledger: LedgerOpt = None) -> None:
        """Apply pending schema migrations (idempotent)."""
        async def go() -> int:
            from jts.storage.ledger import open_ledger
            url = url_of(config, ledger)
            led = await open_ledger(url, auto_migrate=True)
            version = await led.schema_version()
            await led.close()
            typer.echo(f"ledger {redact(url)}: schema version {version}")
            return 0
        _run(go())

    @app.command()
    def status(config: ConfigOpt = None, ledger: LedgerOpt = None) -> None:
        """Schema version, open orders, positions, fills."""
        async def go() -> int:
            from jts.storage.ledger import open_ledger
            from jts.storage.ledger_core import SCHEMA_VERSION
            url = url_of(config, ledger)
            led = await open_ledger(url, auto_migrate=False)
            try:
                typer.echo(f"ledger {redact(url)}: schema {await led.schema_version()} "
                           f"(this build {SCHEMA_VERSION})")
                typer.echo(f"open orders: {len(await led.open_orders())}")
                for p in await led.positions():
                    typer.echo(f"position {p.broker}/{p.account} {p.symbol}: "
                               f"{p.quantity} @ {p.avg_price}")
                typer.echo(f"fills: {len(await led.fills())}")
            finally:
                await led.close()
            return 0
        _run(go())

    @app.command()
    def verify(config: ConfigOpt = None, ledger: LedgerOpt = None) -> None:
        """Recompute positions and cash from fills; check the audit hash chain."""
        async def go() -> int:
            from jts.storage.ledger import open_ledger
            url = url_of(config, ledger)
            led = await open_ledger(url, auto_migrate=False)
            try:
                report = await led.verify()
            finally:
                await led.close()
            for p in report.problems:
                typer.echo(f"PROBLEM: {p}", err=True)
            typer.echo(f"ledger {redact(url)}: {'OK' if report.ok else 'FAILED'} — "
                       f"{report.fills} fills, {report.orders} orders, {report.positions} "
                       f"open positions, {report.audit_entries} audit entries")
            return 0 if report.ok else 2
        _run(go())

    return app


def _parse_when(text: str | None, default: int) -> int:
    if not text:
        return default
    from datetime import datetime
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"not an ISO date/time: {text!r}") from None
    return from_datetime(dt if dt.tzinfo else dt.replace(tzinfo=KST))


def build_data_app(load_urls: UrlLoader | None = None) -> typer.Typer:
    load = load_urls or _default_loader
    app = typer.Typer(help="Market data in the time-series store.", no_args_is_help=True)

    @app.command("import")
    def import_(path: Path, symbol: Annotated[str | None, typer.Option("--symbol")] = None,
                timeframe: Annotated[str, typer.Option("--timeframe")] = "1m",
                skip_bad: Annotated[bool, typer.Option("--skip-bad")] = False,
                config: ConfigOpt = None, timeseries: TsOpt = None) -> None:
        """Import an OHLCV CSV or Parquet file (bad rows: nothing imported unless --skip-bad)."""
        async def go() -> int:
            from jts.storage.importer import load_ohlcv
            from jts.storage.timeseries import open_timeseries
            result = load_ohlcv(path, symbol=symbol, timeframe=timeframe, skip_bad=skip_bad)
            for line in result.bad:
                typer.echo(f"skipped {line}", err=True)
            ts = await open_timeseries(timeseries or load(config).timeseries)
            try:
                n = await ts.write_bars(result.frame)
            finally:
                await ts.close()
            typer.echo(f"imported {n} {timeframe} bars from {path}"
                       + (f" ({len(result.bad)} bad rows skipped)" if result.bad else ""))
            return 0
        _run(go())

    @app.command()
    def export(symbol: str, path: Path,
               timeframe: Annotated[str, typer.Option("--timeframe")] = "1m",
               start: Annotated[str | None, typer.Option("--from")] = None,
               end: Annotated[str | None, typer.Option("--to")] = None,
               config: ConfigOpt = None, timeseries: TsOpt = None) -> None:
        """Export one symbol's bars to CSV or Parquet (by file suffix)."""
        async def go() -> int:
            from jts.storage.importer import export_frame
            from jts.storage.timeseries import open_timeseries
            ts = await open_timeseries(timeseries or load(config).timeseries)
            try:
                frame = await ts.read_bars_df([symbol], _parse_when(start, 0),
                                              _parse_when(end, 2**62), timeframe)
            finally:
                await ts.close()
            n = export_frame(frame.drop(columns=["symbol"]), path)
            typer.echo(f"exported {n} {timeframe} bars of {symbol} to {path}")
            return 0
        _run(go())

    @app.command("list")
    def list_(config: ConfigOpt = None, timeseries: TsOpt = None) -> None:
        """Symbols, time ranges and row counts."""
        async def go() -> int:
            from jts.storage.timeseries import open_timeseries
            ts = await open_timeseries(timeseries or load(config).timeseries)
            try:
                rows = await ts.list_series()
            finally:
                await ts.close()
            typer.echo(f"{'symbol':<12} {'tf':<4} {'first (UTC)':<30} {'last (UTC)':<30} rows")
            for r in rows:
                typer.echo(f"{r.symbol:<12} {r.timeframe:<4} {iso_utc(r.first_ns):<30} "
                           f"{iso_utc(r.last_ns):<30} {r.rows}")
            return 0
        _run(go())

    return app
