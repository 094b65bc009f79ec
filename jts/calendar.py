"""Trading calendars: KRX sessions, auctions and holidays (from ``jts/data/krx_holidays.toml``
plus configured extras and overrides), and a 24/7 crypto calendar with the same interface.

KST has no daylight saving, so a timestamp's KST date and time of day are plain integer
arithmetic (no datetime objects on the hot path of ``session_at``).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

import msgspec
import structlog

from jts.datafiles import load_data_toml
from jts.errors import ConfigError

log = structlog.get_logger(__name__)

NS = 1_000_000_000
DAY_NS = 86_400 * NS
KST_OFFSET_NS = 9 * 3_600 * NS
_EPOCH_ORD = date(1970, 1, 1).toordinal()


class Phase(enum.StrEnum):
    CLOSED = "closed"
    PRE_OPEN_AUCTION = "pre_open_auction"        # 08:30-09:00 orders collected, single price
    CONTINUOUS = "continuous"                    # 09:00-15:20
    CLOSING_AUCTION = "closing_auction"          # 15:20-15:30 single price
    AFTER_HOURS_CLOSE = "after_hours_close"      # 15:40-16:00 trades at the closing price
    AFTER_HOURS_SINGLE = "after_hours_single"    # 16:00-18:00 single price every 10 minutes

    @property
    def is_regular(self) -> bool:
        """Inside the regular session including its opening and closing auctions."""
        return self in (Phase.PRE_OPEN_AUCTION, Phase.CONTINUOUS, Phase.CLOSING_AUCTION)

    @property
    def accepts_orders(self) -> bool:
        return self is not Phase.CLOSED


def _hm(h: int, m: int) -> int:
    return (h * 3_600 + m * 60) * NS


@dataclass(frozen=True)
class SessionHours:
    """One day's schedule as nanoseconds after KST midnight."""

    pre_open: int
    open: int
    closing_auction: int
    close: int
    after_close: int
    after_single: int
    after_end: int

    def phase(self, tod_ns: int) -> Phase:
        if tod_ns < self.pre_open:
            return Phase.CLOSED
        if tod_ns < self.open:
            return Phase.PRE_OPEN_AUCTION
        if tod_ns < self.closing_auction:
            return Phase.CONTINUOUS
        if tod_ns < self.close:
            return Phase.CLOSING_AUCTION
        if tod_ns < self.after_close:
            return Phase.CLOSED
        if tod_ns < self.after_single:
            return Phase.AFTER_HOURS_CLOSE
        if tod_ns < self.after_end:
            return Phase.AFTER_HOURS_SINGLE
        return Phase.CLOSED


NORMAL = SessionHours(_hm(8, 30), _hm(9, 0), _hm(15, 20), _hm(15, 30), _hm(15, 40),
                      _hm(16, 0), _hm(18, 0))
# First trading day of the year: the opening ceremony delays the open by an hour; the
# close and the after-hours sessions are unchanged.
LATE_OPEN = SessionHours(_hm(9, 30), _hm(10, 0), _hm(15, 20), _hm(15, 30), _hm(15, 40),
                         _hm(16, 0), _hm(18, 0))
# CSAT day: everything one hour later, except that the single-price session still ends 18:00.
CSAT = SessionHours(_hm(9, 30), _hm(10, 0), _hm(16, 20), _hm(16, 30), _hm(16, 40),
                    _hm(17, 0), _hm(18, 0))
SPECIAL_KINDS: dict[str, SessionHours] = {"late_open": LATE_OPEN, "csat": CSAT}


