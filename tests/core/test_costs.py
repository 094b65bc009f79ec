"""Commission, transaction tax by market and date, slippage and the float view."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D
from pathlib import Path

import numpy as np
import pytest

from jts.costs import CostModel, VenueFees, load_tax_table
from jts.errors import ConfigError
from jts.krx import Market
from jts.types import Side

CM = CostModel()


def test_krx_commission_truncates_to_won_with_minimum() -> None:
    assert CM.commission("krx", Side.BUY, D(1_234_567)) == D(185)   # 185.185...
    assert CM.commission("krx", Side.SELL, D(0)) == D(0)
    with_min = CostModel.from_config({"venues": {"krx": {"min_commission": 500}}})
    assert with_min.commission("krx", Side.BUY, D(100_000)) == D(500)
    assert with_min.commission("krx", Side.BUY, D(10_000_000)) == D(1500)


def test_crypto_maker_taker() -> None:
    assert CM.commission("upbit", Side.BUY, D(1_000_000)) == D("500.00000000")
    assert CM.commission("binance", Side.BUY, D(1000), maker=True) == D("1.00000000")
    assert CM.tax("upbit", None, Side.SELL, D(1_000_000), date(2025, 3, 4)) == D(0)


@pytest.mark.parametrize(("market", "trade_day", "rate"), [
    (Market.KOSPI, date(2023, 6, 1), D("0.0020")),
    (Market.KOSDAQ, date(2023, 6, 1), D("0.0020")),
    (Market.KOSPI, date(2024, 6, 3), D("0.0018")),
    (Market.KOSDAQ, date(2024, 6, 3), D("0.0018")),
    (Market.KOSPI, date(2025, 6, 2), D("0.0015")),
    (Market.KOSDAQ, date(2025, 6, 2), D("0.0015")),
    (Market.KOSPI, date(2026, 3, 3), D("0.0020")),
    (Market.KOSDAQ, date(2026, 3, 3), D("0.0020")),
])
def test_sell_tax_by_market_and_year(market: Market, trade_day: date, rate: D) -> None:
    assert CM.tax_rate(market, trade_day).total == rate
    assert CM.tax("krx", market, Side.SELL, D(10_000_000), trade_day) == D(10_000_000) * rate
    assert CM.tax("krx", market, Side.BUY, D(10_000_000), trade_day) == D(0)


def test_tax_follows_settlement_date_across_new_year() -> None:
    # 2025-12-26 settles 12-30 (2025 rate); 12-29 settles 2026-01-02 (Dec 31 and Jan 1 closed)
    assert CM.tax_rate(Market.KOSPI, date(2025, 12, 26)).total == D("0.0015")
    assert CM.tax_rate(Market.KOSPI, date(2025, 12, 29)).total == D("0.0020")
    same_day = CostModel(settlement_days=0)
    assert same_day.tax_rate(Market.KOSPI, date(2025, 12, 29)).total == D("0.0015")


def test_kospi_tax_components_truncate_separately() -> None:
    # 0.05 % of 12,345 = 6.17 -> 6 ; 0.15 % = 18.5 -> 18
    assert CM.tax("krx", "KOSPI", Side.SELL, D(12_345), date(2026, 3, 3)) == D(24)


def test_fill_price_slippage_rounds_adverse() -> None:
    assert CM.fill_price(Side.BUY, D(72000)) == D(72100)        # 72036 -> up
    assert CM.fill_price(Side.SELL, D(72000)) == D(71900)       # 71964 -> down
    assert CM.fill_price(Side.BUY, D(72000), D(0)) == D(72000)
    assert CM.fill_price(Side.BUY, D("50000000.5"), D(0), venue="upbit") == D("50000000.5")


def test_float_view_matches_decimal_model() -> None:
    f = CM.as_floats("krx", Market.KOSDAQ, date(2024, 6, 3))
    assert f.commission_rate == 0.00015 and f.sell_tax_rate == 0.0018
    assert f.slippage_bps == 5.0 and f.tick_rounding
    days, rates = CM.tax_schedule(Market.KOSPI)
    settle = (date(2026, 1, 5) - date(1970, 1, 1)).days
    assert rates[int(np.searchsorted(days, settle, side="right")) - 1] == 0.002


def test_bad_config_names_the_key() -> None:
    with pytest.raises(ConfigError, match="slippage_bps"):
        CostModel.from_config({"slippage_bps": -1}, file="jts.toml")
    with pytest.raises(ConfigError, match=r"commission_rate out of range.*venues"):
        CostModel.from_config({"venues": {"krx": {"commission_rate": 2}}})
    with pytest.raises(ConfigError, match="bogus"):
        CostModel.from_config({"bogus": 1})
    with pytest.raises(ConfigError, match="nasdaq"):
        CM.commission("nasdaq", Side.BUY, D(1))
    with pytest.raises(ValueError):
        VenueFees(taker_rate=D(-1))


def test_bad_tax_file(tmp_path: Path) -> None:
    bad = tmp_path / "tax.toml"
    bad.write_text('[[rate]]\neffective = "2024"\n')
    with pytest.raises(ConfigError, match=r"rate\[0\]\.effective"):
        load_tax_table(str(bad))
    bad.write_text('[[rate]]\neffective = 2024-01-01\nKOSPI = { stt = "x", rural = "0" }\n')
    with pytest.raises(ConfigError, match=r"rate\[0\]\.KOSPI"):
        load_tax_table(str(bad))
    with pytest.raises(ConfigError, match="cannot read"):
        load_tax_table(str(tmp_path / "missing.toml"))


def test_from_flat_config_struct() -> None:
    import msgspec

    class Flat(msgspec.Struct):
        commission_rate: float = 0.0002
        min_commission: float = 10.0
        slippage_bps: float = 2.5

    cm = CostModel.from_config(Flat())
    assert cm.fees("krx").commission_rate == D("0.0002")
    assert cm.fees("krx").min_commission == D(10) and cm.slippage_bps == D("2.5")
    assert "upbit" in cm.venues
