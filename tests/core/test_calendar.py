"""KRX calendar: holidays, sessions, special days, configuration; the crypto calendar."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from jts.calendar import (
    CalendarConfig,
    CryptoCalendar,
    KrxCalendar,
    Phase,
    kst_date,
    load_holidays,
)
from jts.clock import from_datetime
from jts.errors import ConfigError

CAL = KrxCalendar()


def ts(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> int:
    return from_datetime(datetime(y, mo, d, h, mi))    # naive = KST


@pytest.mark.parametrize("d", [
    date(2024, 2, 12), date(2024, 4, 10), date(2024, 10, 1), date(2024, 12, 31),
    date(2025, 1, 27), date(2025, 3, 3), date(2025, 5, 6), date(2025, 6, 3), date(2025, 10, 8),
    date(2026, 2, 17), date(2026, 5, 25), date(2026, 6, 3), date(2026, 8, 17),
    date(2026, 10, 5), date(2027, 2, 9), date(2027, 12, 27), date(2027, 12, 31),
    date(2024, 5, 1), date(2025, 5, 1), date(2026, 5, 1)])
def test_known_closures(d: date) -> None:
    assert not CAL.is_trading_day(d)


@pytest.mark.parametrize("d", [date(2024, 1, 2), date(2025, 1, 31), date(2025, 10, 10),
                               date(2026, 9, 28), date(2027, 5, 14)])
def test_ordinary_weekdays_trade(d: date) -> None:
    assert CAL.is_trading_day(d)


def test_weekends_closed_even_outside_data() -> None:
    assert not CAL.is_trading_day(date(2026, 3, 7))
    assert not CAL.is_trading_day(date(2031, 3, 8))
    assert CAL.is_trading_day(date(2031, 3, 10))      # uncovered year: weekdays trade
    assert not CAL.covers(date(2031, 3, 10))


def test_holiday_file_lists_weekdays_only_and_four_years() -> None:
    data = load_holidays()
    assert data.years == (2024, 2025, 2026, 2027)
    assert all(d.weekday() < 5 for d in data.holidays)
    for year in data.years:
        assert date(year, 1, 1) in data.holidays or date(year, 1, 1).weekday() >= 5


@pytest.mark.parametrize(("h", "m", "phase"), [
    (8, 29, Phase.CLOSED), (8, 30, Phase.PRE_OPEN_AUCTION), (8, 59, Phase.PRE_OPEN_AUCTION),
    (9, 0, Phase.CONTINUOUS), (15, 19, Phase.CONTINUOUS), (15, 20, Phase.CLOSING_AUCTION),
    (15, 30, Phase.CLOSED), (15, 40, Phase.AFTER_HOURS_CLOSE),
    (16, 0, Phase.AFTER_HOURS_SINGLE), (17, 59, Phase.AFTER_HOURS_SINGLE), (18, 0, Phase.CLOSED),
    (23, 0, Phase.CLOSED)])
def test_regular_day_phases(h: int, m: int, phase: Phase) -> None:
    assert CAL.session_at(ts(2025, 6, 10, h, m)) is phase


def test_holiday_is_closed_all_day() -> None:
    assert CAL.session_at(ts(2025, 6, 3, 10, 0)) is Phase.CLOSED


def test_first_trading_day_opens_at_ten() -> None:
    for d in (date(2024, 1, 2), date(2025, 1, 2), date(2026, 1, 2), date(2027, 1, 4)):
        assert CAL.session_at(ts(d.year, d.month, d.day, 9, 30)) is Phase.PRE_OPEN_AUCTION
        assert CAL.session_at(ts(d.year, d.month, d.day, 10, 0)) is Phase.CONTINUOUS
        assert CAL.session_at(ts(d.year, d.month, d.day, 15, 25)) is Phase.CLOSING_AUCTION
    assert CAL.session_at(ts(2026, 1, 5, 9, 30)) is Phase.CONTINUOUS   # second day normal
    assert KrxCalendar(first_day_late_open=False).session_at(
        ts(2026, 1, 2, 9, 30)) is Phase.CONTINUOUS


def test_csat_day_shifts_by_an_hour() -> None:
    assert CAL.session_at(ts(2025, 11, 13, 9, 45)) is Phase.PRE_OPEN_AUCTION
    assert CAL.session_at(ts(2025, 11, 13, 16, 0)) is Phase.CONTINUOUS
    assert CAL.session_at(ts(2025, 11, 13, 16, 25)) is Phase.CLOSING_AUCTION
    assert CAL.session_at(ts(2025, 11, 13, 16, 45)) is Phase.AFTER_HOURS_CLOSE
    assert CAL.session_at(ts(2025, 11, 13, 17, 30)) is Phase.AFTER_HOURS_SINGLE
    assert CAL.session_at(ts(2025, 11, 13, 18, 0)) is Phase.CLOSED


def test_next_open() -> None:
    assert CAL.next_open(ts(2025, 6, 10, 8, 0)) == ts(2025, 6, 10, 9, 0)
    assert CAL.next_open(ts(2025, 6, 10, 9, 0)) == ts(2025, 6, 10, 9, 0)
    assert CAL.next_open(ts(2025, 6, 10, 9, 1)) == ts(2025, 6, 11, 9, 0)
    # Friday evening before Chuseok 2025 (Oct 3 Fri .. Oct 9 Thu closed) -> Oct 10
    assert CAL.next_open(ts(2025, 10, 2, 16, 0)) == ts(2025, 10, 10, 9, 0)
    # new year: Dec 30 evening -> Jan 2 at 10:00
    assert CAL.next_open(ts(2025, 12, 30, 16, 0)) == ts(2026, 1, 2, 10, 0)
    assert CAL.next_close(ts(2025, 6, 10, 12, 0)) == ts(2025, 6, 10, 15, 30)


def test_trading_days_and_settlement() -> None:
    days = CAL.trading_days(date(2025, 9, 29), date(2025, 10, 12))
    assert days == [date(2025, 9, 29), date(2025, 9, 30), date(2025, 10, 1), date(2025, 10, 2),
                    date(2025, 10, 10)]
    assert CAL.add_trading_days(date(2025, 10, 2), 2) == date(2025, 10, 13)
    assert CAL.add_trading_days(date(2025, 10, 4), 0) == date(2025, 10, 4)
    assert len(CAL.trading_days(date(2025, 1, 1), date(2025, 12, 31))) == 242


def test_configured_overrides() -> None:
    cfg = CalendarConfig(extra_holidays=[date(2025, 6, 10)], open_days=[date(2025, 6, 3)],
                         csat_days=[date(2025, 6, 11)])
    cal = KrxCalendar(cfg)
    assert not cal.is_trading_day(date(2025, 6, 10))
    assert cal.is_trading_day(date(2025, 6, 3))
    assert cal.session_at(ts(2025, 6, 11, 16, 0)) is Phase.CONTINUOUS
    with pytest.raises(ConfigError, match="special day kind"):
        KrxCalendar(special_days={date(2025, 6, 11): "party"})


def test_bad_holiday_file(tmp_path: Path) -> None:
    p = tmp_path / "h.toml"
    p.write_text('[[holiday]]\ndate = "2025-01-01"\n')
    with pytest.raises(ConfigError, match=r"h.toml: holiday\[0\]\.date"):
        KrxCalendar(CalendarConfig(holiday_file=str(p)))
    p.write_text("[[special]]\ndate = 2025-01-02\nkind = 'nap'\n")
    with pytest.raises(ConfigError, match=r"special\[0\]\.kind"):
        load_holidays(str(p))
    p.write_text("[[holiday\n")
    with pytest.raises(ConfigError, match=r"h\.toml"):
        load_holidays(str(p))


def test_kst_date_boundary() -> None:
    # 2025-06-10 23:59 KST is 14:59 UTC; 00:00 KST next day is 15:00 UTC the same UTC day
    assert kst_date(ts(2025, 6, 10, 23, 59)) == date(2025, 6, 10)
    assert kst_date(ts(2025, 6, 11, 0, 0)) == date(2025, 6, 11)


def test_crypto_calendar_is_always_open() -> None:
    c = CryptoCalendar()
    t = ts(2025, 1, 1, 3, 0)
    assert c.is_trading_day(date(2025, 1, 1)) and c.session_at(t) is Phase.CONTINUOUS
    assert c.next_open(t) == t
    assert len(c.trading_days(date(2025, 1, 1), date(2025, 1, 31))) == 31
