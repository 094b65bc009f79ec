"""The [alerts] table: defaults, strict decoding with file/key/line errors, secrets by
environment-variable name only."""

from __future__ import annotations

from pathlib import Path

import pytest

from jts.alerts import KINDS, AlertsConfig, Notifier
from jts.config import load_config
from jts.errors import ConfigError
from jts.log import redact_text


def _load(tmp_path: Path, text: str) -> AlertsConfig:
    p = tmp_path / "jts.toml"
    p.write_text(text, encoding="utf-8")
    return load_config(p).alerts


def _error(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as ei:
        _load(tmp_path, text)
    return ei.value


def test_defaults() -> None:
    cfg = AlertsConfig()
    assert cfg.enabled and cfg.enabled_sinks() == ["dashboard"]
    assert all(cfg.rules.get(k).enabled for k in KINDS)
    assert cfg.rules.get("daily_loss").severity == "critical"
    assert cfg.rules.get("surge_candidate").sinks == ["dashboard"]
    assert cfg.rules.get("no_such_kind") is cfg.rules.other


def test_full_file(tmp_path: Path) -> None:
    cfg = _load(tmp_path, """
[alerts]
daily_loss_threshold = 2000000

[alerts.rules.fill]
sinks = ["dashboard", "telegram"]

[alerts.rules.surge_candidate]
enabled = false

[alerts.telegram]
enabled = true
bot_token_env = "TG_TOKEN"
chat_id = "-100123"
max_per_minute = 10

[alerts.email]
enabled = true
host = "smtp.example.com"
from_addr = "jts@example.com"
to = ["me@example.com"]
min_severity = "critical"
""")
    assert cfg.enabled_sinks() == ["dashboard", "telegram", "email"]
    assert cfg.rules.fill.sinks == ["dashboard", "telegram"]
    assert not cfg.rules.surge_candidate.enabled
    assert cfg.telegram.max_per_minute == 10 and cfg.email.min_severity == "critical"


@pytest.mark.parametrize(("text", "key", "line", "words"), [
    ("[alerts.rules.fils]\nenabled = true\n", "alerts.rules.fils", 1, "unknown key"),
    ('[alerts.rules.fill]\nsinks = ["dashbord"]\n', "alerts.rules.fill", 1,
     "expected one of 'dashboard', 'telegram', 'webhook', 'email'"),
    ('[alerts.telegram]\nbot_token = "123:abc"\n', "alerts.telegram.bot_token", 2,
     "bot_token_env"),
    ('[alerts.rules.fill]\nseverity = "loud"\n', "alerts.rules.fill.severity", 2,
     "'info', 'warning', 'critical'"),
    ("[alerts.webhook]\nenabled = true\n", "alerts.webhook", 1, "url is required"),
    ('[alerts.webhook]\nurl = "ftp://x"\nenabled = true\n', "alerts.webhook", 1,
     "http:// or https://"),
    ('[alerts.webhook]\nheaders = { Authorization = "Bearer x" }\n', "alerts.webhook", 1,
     "auth_env"),
    ('[alerts.email]\nto = ["nobody"]\n', "alerts.email", 1, "not an email address"),
    ("[alerts.telegram]\nmax_per_minute = -1\n", "alerts.telegram.max_per_minute", 2, ">= 0"),
])
def test_bad_input_names_key_and_line(tmp_path: Path, text: str, key: str,
                                      line: int | None, words: str) -> None:
    err = _error(tmp_path, text)
    assert err.key == key and words in err.message
    if line is not None:
        assert err.line == line
    assert str(tmp_path / "jts.toml") in str(err)


def test_missing_secret_env_names_the_key(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    monkeypatch.delenv("JTS_TEST_NOT_SET", raising=False)
    cfg = _load(tmp_path, """
[alerts.telegram]
enabled = true
bot_token_env = "JTS_TEST_NOT_SET"
chat_id = "1"
""")
    with pytest.raises(ConfigError) as ei:
        Notifier(cfg, config_file="jts.toml")
    assert ei.value.key == "alerts.telegram.bot_token_env"
    assert "JTS_TEST_NOT_SET is not set" in str(ei.value)


def test_resolved_secrets_are_redacted_from_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    import msgspec

    monkeypatch.setenv("JTS_TEST_HOOK_SECRET", "very-secret-hmac-key")
    cfg = msgspec.convert({"webhook": {"enabled": True, "url": "https://h.example/x",
                                       "secret_env": "JTS_TEST_HOOK_SECRET"}}, AlertsConfig)
    n = Notifier(cfg)
    assert set(n.workers) == {"dashboard", "webhook"}
    assert redact_text("key=very-secret-hmac-key") == "key=***"
