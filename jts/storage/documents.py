"""The documents port: strategy versions (every saved revision of a strategy's TOML with its
content hash, author and time; save/load/list/diff) and reports (backtest, optimization and
others: store/list/get).

Backends: :class:`jts.storage.documents_sqlite.SqliteDocuments` (``sqlite:///path``, JSON in
SQLite, the embedded default) and :class:`jts.storage.documents_mongo.MongoDocuments`
(``mongodb://…``, pymongo's asyncio client), chosen by :func:`open_documents`.

Saving a TOML whose content hash equals the latest version's returns that version instead of
creating a duplicate revision.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from typing import Any, Protocol

import msgspec

from jts.clock import Clock
from jts.storage.urls import scheme_of


class StrategyVersion(msgspec.Struct, frozen=True):
    name: str
    version: int
    toml: str
    content_hash: str
    author: str
    ts_ns: int
    message: str = ""


class Report(msgspec.Struct, frozen=True):
    id: str
    kind: str                   # "backtest", "optimization", …
    name: str                   # usually the strategy name
    ts_ns: int
    data: dict[str, Any]


class Documents(Protocol):
    url: str

    async def close(self) -> None: ...

    async def save_strategy(self, name: str, toml: str, author: str, message: str = "",
                            ts_ns: int | None = None) -> StrategyVersion: ...

    async def load_strategy(self, name: str, version: int | None = None) -> StrategyVersion:
        """The given (default: latest) version; StorageError if there is none."""
        ...

    async def strategy_history(self, name: str) -> list[StrategyVersion]: ...

    async def list_strategies(self) -> list[StrategyVersion]:
        """The latest version of every strategy, by name."""
        ...

    async def diff_strategy(self, name: str, a: int, b: int) -> str: ...

    async def store_report(self, kind: str, name: str, data: dict[str, Any],
                           ts_ns: int | None = None) -> Report: ...

    async def get_report(self, report_id: str) -> Report | None: ...

    async def list_reports(self, kind: str | None = None, name: str | None = None,
                           limit: int = 100) -> list[Report]:
        """Newest first."""
        ...


def content_hash(toml: str) -> str:
    """sha256 of the TOML text with line endings normalized."""
    return hashlib.sha256(toml.replace("\r\n", "\n").encode()).hexdigest()


def unified_diff(a: StrategyVersion, b: StrategyVersion) -> str:
    return "".join(difflib.unified_diff(
        a.toml.splitlines(keepends=True), b.toml.splitlines(keepends=True),
        fromfile=f"{a.name} v{a.version}", tofile=f"{b.name} v{b.version}"))


def normalize(data: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe copy of a report (Decimals and other objects become strings)."""
    out: dict[str, Any] = json.loads(json.dumps(data, default=str))
    return out


async def open_documents(url: str, *, clock: Clock | None = None) -> Documents:
    scheme = scheme_of(url, "documents", ("sqlite", "mongodb", "mongodb+srv"))
    if scheme == "sqlite":
        from jts.storage.documents_sqlite import SqliteDocuments
        return await SqliteDocuments.open(url, clock)
    from jts.storage.documents_mongo import MongoDocuments
    return await MongoDocuments.open(url, clock)
