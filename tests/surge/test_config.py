"""SurgeConfig: defaults, TOML decoding, range and cross-field errors naming the key."""

from __future__ import annotations

import tomllib

import msgspec
import pytest

from jts.errors import ConfigError
from jts.surge import SurgeConfig, SurgeDetector, load_config


def test_defaults_are_valid_and_frozen() -> None:
    cfg = SurgeConfig()
    assert cfg.volume_z_min == 4.0 and cfg.session == "krx" and cfg.require_price_move
    with pytest.raises(AttributeError):
        cfg.volume_z_min = 1.0  # type: ignore[misc]
    det = SurgeDetector(["005930"], cfg)
    assert det.ring == 1_200 // 5 + 2 and det.n_buckets == 391


def test_toml_table_decodes() -> None:
    doc = tomllib.loads("""
[surge]
session = "virtual"
volume_z_min = 3.5
velocity_window_s = 60
cooldown_s = 120
direction = "up"
""")
    cfg = load_config(doc["surge"], file="jts.toml")
    assert (cfg.session, cfg.volume_z_min, cfg.velocity_window_s, cfg.cooldown_s,
            cfg.direction) == ("virtual", 3.5, 60, 120, "up")
    assert SurgeDetector(["A"], cfg).n_buckets == 391


@pytest.mark.parametrize(("table", "key", "text"), [
    ({"volume_z_min": -1.0}, "surge.volume_z_min", ">"),
    ({"volume_z_min": "high"}, "surge.volume_z_min", "Expected `float`"),
    ({"slot_s": 0}, "surge.slot_s", ">= 1"),
    ({"imbalance_min": 1.5}, "surge.imbalance_min", "<= 1"),
    ({"session": "nyse"}, "surge.session", "krx"),
    ({"direction": "sideways"}, "surge.direction", "both"),
    ({"volume_z": 3.0}, "surge", "volume_z"),
])
def test_bad_values_name_the_key(table: dict[str, object], key: str, text: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(table, file="jts.toml")
    assert e.value.key == key and e.value.file == "jts.toml"
    assert text in str(e.value) and str(e.value).startswith("jts.toml: surge")


@pytest.mark.parametrize(("table", "text"), [
    ({"slot_s": 7}, "volume_window_s must be a multiple of slot_s"),
    ({"breakout_window_s": 60, "breakout_skip_s": 60}, "breakout_skip_s must be shorter"),
    ({"slot_s": 60, "volume_window_s": 60, "velocity_window_s": 60, "breakout_window_s": 600,
      "breakout_skip_s": 60}, "at least two slots"),
])
def test_cross_field_checks(table: dict[str, object], text: str) -> None:
    with pytest.raises(ConfigError, match=text):
        load_config(table)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(table, SurgeConfig)
