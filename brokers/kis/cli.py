"""KIS commands for the ``jts`` CLI: ``jts broker ping|balance|orders kis[:ACCOUNT]`` and
``jts sim kis``. The lead's ``jts/cli.py`` mounts :data:`broker_app` as ``broker`` and
:data:`sim_app` as ``sim``; ``python -m brokers.kis.cli`` runs both without it.

The broker commands read the daemon's config (``-c``), take secrets from the environment
variables it names, and keep the access token in the daemon's cache store, so with a
``redis://`` cache they reuse the daemon's token instead of issuing another.
Exit codes as ``jts``: 0 ok, 1 broker failure, 2 bad usage or configuration.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from brokers.kis.broker import KisBroker
from brokers.kis.config import KisAccountConfig
from jts.errors import ConfigError, JTSError

T = TypeVar("T")
EXIT_FAILURE, EXIT_USAGE = 1, 2

broker_app = typer.Typer(help="Ask a broker account directly: ping, balance, orders.",
                         no_args_is_help=True, add_completion=False)
sim_app = typer.Typer(help="Run a broker simulator on loopback.", no_args_is_help=True,
                      add_completion=False)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Path to jts.toml "
                                                "(default: $JTS_CONFIG or ./jts.toml).")]
TargetArg = Annotated[str, typer.Argument(help="kis or kis:ACCOUNT (a [brokers.kis.accounts] "
                                          "name; optional when there is only one).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object.")]


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"jts: error: {message}", err=True)
    raise typer.Exit(code)


def parse_target(target: str) -> str | None:
    """``kis`` → None (the only account), ``kis:NAME`` → NAME."""
    broker, _, account = target.partition(":")
    if broker != "kis":
        raise ConfigError(f"unknown broker {broker!r} in {target!r}; available: kis[:ACCOUNT]")
    if ":" in target and not account:
        raise ConfigError(f"empty account name in {target!r}; use kis:ACCOUNT")
    return account or None


def _open(config: Path | None, target: str) -> tuple[Any, str, KisAccountConfig, KisBroker]:
    from brokers.kis.memory import CacheTokenStore, LazyCache
    from jts.clock import LiveClock
    from jts.config import load_config

    cfg = load_config(config)
    if cfg.brokers.kis is None:
        raise ConfigError("no [brokers.kis.accounts.NAME] in the config",
                          file=cfg.source or None, key="brokers.kis")
    name, acct = cfg.brokers.kis.account(parse_target(target))
    creds = acct.credentials(where=f"brokers.kis.accounts.{name}")
    clock = LiveClock()
    cache = LazyCache(cfg.storage_url("cache"), clock=clock)
    broker = KisBroker(acct, creds, account=name, clock=clock, stream=False,
                       token_store=CacheTokenStore(cache, clock=clock))
    return cache, name, acct, broker


def _run(config: Path | None, target: str, fn: Callable[[KisBroker], Awaitable[T]]
         ) -> tuple[str, KisAccountConfig, T]:
    try:
        cache, name, acct, broker = _open(config, target)
    except ConfigError as e:
        _fail(str(e), EXIT_USAGE)

    async def go() -> T:
        try:
            await broker.connect()
            return await fn(broker)
        finally:
            await broker.close()
            await cache.close()

    try:
        return name, acct, asyncio.run(go())
    except ConfigError as e:
        _fail(str(e), EXIT_USAGE)
    except JTSError as e:
        _fail(f"kis:{name}: {e}", EXIT_FAILURE)


def _won(x: Decimal | float) -> str:
    return f"{x:,.0f}"


@broker_app.command()
def ping(target: TargetArg = "kis", config: ConfigOpt = None,
         symbol: Annotated[str, typer.Option(help="Symbol to quote.")] = "005930",
         as_json: JsonOpt = False) -> None:
    """Check credentials and connectivity: a token (cached or new) and one quote."""
    async def fn(b: KisBroker) -> dict[str, Any]:
        t0 = time.perf_counter()
        q = await b.quote(symbol)
        return {"symbol": q.symbol, "price": q.price, "quote_ms":
                round((time.perf_counter() - t0) * 1000, 1), "token": "issued" if b.auth.issued
                else "cached"}
    name, acct, r = _run(config, target, fn)
    r = {"broker": f"kis:{name}", "domain": acct.domain, "rest": acct.rest_base, **r}
    if as_json:
        typer.echo(json.dumps(r))
        return
    typer.echo(f"kis:{name} ({acct.domain}, {acct.rest_base}) ok: token {r['token']}, "
               f"{r['symbol']} {_won(r['price'])} in {r['quote_ms']} ms")


@broker_app.command()
def balance(target: TargetArg = "kis", config: ConfigOpt = None, as_json: JsonOpt = False
            ) -> None:
    """Cash (after D+2 settlement) and holdings of the account."""
    async def fn(b: KisBroker) -> tuple[Any, Any]:
        return await b.balance(), await b.positions()
    name, acct, (bal, positions) = _run(config, target, fn)
    if as_json:
        typer.echo(json.dumps({"broker": f"kis:{name}", "cash": str(bal.cash), "positions": [
            {"symbol": p.symbol, "quantity": str(p.quantity), "avg_price": str(p.avg_price)}
            for p in positions]}))
        return
    typer.echo(f"kis:{name} ({acct.domain})  cash {_won(bal.cash)}")
    if not positions:
        typer.echo("  no holdings")
    for p in positions:
        typer.echo(f"  {p.symbol:<8} {p.quantity:>10,.0f} @ {_won(p.avg_price)}")


@broker_app.command()
def orders(target: TargetArg = "kis", config: ConfigOpt = None, as_json: JsonOpt = False
           ) -> None:
    """Today's orders of the account, as KIS reports them."""
    name, acct, rows = _run(config, target, lambda b: b.today_orders())
    if as_json:
        typer.echo(json.dumps({"broker": f"kis:{name}", "orders": [
            {"odno": r.order_no, "orig_odno": r.orig_order_no, "time": r.hhmmss,
             "symbol": r.symbol, "side": r.side.value, "quantity": str(r.quantity),
             "price": str(r.price), "filled": str(r.filled), "avg_price": str(r.avg_price),
             "remaining": str(r.remaining), "cancelled": str(r.cancelled)} for r in rows]}))
        return
    typer.echo(f"kis:{name} ({acct.domain})  {len(rows)} orders today")
    for r in rows:
        typer.echo(f"  {r.hhmmss} {r.order_no} {r.side.value:<4} {r.symbol:<8} "
                   f"{r.quantity:>8,.0f} @ {_won(r.price) if r.price else 'market':>9}  "
                   f"filled {r.filled:,.0f}  open {r.remaining:,.0f}")


