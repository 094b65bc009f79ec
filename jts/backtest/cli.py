"""CLI commands ``jts backtest``, ``jts optimize`` and ``jts reports`` as plain functions the
lead registers on the top-level Typer app::

    app.command("backtest")(backtest_cmd)
    app.command("optimize")(optimize_cmd)
    app.command("reports")(reports_cmd)

Exit status: 0 ok, 2 bad input (one ``jts: error: ...`` line on stderr), 1 runtime failure.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer

from jts.errors import ConfigError, DataError, DSLError, JTSError

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="jts.toml to read")]
StrategyArg = Annotated[Path, typer.Argument(help="strategy TOML file")]
SymbolsOpt = Annotated[str | None, typer.Option("--symbols", help="A,B,… (default: universe)")]
FromOpt = Annotated[str | None, typer.Option("--from", help="first KST day, YYYY-MM-DD")]
ToOpt = Annotated[str | None, typer.Option("--to", help="last KST day, YYYY-MM-DD")]
TfOpt = Annotated[str | None, typer.Option("--timeframe", help="1m, 5m, 1d, … (default: strategy)")]
CashOpt = Annotated[float, typer.Option("--cash", help="initial cash")]
FillOpt = Annotated[str, typer.Option("--fill", help="next_open | close | next_vwap")]
VenueOpt = Annotated[str, typer.Option("--venue", help="fee schedule: krx, upbit, binance")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON object")]
ReportOpt = Annotated[Path | None, typer.Option("--report", help="write HTML (or .json) here")]
SlipOpt = Annotated[float | None, typer.Option("--slippage-bps", help="default: [costs]")]
ImpactOpt = Annotated[float, typer.Option("--impact-bps", help="× sqrt(qty / bar volume)")]
CapOpt = Annotated[float, typer.Option("--participation-cap", help="max share of bar volume")]
ShortOpt = Annotated[bool, typer.Option("--short", help="entries open shorts (crypto)")]
StoreOpt = Annotated[bool, typer.Option("--store/--no-store", help="save in the documents store")]
KindOpt = Annotated[str | None, typer.Option("--kind", help="backtest | optimization")]
NameOpt = Annotated[str | None, typer.Option("--name", help="strategy name")]
ShowOpt = Annotated[str | None, typer.Option("--show", help="print one report's JSON")]
HtmlOpt = Annotated[Path | None, typer.Option("--html", help="with --show: write its HTML")]


class _BadInput(Exception):
    pass


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"jts: error: {message}", err=True)
    raise typer.Exit(code)


def guarded(fn: Callable[[], None]) -> None:
    """Run a command body; map errors to one stderr line and the exit status."""
    from jts.backtest.data import InputError
    try:
        fn()
    except typer.Exit:
        raise
    except (InputError, ConfigError, DSLError, _BadInput) as exc:
        fail(str(exc).replace("\n", " | ") if isinstance(exc, DSLError) else str(exc), 2)
    except (ValueError, msgspec.ValidationError) as exc:
        fail(str(exc), 2)
    except (DataError, JTSError) as exc:
        fail(str(exc), 1)
    except KeyboardInterrupt:
        fail("interrupted", 1)
    except Exception as exc:  # a bug: still one line, never a traceback
        fail(f"internal error: {type(exc).__name__}: {exc}", 1)


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def _symbols(arg: str | None, universe: object) -> list[str]:
    if arg:
        syms = [s.strip() for s in arg.split(",") if s.strip()]
        if not syms:
            raise _BadInput("--symbols: empty list")
        return list(dict.fromkeys(syms))
    if isinstance(universe, tuple) and universe:
        return list(universe)
    raise _BadInput(f"the strategy's universe is {universe!r}: pass --symbols A,B,…")


def _settings(cash: float, fill: str, venue: str, slippage_bps: float | None,
              impact_bps: float, participation_cap: float, short: bool) -> Any:
    from jts.backtest.engine import FILLS, Settings
    if fill not in FILLS:
        raise _BadInput(f"--fill must be one of {', '.join(FILLS)}, got {fill!r}")
    return Settings(initial_cash=cash, fill=fill, venue=venue,  # type: ignore[arg-type]
                    slippage_bps=slippage_bps, impact_bps=impact_bps,
                    participation_cap=participation_cap, direction="short" if short else "long")


async def _store(url: str, kind: str, name: str, doc: dict[str, Any]) -> str:
    from jts.storage.documents import normalize, open_documents
    docs = await open_documents(url)
    try:
        rep = await docs.store_report(kind, name, normalize(doc))
    finally:
        await docs.close()
    return rep.id


def _print_summary(doc: dict[str, Any]) -> None:
    m = doc["metrics"]
    pct = {"total_return", "annualized_return", "volatility", "max_drawdown", "win_rate",
           "exposure"}
    keys = ("final_equity", "total_return", "annualized_return", "volatility", "sharpe",
            "sortino", "calmar", "max_drawdown", "max_drawdown_days", "trade_count",
            "win_rate", "profit_factor", "expectancy", "exposure", "turnover", "fees_paid",
            "slippage_paid")
    typer.echo(f"{doc['strategy']['name']}  {', '.join(doc['symbols'][:10])}  "
               f"{doc['timeframe']}  {doc['from']} → {doc['to']}  ({doc['bars']:,} bars)")
    for k in keys:
        v = m.get(k)
        if v is None:
            s = "–"
        elif k in pct:
            s = f"{v * 100:,.2f} %"
        elif isinstance(v, float):
            s = f"{v:,.2f}"
        else:
            s = f"{v:,}"
        typer.echo(f"  {k:<20} {s:>18}")
    if doc.get("gaps"):
        typer.echo(f"  data gaps            {len(doc['gaps']):>18}  (listed in the report)")
    if doc.get("report_id"):
        typer.echo(f"  report               {doc['report_id']:>18}")


def backtest_cmd(strategy: StrategyArg, symbols: SymbolsOpt = None, from_: FromOpt = None,
                 to: ToOpt = None, timeframe: TfOpt = None,
                 json_out: JsonOpt = False, report: ReportOpt = None,
                 cash: CashOpt = 100_000_000.0, fill: FillOpt = "next_open",
                 venue: VenueOpt = "krx", slippage_bps: SlipOpt = None,
                 impact_bps: ImpactOpt = 0.0, participation_cap: CapOpt = 0.0,
                 short: ShortOpt = False, store: StoreOpt = True,
                 config: ConfigOpt = None) -> None:
    """Backtest a strategy over stored bars."""
    def body() -> None:
        from jts.backtest.data import day_range, find_gaps, load_bars
        from jts.backtest.engine import run_backtest
        from jts.backtest.report import build, render_html
        from jts.config import load_config
        from jts.strategy import load_strategy
        cfg = load_config(config)
        cs = load_strategy(strategy)
        syms = _symbols(symbols, cs.universe)
        tf = timeframe or cs.timeframe
        st = _settings(cash, fill, venue, slippage_bps, impact_bps, participation_cap, short)
        lo, hi = day_range(from_, to)
        bars = run(load_bars(cfg.storage_url("timeseries"), syms, lo, hi, tf, cs.warmup_bars))
        gaps = find_gaps(bars)
        if gaps:
            typer.echo(f"jts: warning: {len(gaps)} data gap(s), not filled; first: "
                       f"{gaps[0].symbol} after {gaps[0].as_dict()['after']}", err=True)
        res = run_backtest(cs, bars, cfg.costs, st)
        doc = build(res, strategy=strategy_info(cs), gaps=[g.as_dict() for g in gaps],
                    close=bars.close, crypto=cfg.costs.fees(venue).kind == "crypto")
        if store:
            doc["report_id"] = run(_store(cfg.storage_url("documents"), "backtest", cs.name,
                                          doc))
        if report is not None:
            text = json.dumps(doc, indent=1) if report.suffix == ".json" else render_html(doc)
            report.write_text(text, encoding="utf-8")
        if json_out:
            slim = {k: v for k, v in doc.items() if k not in ("equity_curve", "prices")}
            sys.stdout.write(json.dumps(slim) + "\n")
        else:
            _print_summary(doc)
    guarded(body)


def strategy_info(cs: Any) -> dict[str, Any]:
    return {"name": cs.name, "file": str(cs.path), "params": dict(cs.params),
            "timeframe": cs.timeframe, "warmup_bars": cs.warmup_bars,
            "sizing": msgspec.to_builtins(cs.sizing), "stops": msgspec.to_builtins(cs.stops),
            "max_positions": cs.max_positions}


def reports_cmd(kind: KindOpt = None, name: NameOpt = None,
                limit: Annotated[int, typer.Option("--limit")] = 50, show: ShowOpt = None,
                html_out: HtmlOpt = None, config: ConfigOpt = None) -> None:
    """List stored backtest and optimization reports, or show one."""
    def body() -> None:
        from jts.backtest.report import iso, render_html
        from jts.config import load_config
        from jts.storage.documents import open_documents
        cfg = load_config(config)
        if limit < 1:
            raise _BadInput("--limit must be ≥ 1")
        if html_out is not None and show is None:
            raise _BadInput("--html needs --show ID")

        async def go() -> Any:
            docs = await open_documents(cfg.storage_url("documents"))
            try:
                if show is not None:
                    return await docs.get_report(show)
                return await docs.list_reports(kind, name, limit)
            finally:
                await docs.close()
        got = run(go())
        if show is not None:
            if got is None:
                raise _BadInput(f"no report with id {show!r}")
            if html_out is not None:
                if got.kind != "backtest":
                    raise _BadInput(f"report {show} is a {got.kind} report; HTML is for backtests")
                html_out.write_text(render_html(got.data), encoding="utf-8")
                typer.echo(f"wrote {html_out}")
            else:
                sys.stdout.write(json.dumps(got.data) + "\n")
            return
        if not got:
            typer.echo("no reports")
            return
        typer.echo(f"{'id':<28} {'kind':<13} {'name':<20} {'time':<26} summary")
        for r in got:
            m = r.data.get("metrics") or {}
            if r.kind == "backtest":
                tr = m.get("total_return")
                summary = (f"return {tr * 100:.2f} %  trades {m.get('trade_count')}"
                           if tr is not None else "")
            else:
                summary = f"{len(r.data.get('results', []))} results, objective " \
                          f"{r.data.get('objective', '')}"
            typer.echo(f"{r.id:<28} {r.kind:<13} {r.name:<20} {iso(r.ts_ns):<26} {summary}")
    guarded(body)


from jts.backtest.optimize_cli import optimize_cmd  # noqa: E402  (uses the helpers above)

__all__ = ["backtest_cmd", "optimize_cmd", "reports_cmd"]
