"""Parser tests on recorded-format frames and bodies; config validation and secrets."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path

import pytest

from brokers.kis import parse, wire
from brokers.kis.config import KisAccountConfig, parse_kis_config
from brokers.kis.simulator.wsserver import aes_encrypt
from jts.errors import (
    AuthError,
    BrokerError,
    ConfigError,
    DataError,
    OrderOutcomeUnknown,
    OrderRejected,
    RateLimited,
    TransientError,
)
from jts.types import Side

TRADE = ("005930^093354^71900^5^-100^-0.14^72023.83^72100^72400^71700^71900^71800^1^3052507"
         "^219853241700^5105^6937^1832^84.90^1366314^1159996^1^0.39^20.28^090020^5^-200"
         "^090820^5^-500^092619^2^200^20260310^20^N^65945^216924^1118750^2013000^0.05"
         "^2799316^109.05^0^^71900")
KEY, IV = "k" * 32, "i" * 16


def test_multi_record_trade_frame() -> None:
    enc, tr, n, payload = parse.split_frame(f"0|H0STCNT0|002|{TRADE}^{TRADE}")
    assert (enc, tr, n) == (False, wire.WS_TRADE, 2)
    ticks = parse.trades(payload, n, recv_ns=7)
    assert len(ticks) == 2 and ticks[0].symbol == "005930"
    assert ticks[0].price == 71900.0 and ticks[0].volume == 1.0 and ticks[0].recv_ns == 7
    assert parse.kst_day(ticks[0].ts_ns) == "20260310"


@pytest.mark.parametrize("frame", ["", "0|H0STCNT0", "x|H0STCNT0|001|a", "0|H0STCNT0|abc|a"])
def test_malformed_frame_headers(frame: str) -> None:
    with pytest.raises(DataError):
        parse.split_frame(frame)


def test_truncated_trade_record() -> None:
    with pytest.raises(DataError, match="46"):
        parse.trades(TRADE.rsplit("^", 3)[0], 1, 0)


def test_notice_decrypts_and_parses() -> None:
    fields = ["tester", "5000000001", "0000000007", "", "02", "0", "01", "0", "005930", "10",
              "71900", "093501", "0", "2", "2", "00950", "10", "NAME", "0", "1", "N", "", "10",
              "", "삼성전자", "0"]
    text = parse.decrypt(KEY, IV, aes_encrypt(KEY, IV, "^".join(fields)))
    n = parse.notice(text)
    assert n.is_fill and n.side is Side.BUY and n.quantity == Decimal(10)
    assert n.price == Decimal(71900) and n.order_no == "0000000007" and not n.refused


@pytest.mark.parametrize("blob", ["@@@", aes_encrypt("x" * 32, IV, "hello")[:-4] + "AAA=",
                                  aes_encrypt("x" * 32, IV, "hello")])
def test_undecryptable_notice(blob: str) -> None:
    with pytest.raises(DataError):
        parse.notice(parse.decrypt(KEY, IV, blob))


@pytest.mark.parametrize(("status", "body", "order", "kind"), [
    (500, {"rt_cd": "1", "msg_cd": "EGW00201", "msg1": "초당"}, False, RateLimited),
    (200, {"rt_cd": "1", "msg_cd": "EGW00201", "msg1": "초당"}, True, RateLimited),
    (500, {"rt_cd": "1", "msg_cd": "EGW00123", "msg1": "만료"}, False, AuthError),
    (403, {"error_code": "EGW00133", "error_description": "1분당"}, False, RateLimited),
    (500, {"rt_cd": "1", "msg_cd": "EGW02004", "msg1": "mix"}, True, AuthError),
    (200, {"rt_cd": "1", "msg_cd": "APBK0952", "msg1": "cash"}, True, OrderRejected),
    (502, None, True, OrderOutcomeUnknown),
    (502, None, False, TransientError),
    (404, None, False, BrokerError),
])
def test_error_mapping_by_code(status: int, body: dict[str, str] | None, order: bool,
                               kind: type[BrokerError]) -> None:
    err = parse.error_for(status, body, "<html>oops</html>", order=order)
    assert type(err) is kind


def test_rest_rows() -> None:
    pos = parse.positions([{"pdno": "005930", "hldg_qty": "12", "pchs_avg_pric": "70500.5"},
                           {"pdno": "000660", "hldg_qty": "0", "pchs_avg_pric": "0"}], "main")
    assert [(p.symbol, p.quantity, p.avg_price) for p in pos] == [
        ("005930", Decimal(12), Decimal("70500.5"))]
    assert parse.cash([{"prvs_rcdl_excc_amt": "1234567"}]) == Decimal(1234567)
    with pytest.raises(DataError, match="stck_prpr"):
        parse.quote("005930", {"stck_prpr": "12a"})


def test_config_defaults_and_errors() -> None:
    cfg = parse_kis_config({"accounts": {"a": {"domain": "real"}}})
    acct = cfg.account()[1]
    assert acct.rest_base == wire.REST_HOSTS["real"] and acct.requests_per_second == 20
    assert KisAccountConfig().requests_per_second == 2
    with pytest.raises(ConfigError, match=r"brokers\.kis\.accounts\.a\.domain"):
        parse_kis_config({"accounts": {"a": {"domain": "paper"}}}, file="jts.toml")
    with pytest.raises(ConfigError, match="app_secret"):
        parse_kis_config({"accounts": {"a": {"app_secret": "literal!"}}})
    with pytest.raises(ConfigError, match="kis:NAME"):
        parse_kis_config({"accounts": {"a": {}, "b": {}}}).account()


def test_credentials_from_env_only() -> None:
    acct = KisAccountConfig()
    env = {"KIS_APP_KEY": "k", "KIS_APP_SECRET": "s", "KIS_ACCOUNT": "12345678-01"}
    creds = acct.credentials(env)
    assert creds.cano == "12345678" and creds.prdt == "01" and "s" not in repr(creds)[-8:]
    with pytest.raises(ConfigError, match="KIS_APP_SECRET"):
        acct.credentials({**env, "KIS_APP_SECRET": ""})
    with pytest.raises(ConfigError, match="12345678-01"):
        acct.credentials({**env, "KIS_ACCOUNT": "1234"})


def test_example_config_parses() -> None:
    raw = tomllib.loads(Path("config/kis.example.toml").read_text())
    name, acct = parse_kis_config(raw["brokers"]["kis"]).account()
    assert name == "main" and acct.domain == "virtual"