@sim_app.command("kis")
def sim_kis(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port).")] = 29443,
    domain: Annotated[str, typer.Option(help="real or virtual.")] = "virtual",
    app_key: Annotated[str, typer.Option(envvar="KIS_APP_KEY")] = "SIMAPPKEY",
    app_secret: Annotated[str, typer.Option(envvar="KIS_APP_SECRET")] = "SIMAPPSECRET",
    account: Annotated[str, typer.Option(envvar="KIS_ACCOUNT", help="CANO-ACNT_PRDT_CD"
                                         )] = "50000000-01",
    hts_id: Annotated[str, typer.Option(envvar="KIS_HTS_ID")] = "simuser",
    cash: Annotated[int, typer.Option(help="Opening cash (won).")] = 10_000_000,
    symbols: Annotated[str, typer.Option(help="Comma-separated codes, or a count as in "
                                         "paper mode.")] = "",
    seed: Annotated[int, typer.Option()] = 7,
    speed: Annotated[float, typer.Option(help="Market seconds per wall second.")] = 1.0,
    rate_limit: Annotated[int, typer.Option(help="Requests/s per app key (0: the domain's "
                                            "default).")] = 0,
) -> None:
    """Serve the offline KIS simulator (REST + WebSocket) until interrupted."""
    from brokers.kis.simulator import KisSimulator, SimSettings
    from brokers.kis.simulator.market import DEFAULT_SYMBOLS
    from jts.clock import LiveClock, ScaledClock

    if domain not in ("real", "virtual"):
        _fail(f"--domain must be real or virtual, got {domain!r}", EXIT_USAGE)
    if speed <= 0:
        _fail("--speed must be positive", EXIT_USAGE)
    syms: tuple[str, ...] | int = DEFAULT_SYMBOLS
    if symbols.strip().isdigit():
        syms = int(symbols)
    elif symbols.strip():
        syms = tuple(s.strip() for s in symbols.split(",") if s.strip())
    clock = LiveClock() if speed == 1.0 else ScaledClock(time.time_ns(), speed)
    try:
        sim = KisSimulator(SimSettings(domain=domain, rate_limit=rate_limit or None,  # type: ignore[arg-type]
                                       seed=seed, symbols=syms), clock=clock)
        sim.add_app(app_key, app_secret, account=account, hts_id=hts_id, cash=Decimal(cash))
    except JTSError as e:
        _fail(str(e), EXIT_USAGE)

    async def main() -> None:
        runner, bound = await sim.serve(host, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        typer.echo(f"KIS simulator ({domain}) listening rest_url=http://{host}:{bound} "
                   f"ws_url=ws://{host}:{bound}/tryitout account={account} hts_id={hts_id} "
                   f"symbols={len(sim.venue.market.quotes)} speed={speed}")
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(main())
    except OSError as e:
        _fail(f"cannot listen on {host}:{port}: {e.strerror or e}", EXIT_FAILURE)


main_app = typer.Typer(help="KIS commands (mounted by jts as `jts broker` and `jts sim`).",
                       no_args_is_help=True, add_completion=False)
main_app.add_typer(broker_app, name="broker")
main_app.add_typer(sim_app, name="sim")

if __name__ == "__main__":
    from jts.log import setup_logging

    setup_logging(level="info", console=True)
    main_app()