def kst_date(ts_ns: int) -> date:
    return date.fromordinal(_EPOCH_ORD + (ts_ns + KST_OFFSET_NS) // DAY_NS)


def kst_midnight_ns(d: date) -> int:
    return (d.toordinal() - _EPOCH_ORD) * DAY_NS - KST_OFFSET_NS


class CalendarConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The ``[calendar]`` table of jts.toml: additions to and overrides of the bundled data."""

    extra_holidays: list[date] = msgspec.field(default_factory=list)
    open_days: list[date] = msgspec.field(default_factory=list)     # un-holiday a listed date
    late_open_days: list[date] = msgspec.field(default_factory=list)
    csat_days: list[date] = msgspec.field(default_factory=list)
    holiday_file: str | None = None


class TradingCalendar(Protocol):
    def is_trading_day(self, d: date) -> bool: ...

    def session_at(self, ts_ns: int) -> Phase: ...

    def next_open(self, ts_ns: int) -> int: ...

    def trading_days(self, start: date, end: date) -> list[date]: ...


@dataclass(frozen=True)
class HolidayData:
    holidays: dict[date, str]
    special: dict[date, str]
    years: tuple[int, ...]


def load_holidays(path: str | None = None) -> HolidayData:
    """Parse a holiday file (default: the bundled one); errors name the file and entry."""
    doc, name = load_data_toml("krx_holidays.toml", path, what="holiday")
    holidays: dict[date, str] = {}
    special: dict[date, str] = {}
    for i, row in enumerate(doc.get("holiday", [])):
        d = row.get("date")
        if not isinstance(d, date):
            raise ConfigError("date must be a TOML date (YYYY-MM-DD)", file=name,
                              key=f"holiday[{i}].date")
        holidays[d] = str(row.get("name", ""))
    for i, row in enumerate(doc.get("special", [])):
        d, kind = row.get("date"), row.get("kind")
        if not isinstance(d, date):
            raise ConfigError("date must be a TOML date", file=name, key=f"special[{i}].date")
        if kind not in SPECIAL_KINDS:
            raise ConfigError(f"kind must be one of {sorted(SPECIAL_KINDS)}, got {kind!r}",
                              file=name, key=f"special[{i}].kind")
        special[d] = str(kind)
    years = tuple(int(y) for y in doc.get("years", sorted({d.year for d in holidays})))
    return HolidayData(holidays, special, years)


@functools.cache
def _bundled() -> HolidayData:
    return load_holidays(None)


class KrxCalendar:
    """KOSPI/KOSDAQ trading days and session phases."""

    def __init__(self, config: CalendarConfig | None = None, *,
                 extra_holidays: Iterable[date] = (), open_days: Iterable[date] = (),
                 special_days: Mapping[date, str] | None = None,
                 first_day_late_open: bool = True) -> None:
        cfg = config or CalendarConfig()
        data = load_holidays(cfg.holiday_file) if cfg.holiday_file else _bundled()
        self.holidays: dict[date, str] = dict(data.holidays)
        for d in [*cfg.extra_holidays, *extra_holidays]:
            self.holidays[d] = "configured holiday"
        for d in [*cfg.open_days, *open_days]:
            self.holidays.pop(d, None)
        self.special: dict[date, str] = dict(data.special)
        self.special.update({d: "late_open" for d in cfg.late_open_days})
        self.special.update({d: "csat" for d in cfg.csat_days})
        if special_days:
            for d, kind in special_days.items():
                if kind not in SPECIAL_KINDS:
                    raise ConfigError(f"unknown special day kind {kind!r}", key=str(d))
                self.special[d] = kind
        self.years = data.years
        self.first_day_late_open = first_day_late_open
        self._warned: set[int] = set()

    def covers(self, d: date) -> bool:
        """Whether the holiday data covers ``d``'s year (outside it only weekends close)."""
        return d.year in self.years

    def is_trading_day(self, d: date) -> bool:
        if d.weekday() >= 5:
            return False
        if not self.covers(d) and d.year not in self._warned:
            self._warned.add(d.year)
            log.warning("calendar_year_not_covered", year=d.year, covered=list(self.years))
        return d not in self.holidays

    def _first_trading_day_of_year(self, d: date) -> bool:
        probe = date(d.year, 1, 1)
        while probe < d:
            if self.is_trading_day(probe):
                return False
            probe += timedelta(days=1)
        return True

    def hours(self, d: date) -> SessionHours | None:
        """The day's schedule, or ``None`` on a closed day."""
        if not self.is_trading_day(d):
            return None
        kind = self.special.get(d)
        if kind is not None:
            return SPECIAL_KINDS[kind]
        if self.first_day_late_open and d.month == 1 and d.day <= 10 \
                and self._first_trading_day_of_year(d):
            return LATE_OPEN
        return NORMAL

    def session_at(self, ts_ns: int) -> Phase:
        d = kst_date(ts_ns)
        hours = self.hours(d)
        if hours is None:
            return Phase.CLOSED
        return hours.phase(ts_ns - kst_midnight_ns(d))

    def session_bounds(self, d: date) -> tuple[int, int] | None:
        """``(open_ns, close_ns)`` of the regular session (continuous start, auction end)."""
        hours = self.hours(d)
        if hours is None:
            return None
        base = kst_midnight_ns(d)
        return base + hours.open, base + hours.close

    def next_open(self, ts_ns: int) -> int:
        """The first regular-session open (start of continuous trading) at or after ts_ns."""
        d = kst_date(ts_ns)
        for _ in range(3_660):
            bounds = self.session_bounds(d)
            if bounds is not None and bounds[0] >= ts_ns:
                return bounds[0]
            d += timedelta(days=1)
        raise ConfigError("no trading day within ten years: check the calendar configuration")

    def next_close(self, ts_ns: int) -> int:
        """The first regular-session close at or after ts_ns."""
        d = kst_date(ts_ns)
        for _ in range(3_660):
            bounds = self.session_bounds(d)
            if bounds is not None and bounds[1] >= ts_ns:
                return bounds[1]
            d += timedelta(days=1)
        raise ConfigError("no trading day within ten years: check the calendar configuration")

    def trading_days(self, start: date, end: date) -> list[date]:
        """Trading days in ``[start, end]`` (inclusive)."""
        out: list[date] = []
        d = start
        while d <= end:
            if self.is_trading_day(d):
                out.append(d)
            d += timedelta(days=1)
        return out

    def add_trading_days(self, d: date, n: int) -> date:
        """The ``n``-th trading day after ``d`` (``n >= 0``; 0 gives ``d`` itself even if
        closed). Settlement of exchange trades is ``add_trading_days(trade_date, 2)``."""
        if n < 0:
            raise ValueError("n must be >= 0")
        while n > 0:
            d += timedelta(days=1)
            if self.is_trading_day(d):
                n -= 1
        return d


class CryptoCalendar:
    """Crypto venues trade around the clock: every day is a trading day, always CONTINUOUS."""

    def is_trading_day(self, d: date) -> bool:
        return True

    def session_at(self, ts_ns: int) -> Phase:
        return Phase.CONTINUOUS

    def next_open(self, ts_ns: int) -> int:
        return ts_ns

    def trading_days(self, start: date, end: date) -> list[date]:
        return [start + timedelta(days=i) for i in range((end - start).days + 1)]

    def add_trading_days(self, d: date, n: int) -> date:
        return d + timedelta(days=n)


@functools.cache
def default_krx_calendar() -> KrxCalendar:
    """The bundled calendar without configured changes (for cost-model settlement dates)."""
    return KrxCalendar()
