"""Ledger bad input: wrong URLs, unreachable servers, corrupt files, un-migrated schemas."""

from __future__ import annotations

from pathlib import Path

import pytest

from jts.errors import StorageError
from jts.storage.ledger import open_ledger


async def test_unsupported_scheme_names_store_and_url() -> None:
    with pytest.raises(StorageError, match=r"ledger store: unsupported URL 'mysql://u:\*\*\*@h/db'"):
        await open_ledger("mysql://u:pw@h/db")


async def test_unreachable_postgres_is_one_clear_error_with_password_redacted() -> None:
    with pytest.raises(StorageError) as info:
        await open_ledger("postgresql://jts:s3cret@127.0.0.1:1/jts")
    msg = str(info.value)
    assert "ledger store postgresql://jts:***@127.0.0.1:1/jts: cannot connect" in msg
    assert "s3cret" not in msg


async def test_corrupt_sqlite_is_reported_and_not_recreated(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    path.write_bytes(b"this is not a database at all" * 100)
    before = path.read_bytes()
    with pytest.raises(StorageError, match="not an SQLite database"):
        await open_ledger(f"sqlite:///{path}")
    assert path.read_bytes() == before


async def test_damaged_sqlite_pages_are_detected(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    led = await open_ledger(f"sqlite:///{path}")
    for i in range(200):
        await led.audit("e", {"i": i, "pad": "x" * 200})
    await led.close()
    data = bytearray(path.read_bytes())
    for off in range(4096 + 100, len(data), 4096):   # scribble over every page after the first
        data[off:off + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    with pytest.raises(StorageError, match="ledger store"):
        led = await open_ledger(f"sqlite:///{path}")
        await led.verify()


async def test_unmigrated_postgres_asks_for_jts_db_migrate(pg_url: str) -> None:
    with pytest.raises(StorageError, match=r"schema version 0.*run `jts db migrate`"):
        await open_ledger(pg_url)


async def test_file_url_with_host_is_rejected() -> None:
    with pytest.raises(StorageError, match="takes no host"):
        await open_ledger("sqlite://somehost/x.db")
