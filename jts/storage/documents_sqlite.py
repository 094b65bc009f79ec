"""Documents on SQLite (the embedded default): strategy versions and JSON reports in one file,
accessed from one worker thread."""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from jts.clock import Clock, LiveClock
from jts.errors import StorageError
from jts.storage.documents import (
    Report,
    StrategyVersion,
    content_hash,
    normalize,
    unified_diff,
)
from jts.storage.urls import file_path, redact

T = TypeVar("T")
_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS strategy_versions (name TEXT NOT NULL, version INTEGER NOT NULL,
       toml TEXT NOT NULL, content_hash TEXT NOT NULL, author TEXT NOT NULL,
       ts_ns INTEGER NOT NULL, message TEXT NOT NULL, PRIMARY KEY (name, version))""",
    """CREATE TABLE IF NOT EXISTS reports (id TEXT PRIMARY KEY, kind TEXT NOT NULL,
       name TEXT NOT NULL, ts_ns INTEGER NOT NULL, data TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS reports_kind_ts ON reports (kind, ts_ns)",
]
_SV = "SELECT name, version, toml, content_hash, author, ts_ns, message FROM strategy_versions"


class SqliteDocuments:
    def __init__(self, url: str, clock: Clock, conn: sqlite3.Connection,
                 pool: ThreadPoolExecutor) -> None:
        self.url = url
        self.clock = clock
        self._conn = conn
        self._pool = pool

    @classmethod
    async def open(cls, url: str, clock: Clock | None) -> SqliteDocuments:
        path = file_path(url, "documents")
        pool = ThreadPoolExecutor(1, thread_name_prefix="jts-docs")

        def connect() -> sqlite3.Connection:
            if str(path) != ":memory:":
                path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            try:
                if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                    raise sqlite3.DatabaseError("integrity check failed")
                conn.execute("PRAGMA journal_mode=WAL")
                for stmt in _SCHEMA:
                    conn.execute(stmt)
            except sqlite3.DatabaseError as exc:
                conn.close()
                raise StorageError(f"documents store {redact(url)}: {path} is corrupt or not "
                                   f"a documents database ({exc}); refusing to recreate it"
                                   ) from None
            return conn
        try:
            conn = await asyncio.get_running_loop().run_in_executor(pool, connect)
        except OSError as exc:
            pool.shutdown()
            raise StorageError(f"documents store {redact(url)}: {exc}") from None
        except BaseException:
            pool.shutdown()
            raise
        return cls(url, clock or LiveClock(), conn, pool)

    async def _run(self, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn)
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"documents store {redact(self.url)}: {exc}") from exc

    async def close(self) -> None:
        await self._run(self._conn.close)
        self._pool.shutdown()

    async def save_strategy(self, name: str, toml: str, author: str, message: str = "",
                            ts_ns: int | None = None) -> StrategyVersion:
        ts = self.clock.now_ns() if ts_ns is None else ts_ns
        digest = content_hash(toml)

        def run() -> StrategyVersion:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                row = c.execute(f"{_SV} WHERE name = ? ORDER BY version DESC LIMIT 1",
                                (name,)).fetchone()
                if row is not None and row[3] == digest:
                    c.execute("COMMIT")
                    return StrategyVersion(*row)
                sv = StrategyVersion(name, (row[1] if row else 0) + 1, toml, digest, author, ts,
                                     message)
                c.execute("INSERT INTO strategy_versions VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (sv.name, sv.version, sv.toml, sv.content_hash, sv.author, sv.ts_ns,
                           sv.message))
            except BaseException:
                c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")
            return sv
        return await self._run(run)

    async def _versions(self, sql: str, args: tuple[Any, ...]) -> list[StrategyVersion]:
        rows = await self._run(lambda: self._conn.execute(sql, args).fetchall())
        return [StrategyVersion(*r) for r in rows]

    async def load_strategy(self, name: str, version: int | None = None) -> StrategyVersion:
        if version is None:
            got = await self._versions(f"{_SV} WHERE name = ? ORDER BY version DESC LIMIT 1",
                                       (name,))
        else:
            got = await self._versions(f"{_SV} WHERE name = ? AND version = ?", (name, version))
        if not got:
            which = "any version" if version is None else f"version {version}"
            raise StorageError(f"documents store: strategy {name!r} has no {which}")
        return got[0]

    async def strategy_history(self, name: str) -> list[StrategyVersion]:
        return await self._versions(f"{_SV} WHERE name = ? ORDER BY version", (name,))

    async def list_strategies(self) -> list[StrategyVersion]:
        return await self._versions(
            f"{_SV} s WHERE version = (SELECT max(version) FROM strategy_versions "
            "WHERE name = s.name) ORDER BY name", ())

    async def diff_strategy(self, name: str, a: int, b: int) -> str:
        return unified_diff(await self.load_strategy(name, a), await self.load_strategy(name, b))

    async def store_report(self, kind: str, name: str, data: dict[str, Any],
                           ts_ns: int | None = None) -> Report:
        rep = Report(secrets.token_hex(8), kind, name,
                     self.clock.now_ns() if ts_ns is None else ts_ns, normalize(data))
        await self._run(lambda: self._conn.execute(
            "INSERT INTO reports VALUES (?, ?, ?, ?, ?)",
            (rep.id, rep.kind, rep.name, rep.ts_ns, json.dumps(rep.data))))
        return rep

    async def _reports(self, sql: str, args: tuple[Any, ...]) -> list[Report]:
        rows = await self._run(lambda: self._conn.execute(sql, args).fetchall())
        return [Report(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    async def get_report(self, report_id: str) -> Report | None:
        got = await self._reports("SELECT * FROM reports WHERE id = ?", (report_id,))
        return got[0] if got else None

    async def list_reports(self, kind: str | None = None, name: str | None = None,
                           limit: int = 100) -> list[Report]:
        return await self._reports(
            "SELECT * FROM reports WHERE (? IS NULL OR kind = ?) AND (? IS NULL OR name = ?) "
            "ORDER BY ts_ns DESC, rowid DESC LIMIT ?", (kind, kind, name, name, limit))
