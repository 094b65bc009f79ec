"""``jts optimize``: parameter sweeps (grid/random, optional walk-forward) on stored bars;
prints a sorted table and saves the results (documents store, optional JSON file)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from jts.backtest.cli import (
    CashOpt,
    ConfigOpt,
    FillOpt,
    FromOpt,
    JsonOpt,
    StoreOpt,
    StrategyArg,
    SymbolsOpt,
    TfOpt,
    ToOpt,
    VenueOpt,
    _BadInput,
    _settings,
    _store,
    _symbols,
    guarded,
    run,
)


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.4f}"
    return str(v)


ParamOpt = Annotated[list[str], typer.Option("--param", help="name=lo:hi:step (repeat)")]
MethodOpt = Annotated[str, typer.Option("--method", help="grid | random")]
SamplesOpt = Annotated[int, typer.Option("--samples", help="random: how many sets")]
WfOpt = Annotated[str | None, typer.Option("--walk-forward", help="IS:OOS trading days, 60:20")]
ObjOpt = Annotated[str, typer.Option("--objective", help="sharpe|sortino|calmar|return|…")]
JobsOpt = Annotated[int, typer.Option("--jobs", help="processes (0: all cores)")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="also write results JSON")]


def optimize_cmd(strategy: StrategyArg, param: ParamOpt, method: MethodOpt = "grid",
                 samples: SamplesOpt = 100, seed: Annotated[int, typer.Option("--seed")] = 0,
                 walk_forward: WfOpt = None, objective: ObjOpt = "sharpe",
                 symbols: SymbolsOpt = None, from_: FromOpt = None, to: ToOpt = None,
                 timeframe: TfOpt = None, cash: CashOpt = 100_000_000.0,
                 fill: FillOpt = "next_open", venue: VenueOpt = "krx",
                 jobs: JobsOpt = 0, top: Annotated[int, typer.Option("--top")] = 20,
                 json_out: JsonOpt = False, out: OutOpt = None, store: StoreOpt = True,
                 config: ConfigOpt = None) -> None:
    """Sweep strategy parameters; optionally walk-forward (out-of-sample reported apart)."""
    def body() -> None:
        from jts.backtest.data import day_range, load_bars
        from jts.backtest.optimize import OBJECTIVES, Runner, combos, parse_param, score
        from jts.backtest.optimize import walk_forward as wf
        from jts.backtest.report import iso
        from jts.config import load_config
        from jts.strategy import load_strategy
        if objective not in OBJECTIVES:
            raise _BadInput(f"--objective must be one of {', '.join(OBJECTIVES)}")
        if not param:
            raise _BadInput("give at least one --param name=lo:hi:step")
        cfg = load_config(config)
        cs = load_strategy(strategy)
        specs = [parse_param(p, cs) for p in param]
        sets = combos(specs, method, samples, seed)
        folds_arg: tuple[int, int] | None = None
        if walk_forward is not None:
            try:
                a, b = (int(x) for x in walk_forward.split(":"))
            except ValueError:
                raise _BadInput(f"--walk-forward {walk_forward!r}: expected IS:OOS day counts "
                                "like 60:20") from None
            folds_arg = (a, b)
        syms = _symbols(symbols, cs.universe)
        tf = timeframe or cs.timeframe
        st = _settings(cash, fill, venue, None, 0.0, 0.0, False)
        lo, hi = day_range(from_, to)
        from jts.backtest.optimize import recompile
        warm = max(recompile(cs, s).warmup_bars for s in sets[:1000])
        bars = run(load_bars(cfg.storage_url("timeseries"), syms, lo, hi, tf, warm))
        t0 = time.perf_counter()
        runner = Runner(cs, bars, cfg.costs, st, jobs)
        try:
            n = bars.ts_ns.shape[0]
            results = runner.run(0, n, 0, sets)
            folds = wf(runner, bars.ts_ns, sets, *folds_arg, objective, warm) \
                if folds_arg else []
        finally:
            runner.close()
        elapsed = time.perf_counter() - t0
        results.sort(key=lambda r: score(r, objective), reverse=True)
        doc: dict[str, Any] = {
            "kind": "optimization", "version": 1, "strategy": cs.name, "file": str(strategy),
            "symbols": syms, "timeframe": tf, "from": iso(int(bars.ts_ns[0])),
            "to": iso(int(bars.ts_ns[-1])), "method": method, "objective": objective,
            "params": {s.name: list(s.values) for s in specs}, "evaluated": len(sets),
            "seconds": elapsed, "jobs": runner.jobs, "results": results}
        if folds:
            for f in folds:
                for k in ("is_from", "is_to", "oos_from", "oos_to"):
                    f[k] = iso(f[k])
            oos = [f["out_of_sample"] for f in folds]
            growth = 1.0
            for o in oos:
                growth *= 1.0 + (o["total_return"] or 0.0)
            doc["walk_forward"] = {"in_sample_days": folds_arg[0] if folds_arg else 0,
                                   "out_of_sample_days": folds_arg[1] if folds_arg else 0,
                                   "folds": folds, "out_of_sample_return": growth - 1.0}
        if store:
            doc["report_id"] = run(_store(cfg.storage_url("documents"), "optimization",
                                          cs.name, doc))
        if out is not None:
            out.write_text(json.dumps(doc, indent=1), encoding="utf-8")
        if json_out:
            sys.stdout.write(json.dumps(doc) + "\n")
            return
        names = [s.name for s in specs]
        cols = ["total_return", "sharpe", "max_drawdown", "trade_count", "win_rate"]
        typer.echo(f"{cs.name}: {len(sets)} sets in {elapsed:.2f} s on {runner.jobs} "
                   f"process(es), objective {objective} (in-sample: whole range)")
        typer.echo("  ".join(f"{c:>12}" for c in names + cols))
        for r in results[:top]:
            typer.echo("  ".join(f"{_fmt(x):>12}" for x in
                                 [r["params"][k] for k in names] + [r.get(c) for c in cols]))
        for i, f in enumerate(folds):
            o = f["out_of_sample"]
            key = "total_return" if objective == "return" else objective
            typer.echo(f"fold {i + 1}: {f['params']}  in-sample {objective} "
                       f"{_fmt(f['in_sample'].get(key))}"
                       f"  out-of-sample return {_fmt(o['total_return'])} sharpe "
                       f"{_fmt(o['sharpe'])} ({f['oos_from']} → {f['oos_to']})")
        if folds:
            typer.echo(f"out-of-sample compounded return: "
                       f"{doc['walk_forward']['out_of_sample_return'] * 100:.2f} %")
        if doc.get("report_id"):
            typer.echo(f"saved report {doc['report_id']}")
    guarded(body)
