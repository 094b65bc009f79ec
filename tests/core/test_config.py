"""jts.toml decoding: every kind of bad config gives one clear message naming file, key, line."""

from __future__ import annotations

from pathlib import Path

import pytest

from jts.config import Config, key_line, load_config, redact_url, resolve_secret
from jts.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "jts.toml"
    p.write_text(text, encoding="utf-8")
    return p


def error_of(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as ei:
        load_config(write(tmp_path, text))
    return ei.value


def test_defaults_when_empty(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, ""))
    assert cfg.daemon.mode == "paper"
    assert cfg.state_dir == tmp_path / "state"
    assert cfg.socket_path == tmp_path / "state" / "jts.sock"


def test_order_journal_lives_in_the_state_dir(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, ""))
    assert cfg.journal_path == tmp_path / "state" / "orders.wal"
    assert cfg.orders.journal_sync is True
    cfg = load_config(write(tmp_path, "[orders]\njournal = '/srv/wal'\njournal_sync = false\n"))
    assert cfg.journal_path == Path("/srv/wal") and cfg.orders.journal_sync is False


def test_repository_jts_toml_is_valid() -> None:
    cfg = load_config(Path(__file__).parents[2] / "jts.toml")
    assert isinstance(cfg, Config)
    assert cfg.market.feed == "sim"


@pytest.mark.parametrize(("text", "key", "line", "fragment"), [
    # 1 unknown top-level table
    ("[daemon]\nmode = 'paper'\n\n[oops]\nx = 1\n", "oops", 4, "unknown key"),
    # 2 unknown key in a section
    ("[risk]\nmax_open_positions = 3\nmax_open_positionz = 4\n", "risk.max_open_positionz", 3,
     "unknown key"),
    # 3 wrong type
    ("[market]\nsymbols = 'sixty'\n", "market.symbols", 2, "expected int, got str"),
    # 4 out of range (too small)
    ("[market]\nsymbols = 0\n", "market.symbols", 2, ">= 1"),
    # 5 out of range (too large)
    ("[risk]\nprice_band_pct = 45\n", "risk.price_band_pct", 2, "<= 30"),
    # 6 invalid enum value
    ("[daemon]\nmode = 'yolo'\n", "daemon.mode", 2, "'paper', 'live'"),
    # 7 inline secret
    ("[daemon]\napi_key = 'abc123'\n", "daemon.api_key", 2, "api_key_env"),
    # 8 bad date in a list
    ("[calendar]\nextra_holidays = ['2026-13-45']\n", "calendar.extra_holidays[0]", 2,
     "not a valid date"),
    # 9 a store URL without scheme
    ("[storage]\nledger = 'ledger.db'\n", "storage.ledger", 2, "not a store URL"),
    # 10 cross-field inconsistency
    ("[risk]\nmax_position_notional = 9e9\nmax_total_exposure = 1e6\n",
     "risk.max_position_notional", 2, "must not exceed"),
    # 11 a table where a value belongs
    ("[log]\nlevel = { a = 1 }\n", "log.level", 2, "expected str"),
    # 12 negative where positive is needed
    ("[paper]\ninitial_cash = -5\n", "paper.initial_cash", 2, "> 0"),
    # 13 the order journal: a path, never empty; sync is a bool
    ("[orders]\njournal = ''\n", "orders.journal", 2, "length >= 1"),
    ("[orders]\njournal_sync = 'yes'\n", "orders.journal_sync", 2, "expected bool"),
])
def test_bad_config_names_file_key_and_line(tmp_path: Path, text: str, key: str, line: int,
                                            fragment: str) -> None:
    err = error_of(tmp_path, text)
    assert err.key == key
    assert err.line == line
    assert fragment in err.message
    assert str(err).startswith(f"{tmp_path / 'jts.toml'}:{line}: {key}: ")


def test_garbled_toml_reports_line_and_column(tmp_path: Path) -> None:
    err = error_of(tmp_path, "[daemon]\nmode = 'paper'\nstate_dir = \n")
    assert err.line == 3
    assert "invalid TOML" in str(err)
    assert "column" in str(err)


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_not_utf8(tmp_path: Path) -> None:
    p = tmp_path / "jts.toml"
    p.write_bytes(b"[daemon]\nmode = '\xff\xfe'\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(p)


def test_config_is_frozen(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, ""))
    with pytest.raises(AttributeError):
        cfg.daemon.mode = "live"  # type: ignore[misc]


def test_key_line_finds_dotted_and_table_keys() -> None:
    text = "a = 1\n[x]\n# c\ny = 2\n[x.z]\nw = 3\n"
    assert key_line(text, "a") == 1
    assert key_line(text, "x.y") == 4
    assert key_line(text, "x.z") == 5
    assert key_line(text, "x.z.w") == 6
    assert key_line(text, "nope") is None


def test_redact_url_hides_password() -> None:
    assert redact_url("postgresql://jts:s3cret@db:5432/jts") == "postgresql://jts:***@db:5432/jts"
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_resolve_secret_reads_env_and_names_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JTS_TEST_SECRET_X", "value-123")
    assert resolve_secret("JTS_TEST_SECRET_X", key="brokers.kis.app_key_env") == "value-123"
    monkeypatch.delenv("JTS_TEST_SECRET_X")
    with pytest.raises(ConfigError, match="JTS_TEST_SECRET_X is not set"):
        resolve_secret("JTS_TEST_SECRET_X", key="brokers.kis.app_key_env")
