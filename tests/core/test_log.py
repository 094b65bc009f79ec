"""Logging: JSON lines in the file, secrets redacted, stdlib loggers routed, rotation."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import structlog

from jts.errors import ConfigError
from jts.log import register_secret, setup_logging


def lines(p: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in p.read_text().splitlines()]


def test_json_lines_with_fields_and_redaction(tmp_path: Path) -> None:
    f = tmp_path / "logs" / "jts.log"
    setup_logging(log_file=f, console=False)
    register_secret("PSK-very-secret-value")
    structlog.get_logger("t").info("order_submitted", symbol="005930", qty=3,
                                   app_secret="abc", note="key PSK-very-secret-value here",
                                   dsn="postgresql://u:pw@h/db", app_key_env="KIS_APP_KEY")
    (ev,) = lines(f)
    assert ev["event"] == "order_submitted" and ev["level"] == "info"
    assert str(ev["ts"]).endswith("Z") and "T" in str(ev["ts"])
    assert ev["symbol"] == "005930" and ev["qty"] == 3
    assert ev["app_secret"] == "***"
    assert ev["note"] == "key *** here"
    assert ev["dsn"] == "postgresql://u:***@h/db"
    assert ev["app_key_env"] == "KIS_APP_KEY"           # the variable's name is not a secret
    assert "PSK-very-secret-value" not in f.read_text()


@pytest.mark.parametrize("name", ["aiohttp.access", "asyncpg", "ccxt.base", "rpyc"])
def test_foreign_stdlib_loggers_are_json_and_redacted(tmp_path: Path, name: str) -> None:
    f = tmp_path / "jts.log"
    setup_logging(log_file=f, console=False)
    register_secret("TOKEN-xyz-123")
    logging.getLogger(name).warning("request with TOKEN-xyz-123")
    (ev,) = lines(f)
    assert ev["logger"] == name and ev["level"] == "warning"
    assert ev["event"] == "request with ***"


def test_size_based_rotation(tmp_path: Path) -> None:
    f = tmp_path / "jts.log"
    setup_logging(log_file=f, console=False, max_bytes=10_000, backups=2)
    log = structlog.get_logger("t")
    for i in range(500):
        log.info("filler", i=i, pad="x" * 50)
    assert f.exists() and (tmp_path / "jts.log.1").exists()
    assert not (tmp_path / "jts.log.3").exists()
    assert f.stat().st_size <= 10_000


def test_unwritable_log_dir_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="log directory is not writable"):
        setup_logging(log_file=blocker / "logs" / "jts.log", console=False)
