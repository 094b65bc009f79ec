"""Where in the trading day a timestamp falls, and the U-shaped intraday activity curve.

``follow_session=False`` (the default) runs *virtual* KRX days of 390 minutes back to back
around the clock (cycles counted from the Unix epoch), so any hour shows a whole day's shape;
``follow_session=True`` uses the calendar and is silent outside continuous trading.
"""

from __future__ import annotations

import math

from jts.calendar import NS, KrxCalendar, Phase, kst_date

SESSION_MIN = 390.0                      # 09:00-15:30
SESSION_NS = int(SESSION_MIN * 60 * NS)


def _raw_weight(minute: float) -> float:
    m = min(max(minute, 0.0), SESSION_MIN)
    # busy open decaying over ~half an hour, quiet lunch, a rising close
    return (0.55 + 2.6 * math.exp(-m / 22.0) + 1.6 * math.exp(-(SESSION_MIN - m) / 28.0)
            - 0.12 * math.exp(-((m - 200.0) / 60.0) ** 2))


_MEAN = sum(_raw_weight(i + 0.5) for i in range(int(SESSION_MIN))) / SESSION_MIN


def intraday_weight(minute: float) -> float:
    """Relative activity at ``minute`` after the open; averages 1.0 over the session."""
    return _raw_weight(minute) / _MEAN


def virtual_position(ts_ns: int) -> tuple[int, float]:
    """``(day_index, minute_in_session)`` of the around-the-clock virtual session."""
    day, rem = divmod(ts_ns, SESSION_NS)
    return int(day), rem / (60 * NS)


def session_position(cal: KrxCalendar, ts_ns: int) -> tuple[int, float] | None:
    """``(day_ordinal, minute_since_open)`` during continuous trading, else ``None``."""
    if cal.session_at(ts_ns) is not Phase.CONTINUOUS:
        return None
    d = kst_date(ts_ns)
    bounds = cal.session_bounds(d)
    assert bounds is not None
    return d.toordinal(), (ts_ns - bounds[0]) / (60 * NS)
