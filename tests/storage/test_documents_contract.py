"""Documents contract on SQLite (always) and MongoDB (when JTS_TEST_MONGODB_URL is set; CI
starts SecantusDB for it)."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from jts.clock import FakeClock
from jts.errors import StorageError
from jts.storage.documents import Documents, content_hash, open_documents

MONGO = os.environ.get("JTS_TEST_MONGODB_URL")
T0 = 1_700_000_000_000_000_000
V1 = '[strategy]\nname = "gap"\nentry = "close > ma(close, 20)"\n'
V2 = '[strategy]\nname = "gap"\nentry = "close > ma(close, 60)"\n'


@pytest.fixture(params=["sqlite"] + (["mongodb"] if MONGO else []))
async def docs(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Documents]:
    if request.param == "sqlite":
        d = await open_documents(f"sqlite:///{tmp_path}/docs.sqlite3", clock=FakeClock(T0))
        yield d
        await d.close()
        return
    from pymongo import AsyncMongoClient
    db = f"jts_test_{secrets.token_hex(4)}"
    base, _, query = str(MONGO).partition("?")
    url = base.rstrip("/") + f"/{db}" + (f"?{query}" if query else "")
    d = await open_documents(url, clock=FakeClock(T0))
    yield d
    await d.close()
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(str(MONGO))
    await client.drop_database(db)
    await client.close()


async def test_save_load_versions_and_dedupe(docs: Documents) -> None:
    v1 = await docs.save_strategy("gap", V1, "kim", "first", ts_ns=T0)
    assert (v1.version, v1.content_hash, v1.author) == (1, content_hash(V1), "kim")
    assert await docs.save_strategy("gap", V1, "lee") == v1          # same content: no new rev
    v2 = await docs.save_strategy("gap", V2, "lee", "slower ma", ts_ns=T0 + 1)
    assert v2.version == 2
    assert await docs.load_strategy("gap") == v2
    assert await docs.load_strategy("gap", 1) == v1
    assert [v.version for v in await docs.strategy_history("gap")] == [1, 2]
    await docs.save_strategy("abc", V1, "kim")
    assert [(v.name, v.version) for v in await docs.list_strategies()] == [("abc", 1), ("gap", 2)]


async def test_diff(docs: Documents) -> None:
    await docs.save_strategy("gap", V1, "kim")
    await docs.save_strategy("gap", V2, "kim")
    diff = await docs.diff_strategy("gap", 1, 2)
    assert "--- gap v1" in diff and "+++ gap v2" in diff
    assert '-entry = "close > ma(close, 20)"' in diff and '+entry = "close > ma(close, 60)"' in diff


async def test_missing_strategy_is_a_clear_error(docs: Documents) -> None:
    with pytest.raises(StorageError, match="strategy 'nope' has no any version"):
        await docs.load_strategy("nope")
    await docs.save_strategy("gap", V1, "kim")
    with pytest.raises(StorageError, match="has no version 7"):
        await docs.load_strategy("gap", 7)


async def test_reports_store_get_list(docs: Documents) -> None:
    r1 = await docs.store_report("backtest", "gap", {"sharpe": 1.2, "pnl": Decimal("10.5")},
                                 ts_ns=T0)
    r2 = await docs.store_report("optimization", "gap", {"best": {"n": 20}}, ts_ns=T0 + 1)
    r3 = await docs.store_report("backtest", "other", {"sharpe": 0.1}, ts_ns=T0 + 2)
    got = await docs.get_report(r1.id)
    assert got == r1 and got.data == {"sharpe": 1.2, "pnl": "10.5"}
    assert await docs.get_report("missing") is None
    assert [r.id for r in await docs.list_reports()] == [r3.id, r2.id, r1.id]
    assert [r.id for r in await docs.list_reports(kind="backtest")] == [r3.id, r1.id]
    assert [r.id for r in await docs.list_reports(name="gap", limit=1)] == [r2.id]


async def test_bad_documents_urls(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="documents store: unsupported URL"):
        await open_documents("couchdb://x")
    bad = tmp_path / "docs.sqlite3"
    bad.write_bytes(b"garbage" * 1000)
    with pytest.raises(StorageError, match="corrupt"):
        await open_documents(f"sqlite:///{bad}")
    assert bad.read_bytes() == b"garbage" * 1000


@pytest.mark.skipif(not MONGO, reason="JTS_TEST_MONGODB_URL not set")
async def test_unreachable_mongodb_is_one_clear_error() -> None:
    with pytest.raises(StorageError, match=r"documents store mongodb://u:\*\*\*@127.0.0.1:1/"):
        await open_documents("mongodb://u:pw@127.0.0.1:1/jts?serverSelectionTimeoutMS=200")
