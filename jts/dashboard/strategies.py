"""Strategy editing for the dashboard: live validation (DSL errors with line and column),
parameter edits, versions in the documents store (save, list, diff) and backtests.

Validation compiles the edited text exactly as the daemon would (``load_strategy`` on a
scratch copy in the state directory) in a worker thread, so the event loop stays free.
Saving stores a new version in the documents store; the files in ``strategies/`` that the
daemon loads at start are not touched (see docs/dashboard.md).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from jts.errors import ConfigError, DSLError, JTSError, StorageError
from jts.storage.documents import Documents, StrategyVersion

log = structlog.get_logger(__name__)
NAME = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
MAX_TEXT = 100_000
BACKTEST_SYMBOLS = 20


def _backtest_sync(scratch: Path, name: str, text: str, symbols: str | None,
                   config_path: str) -> dict[str, Any]:
    """``jts backtest`` as the backtest package defines it, writing its JSON report to a
    scratch file; its one-line error (stderr) becomes a BadRequest."""
    import contextlib
    import io

    import typer

    from jts.backtest.cli import backtest_cmd

    scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(dir=scratch) as d:
        f = Path(d) / f"{name}.toml"
        f.write_text(text, encoding="utf-8")
        out = Path(d) / "report.json"
        err, sink = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(sink):
                backtest_cmd(strategy=f, symbols=symbols, report=out,
                             config=Path(config_path) if config_path else None)
        except typer.Exit as exc:
            if exc.exit_code:
                lines = [ln.removeprefix("jts: error: ") for ln in err.getvalue().splitlines()
                         if ln.strip()]
                raise BadRequest("backtest failed: " + (lines[-1] if lines else
                                                        f"exit code {exc.exit_code}")) from None
        try:
            doc = json.loads(out.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise BadRequest("backtest wrote no report") from None
    return doc if isinstance(doc, dict) else {"result": doc}


class BadRequest(JTSError):
    """Input the dashboard refuses (HTTP 400) with a message for the user."""


class NotAvailable(JTSError):
    """A feature this build cannot provide (HTTP 501)."""


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise BadRequest("strategy name must be 1-64 letters, digits, '_' or '-'")
    return name


def check_text(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise BadRequest("strategy text is empty")
    if len(text) > MAX_TEXT:
        raise BadRequest(f"strategy text is longer than {MAX_TEXT} characters")
    return text


def _error_dict(e: Exception) -> dict[str, Any]:
    line = getattr(e, "line", None)
    col = getattr(e, "col", None)
    msg = getattr(e, "message", None) or str(e)
    d: dict[str, Any] = {"line": line, "col": col, "message": str(msg),
                         "kind": getattr(e, "kind", "config" if isinstance(e, ConfigError)
                                         else "error")}
    if isinstance(e, ConfigError) and e.key:
        d["key"] = e.key
    hint = getattr(e, "hint", "")
    if hint:
        d["hint"] = hint
    text = getattr(e, "line_text", None)
    if text is not None:
        d["source"] = text
    return d


def _validate_sync(scratch: Path, name: str, text: str) -> dict[str, Any]:
    from jts.strategy import load_strategy

    scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(dir=scratch) as d:
        f = Path(d) / f"{name}.toml"
        f.write_text(text, encoding="utf-8")
        try:
            cs = load_strategy(f)
        except (ConfigError, DSLError) as e:
            err = _error_dict(e)
            return {"ok": False, "errors": [err], "warnings": []}
    strip = str(f) + ": "
    return {"ok": True, "errors": [], "warnings": [w.replace(strip, "") for w in cs.warnings],
            "summary": {"name": cs.name, "timeframe": cs.timeframe,
                        "universe": cs.universe if isinstance(cs.universe, str)
                        else list(cs.universe),
                        "params": dict(cs.params),
                        "param_ranges": {k: {"min": r.min, "max": r.max, "step": r.step}
                                         for k, r in cs.param_ranges.items()},
                        "indicators": cs.indicators, "warmup_bars": cs.warmup_bars}}


_PARAM_LINE = re.compile(r"^(\s*)([A-Za-z_][A-Za-z0-9_]*)(\s*=\s*)(.*?)(\s*(#.*)?)$")
_DEFAULT = re.compile(r"(default\s*=\s*)(-?[0-9.eE+_-]+)")
_TABLE = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]")


def set_params(text: str, values: dict[str, Any]) -> str:
    """Rewrite the values of ``[params]`` entries (plain numbers or the ``default`` of an
    inline range table), keeping comments and layout. Unknown names raise BadRequest."""
    for k, v in values.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
            raise BadRequest(f"parameter {k!r} must be a number")
    todo = dict(values)
    out, table = [], ""
    for raw in text.splitlines(keepends=True):
        m = _TABLE.match(raw)
        if m:
            table = m.group(1)
        elif table == "params":
            pm = _PARAM_LINE.match(raw.rstrip("\r\n"))
            if pm and pm.group(2) in todo:
                v = todo.pop(pm.group(2))
                num = repr(int(v)) if float(v).is_integer() else repr(float(v))
                val = pm.group(4)
                if val.lstrip().startswith("{"):
                    dm = _DEFAULT.search(val)
                    if dm is None:
                        raise BadRequest(f"parameter {pm.group(2)!r} has no default to set")
                    val = val[:dm.start(2)] + num + val[dm.end(2):]
                else:
                    val = num
                eol = raw[len(raw.rstrip("\r\n")):]
                raw = f"{pm.group(1)}{pm.group(2)}{pm.group(3)}{val}{pm.group(5)}{eol}"
        out.append(raw)
    if todo:
        raise BadRequest(f"unknown parameter(s): {', '.join(sorted(todo))}")
    return "".join(out)


def version_dict(v: StrategyVersion, with_text: bool = False) -> dict[str, Any]:
    d: dict[str, Any] = {"name": v.name, "version": v.version, "hash": v.content_hash[:12],
                         "author": v.author, "ts": v.ts_ns // 1_000_000, "message": v.message}
    if with_text:
        d["text"] = v.toml
    return d


class StrategyService:
    def __init__(self, strategies_dir: Path, scratch_dir: Path, docs: Documents | None,
                 config_path: str = "",
                 symbols: Callable[[], list[str]] = lambda: []) -> None:
        self.symbols = symbols
        self._bt_lock = asyncio.Lock()
        self.dir = strategies_dir
        self.scratch = scratch_dir
        self.docs = docs
        self.config_path = config_path

    async def validate(self, name: str, text: str) -> dict[str, Any]:
        return await asyncio.to_thread(_validate_sync, self.scratch, check_name(name),
                                       check_text(text))

    def _files(self) -> dict[str, Path]:
        return {f.stem: f for f in sorted(self.dir.glob("*.toml"))} if self.dir.is_dir() else {}

    async def list_all(self) -> list[dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {n: {"name": n, "file": str(f), "version": None}
                                           for n, f in self._files().items()}
        if self.docs is not None:
            for v in await self.docs.list_strategies():
                out.setdefault(v.name, {"name": v.name, "file": None})["version"] = v.version
        return sorted(out.values(), key=lambda d: str(d["name"]))

    async def get(self, name: str) -> dict[str, Any]:
        check_name(name)
        if self.docs is not None:
            try:
                v = await self.docs.load_strategy(name)
                return {"name": name, "version": v.version, "text": v.toml, "source": "store"}
            except StorageError:
                pass
        f = self._files().get(name)
        if f is None:
            raise BadRequest(f"no strategy named {name!r}")
        return {"name": name, "version": None, "text": f.read_text(encoding="utf-8"),
                "source": "file"}

    def _need_docs(self) -> Documents:
        if self.docs is None:
            raise NotAvailable("the documents store is not available")
        return self.docs

    async def save(self, name: str, text: str, message: str, author: str) -> dict[str, Any]:
        result = await self.validate(name, text)
        if not result["ok"]:
            return result
        v = await self._need_docs().save_strategy(name, text, author, message[:500])
        log.info("strategy_version_saved", strategy=name, version=v.version, author=author)
        return {**result, "version": version_dict(v)}

    async def versions(self, name: str) -> list[dict[str, Any]]:
        return [version_dict(v) for v in
                await self._need_docs().strategy_history(check_name(name))]

    async def version(self, name: str, version: int) -> dict[str, Any]:
        try:
            v = await self._need_docs().load_strategy(check_name(name), version)
        except StorageError as e:
            raise BadRequest(str(e)) from None
        return version_dict(v, with_text=True)

    async def diff(self, name: str, a: int, b: int) -> str:
        try:
            return await self._need_docs().diff_strategy(check_name(name), a, b)
        except StorageError as e:
            raise BadRequest(str(e)) from None

    # --- backtests -----------------------------------------------------------------------
    @staticmethod
    def backtest_available() -> bool:
        return importlib.util.find_spec("jts.backtest") is not None

    async def backtest(self, name: str, text: str) -> dict[str, Any]:
        """Run ``jts backtest FILE`` (``jts.backtest.cli.backtest_cmd``) in a worker thread of
        the daemon (so it shares the daemon's embedded time-series engine) over the stored
        bars; the backtest package stores the report, whose id is returned."""
        if not self.backtest_available():
            raise NotAvailable("backtests are not available in this build (jts.backtest is "
                               "not installed)")
        check = await self.validate(name, text)
        if not check["ok"]:
            return check
        syms: str | None = None
        universe = check["summary"]["universe"]
        if isinstance(universe, str):
            chosen = self.symbols()[:BACKTEST_SYMBOLS]
            if not chosen:
                raise BadRequest(f"universe {universe!r}: no symbols to backtest")
            syms = ",".join(chosen)
        async with self._bt_lock:
            doc = await asyncio.to_thread(_backtest_sync, self.scratch, name, text, syms,
                                          self.config_path)
        report_id = doc.get("report_id")
        if not report_id:
            report_id = (await self._need_docs().store_report("backtest", name, doc)).id
        log.info("backtest_report_stored", strategy=name, report=report_id)
        return {"ok": True, "report_id": report_id}

    async def reports(self) -> list[dict[str, Any]]:
        return [{"id": r.id, "kind": r.kind, "name": r.name, "ts": r.ts_ns // 1_000_000}
                for r in await self._need_docs().list_reports(limit=50)]

    async def report(self, report_id: str) -> dict[str, Any]:
        r = await self._need_docs().get_report(report_id)
        if r is None:
            raise BadRequest(f"no report {report_id!r}")
        return {"id": r.id, "kind": r.kind, "name": r.name, "ts": r.ts_ns // 1_000_000,
                "data": r.data}
