"""Backtest inputs from the time-series store: aligned bars for the requested symbols and
range, with every problem reported instead of papered over — unknown symbols, empty
ranges, too little history for the strategy's warm-up, and gaps (missing bars inside a
session or missing trading days), which are listed, never filled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

from jts.calendar import KrxCalendar, kst_date, kst_midnight_ns
from jts.clock import KST
from jts.errors import DataError, StorageError
from jts.storage.timeseries import BarArrays, open_timeseries, parse_timeframe
from jts.storage.ts_sql import base_timeframe

MINUTE_NS = 60 * 10**9
MAX_GAPS = 200


class InputError(DataError):
    """The user asked for something the data cannot give (exit status 2)."""


@dataclass(frozen=True)
class Gap:
    symbol: str
    after_ns: int        # last bar before the gap
    before_ns: int       # first bar after it
    missing: int         # how many absent
    unit: str            # "bars" (inside a session) or "days" (whole trading days)

    def as_dict(self) -> dict[str, object]:
        return {"symbol": self.symbol, "after": _iso(self.after_ns),
                "before": _iso(self.before_ns), "missing": self.missing, "unit": self.unit}


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, KST).isoformat(timespec="minutes")


def parse_day(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"--{what}: expected a date like 2025-01-31, got {text!r}") from None


def day_range(start: str | None, end: str | None) -> tuple[int, int]:
    """[start, end] KST days (inclusive) as [start_ns, end_ns)."""
    lo = kst_midnight_ns(parse_day(start, "from")) if start else 0
    hi = kst_midnight_ns(parse_day(end, "to") + timedelta(days=1)) if end else 2**62
    if hi <= lo:
        raise InputError(f"empty date range: --from {start} is after --to {end}")
    return lo, hi


def find_gaps(bars: BarArrays, calendar: KrxCalendar | None = None) -> list[Gap]:
    """Missing bars inside sessions (intraday timeframes) and missing trading days."""
    cal = calendar or KrxCalendar()
    n, unit = parse_timeframe(bars.timeframe)
    step = n * (60 if unit == "h" else 1) * MINUTE_NS if unit in ("m", "h") else 0
    out: list[Gap] = []
    for s, sym in enumerate(bars.symbols):
        ts = bars.ts_ns[~np.isnan(bars.close[s])]
        if ts.shape[0] < 2:
            continue
        days = [kst_date(int(x)) for x in ts[np.r_[True, np.diff((ts + 9 * 3600 * 10**9)
                                                                // (86_400 * 10**9)) != 0]]]
        dset = set(days)
        if unit in ("m", "h", "d"):
            missing_days = [d for d in cal.trading_days(days[0], days[-1]) if d not in dset]
            for d in missing_days[:MAX_GAPS]:
                lo = kst_midnight_ns(d)
                i = int(np.searchsorted(ts, lo))
                out.append(Gap(sym, int(ts[i - 1]), int(ts[i]), 1, "days"))
        if step:
            dt = np.diff(ts)
            same = np.diff((ts + 9 * 3600 * 10**9) // (86_400 * 10**9)) == 0
            for i in np.flatnonzero(same & (dt > step))[:MAX_GAPS]:
                out.append(Gap(sym, int(ts[i]), int(ts[i + 1]), int(dt[i] // step) - 1, "bars"))
    out.sort(key=lambda g: (g.symbol, g.after_ns))
    return out


async def load_bars(url: str, symbols: list[str], start_ns: int, end_ns: int,
                    timeframe: str, warmup_bars: int) -> BarArrays:
    """Read and check bars; InputError for anything the user must fix."""
    if not symbols:
        raise InputError("no symbols: pass --symbols A,B or list them in the strategy's universe")
    try:
        base = base_timeframe(timeframe)
    except StorageError as exc:
        raise InputError(str(exc)) from None
    ts = await open_timeseries(url)
    try:
        known = {si.symbol: si for si in await ts.list_series() if si.timeframe == base}
        unknown = [s for s in symbols if s not in known]
        if unknown:
            raise InputError(f"unknown symbol(s) {', '.join(unknown)}: no {base} bars in the "
                             "time-series store (load them with `jts data import`)")
        bars = await ts.read_bars(symbols, start_ns, end_ns, timeframe)
    finally:
        await ts.close()
    counts = (~np.isnan(bars.close)).sum(axis=1) if bars.ts_ns.size else np.zeros(len(symbols))
    for sym, k in zip(symbols, counts.tolist(), strict=True):
        si = known[sym]
        if k == 0:
            raise InputError(f"no {timeframe} bars for {sym} in the requested range "
                             f"(stored: {_iso(si.first_ns)} .. {_iso(si.last_ns)})")
        if k < warmup_bars + 2:
            raise InputError(f"not enough data for the strategy's warm-up: {sym} has {k} "
                             f"{timeframe} bars in range, the strategy needs {warmup_bars} "
                             "bars of warm-up plus 2 to trade; widen --from/--to")
    return bars


def first_last(bars: BarArrays) -> tuple[str, str]:
    if not bars.ts_ns.size:
        return "", ""
    return _iso(int(bars.ts_ns[0])), _iso(int(bars.ts_ns[-1]))


