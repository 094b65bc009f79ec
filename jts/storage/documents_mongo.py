"""Documents on MongoDB via pymongo's ``AsyncMongoClient``: collections ``strategy_versions``
(unique on name + version) and ``reports`` (indexed by kind/name and time). Single-node
features only, so it also runs against the SecantusDB test server."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.errors import DuplicateKeyError, PyMongoError

from jts.clock import Clock, LiveClock
from jts.errors import StorageError
from jts.storage.documents import (
    Report,
    StrategyVersion,
    content_hash,
    normalize,
    unified_diff,
)
from jts.storage.urls import redact

_FIELDS = ("name", "version", "toml", "content_hash", "author", "ts_ns", "message")


def _sv(doc: dict[str, Any]) -> StrategyVersion:
    return StrategyVersion(*(doc[f] for f in _FIELDS))


def _rep(doc: dict[str, Any]) -> Report:
    return Report(doc["_id"], doc["kind"], doc["name"], doc["ts_ns"], doc["data"])


class MongoDocuments:
    def __init__(self, url: str, clock: Clock, client: AsyncMongoClient[dict[str, Any]],
                 database: str) -> None:
        self.url = url
        self.clock = clock
        self._client = client
        self._db = client[database]
        self._sv = self._db["strategy_versions"]
        self._rep = self._db["reports"]

    @classmethod
    async def open(cls, url: str, clock: Clock | None) -> MongoDocuments:
        database = urlsplit(url).path.strip("/") or "jts"
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            url, serverSelectionTimeoutMS=5000, tz_aware=True)
        self = cls(url, clock or LiveClock(), client, database)
        try:
            await client.admin.command("ping")
            await self._sv.create_index([("name", ASCENDING), ("version", ASCENDING)],
                                        unique=True)
            await self._rep.create_index([("kind", ASCENDING), ("ts_ns", DESCENDING)])
            await self._rep.create_index([("name", ASCENDING), ("ts_ns", DESCENDING)])
        except PyMongoError as exc:
            await client.close()
            raise StorageError(f"documents store {redact(url)}: cannot connect: "
                               f"{type(exc).__name__}: {exc}") from None
        return self

    async def close(self) -> None:
        await self._client.close()

    async def save_strategy(self, name: str, toml: str, author: str, message: str = "",
                            ts_ns: int | None = None) -> StrategyVersion:
        ts = self.clock.now_ns() if ts_ns is None else ts_ns
        digest = content_hash(toml)
        for _ in range(5):
            last = await self._sv.find_one({"name": name}, sort=[("version", DESCENDING)])
            if last is not None and last["content_hash"] == digest:
                return _sv(last)
            sv = StrategyVersion(name, (last["version"] if last else 0) + 1, toml, digest,
                                 author, ts, message)
            try:
                await self._sv.insert_one({f: getattr(sv, f) for f in _FIELDS})
            except DuplicateKeyError:
                continue                      # a concurrent save took this number: retry
            return sv
        raise StorageError(f"documents store: could not save strategy {name!r} (contention)")

    async def load_strategy(self, name: str, version: int | None = None) -> StrategyVersion:
        query: dict[str, Any] = {"name": name}
        if version is not None:
            query["version"] = version
        doc = await self._sv.find_one(query, sort=[("version", DESCENDING)])
        if doc is None:
            which = "any version" if version is None else f"version {version}"
            raise StorageError(f"documents store: strategy {name!r} has no {which}")
        return _sv(doc)

    async def strategy_history(self, name: str) -> list[StrategyVersion]:
        return [_sv(d) async for d in self._sv.find({"name": name}).sort("version", ASCENDING)]

    async def list_strategies(self) -> list[StrategyVersion]:
        latest: dict[str, StrategyVersion] = {}
        async for d in self._sv.find({}).sort([("name", ASCENDING), ("version", ASCENDING)]):
            latest[d["name"]] = _sv(d)
        return [latest[k] for k in sorted(latest)]

    async def diff_strategy(self, name: str, a: int, b: int) -> str:
        return unified_diff(await self.load_strategy(name, a), await self.load_strategy(name, b))

    async def store_report(self, kind: str, name: str, data: dict[str, Any],
                           ts_ns: int | None = None) -> Report:
        rep = Report(secrets.token_hex(8), kind, name,
                     self.clock.now_ns() if ts_ns is None else ts_ns, normalize(data))
        await self._rep.insert_one({"_id": rep.id, "kind": kind, "name": name,
                                    "ts_ns": rep.ts_ns, "data": rep.data})
        return rep

    async def get_report(self, report_id: str) -> Report | None:
        doc = await self._rep.find_one({"_id": report_id})
        return None if doc is None else _rep(doc)

    async def list_reports(self, kind: str | None = None, name: str | None = None,
                           limit: int = 100) -> list[Report]:
        query: dict[str, Any] = {}
        if kind is not None:
            query["kind"] = kind
        if name is not None:
            query["name"] = name
        cur = self._rep.find(query).sort([("ts_ns", DESCENDING), ("_id", DESCENDING)])
        return [_rep(d) async for d in cur.limit(limit)]
