"""Fixtures for the storage contract suites: real PostgreSQL and Redis on loopback.

PostgreSQL: one database ``jts_test_<random>`` per session, one schema per test, dropped after.
Redis: one key prefix per test, deleted after. If a server cannot be reached the tests FAIL
with the reason, unless ``JTS_TEST_NO_SERVERS=1`` (then they skip, and the summary says so).
MongoDB and remote ClickHouse suites run only when ``JTS_TEST_MONGODB_URL`` /
``JTS_TEST_CLICKHOUSE_URL`` are set; the terminal summary says plainly when they did not run.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

PG_ADMIN = os.environ.get("JTS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("JTS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NO_SERVERS = os.environ.get("JTS_TEST_NO_SERVERS") == "1"
NOT_RUN: dict[str, str] = {}


def _server_down(name: str, url: str, exc: BaseException) -> None:
    reason = f"{name} at {url} unreachable: {type(exc).__name__}: {exc}"
    if NO_SERVERS:
        NOT_RUN[name] = f"skipped (JTS_TEST_NO_SERVERS=1): {reason}"
        pytest.skip(reason)
    pytest.fail(f"{reason} — start it (see /work/shared/design/SERVICES.md) "
                "or set JTS_TEST_NO_SERVERS=1 to skip server suites", pytrace=False)


def _base(url: str, db: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + db


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """URL of a fresh database for this session (dropped at the end)."""
    import asyncpg
    name = f"jts_test_{secrets.token_hex(4)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()
    try:
        asyncio.run(admin(f"CREATE DATABASE {name}"))
    except Exception as exc:  # unreachable or refused
        _server_down("PostgreSQL", PG_ADMIN, exc)
    yield _base(PG_ADMIN, name)
    asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
async def pg_url(pg_database: str) -> AsyncIterator[str]:
    """A URL whose search_path is a schema of its own (dropped after the test)."""
    import asyncpg
    schema = f"t_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(pg_database)
    await conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{pg_database}?search_path={schema}"
    await conn.execute(f"DROP SCHEMA {schema} CASCADE")
    await conn.close()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    import redis
    prefix = f"jts_test_{secrets.token_hex(4)}:"
    client: Any = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5)
    try:
        client.ping()
    except Exception as exc:
        client.close()
        _server_down("Redis", REDIS_URL, exc)
    yield prefix
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def redis_url(redis_prefix: str) -> str:
    return f"{REDIS_URL}?prefix={redis_prefix}"


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ledger.sqlite3"
    return str(request.getfixturevalue("pg_url"))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    notes = dict(NOT_RUN)
    if not os.environ.get("JTS_TEST_MONGODB_URL"):
        notes["MongoDB documents suite"] = "NOT RUN (set JTS_TEST_MONGODB_URL)"
    if not os.environ.get("JTS_TEST_CLICKHOUSE_URL"):
        notes["remote ClickHouse suite"] = "NOT RUN (set JTS_TEST_CLICKHOUSE_URL)"
    if notes:
        terminalreporter.section("storage: server suites that did not run")
        for name, why in notes.items():
            terminalreporter.write_line(f"{name}: {why}")


@pytest.fixture(scope="session")
def chdb_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One embedded ClickHouse engine per process: every test shares this directory and
    keeps to its own symbols."""
    return f"chdb:///{tmp_path_factory.mktemp('chdb')}"


@pytest.fixture
def sym() -> str:
    """A symbol prefix unique to this test."""
    return f"S{secrets.token_hex(3).upper()}"
