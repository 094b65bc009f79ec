"""The simulated KRX market: universe, determinism, rules, volume shape, surges, history."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from datetime import datetime

import numpy as np
import pytest

from jts.calendar import KrxCalendar, Phase
from jts.clock import FakeClock, from_datetime
from jts.errors import ConfigError
from jts.krx import Market, on_tick, price_limits
from jts.sim import SimMarket, intraday_weight
from jts.sim.profile import SESSION_NS

NS = 1_000_000_000
T0 = from_datetime(datetime(2025, 6, 10, 9, 0))
# the start of a virtual session (cycles of 390 minutes from the epoch)
V0 = (T0 // SESSION_NS + 1) * SESSION_NS


def test_default_universe_is_real_krx_symbols() -> None:
    m = SimMarket()
    assert len(m.symbols) >= 60
    assert "005930" in m.symbols and m.info("005930").name == "삼성전자"
    assert {m.market_of(s) for s in m.symbols} == {Market.KOSPI, Market.KOSDAQ}
    assert all(on_tick(m.info(s).start_price) for s in m.symbols)


def test_universe_by_count_and_by_codes() -> None:
    assert len(SimMarket(symbols=10).symbols) == 10
    big = SimMarket(symbols=120)
    assert len(big.symbols) == 120 and big.symbols[-1] == "S00035"
    assert SimMarket(symbols=["000660", "S00003"]).symbols == ["000660", "S00003"]
    with pytest.raises(ConfigError, match="unknown symbol '123456'"):
        SimMarket(symbols=["123456"])
    with pytest.raises(ConfigError, match="at least one"):
        SimMarket(symbols=0)


def test_deterministic_and_independent_of_wake_pattern() -> None:
    a, b = SimMarket(symbols=15, seed=7), SimMarket(symbols=15, seed=7)
    one = a.advance_to(T0) + a.advance_to(T0 + 600 * NS)
    many = b.advance_to(T0)
    for k in range(1, 61):
        many += b.advance_to(T0 + k * 10 * NS)
    key = [(t.symbol, t.ts_ns, t.price, t.volume, t.seq) for t in one]
    assert key == [(t.symbol, t.ts_ns, t.price, t.volume, t.seq) for t in many]
    other = SimMarket(symbols=15, seed=8)
    other.advance_to(T0)
    assert [t.price for t in other.advance_to(T0 + 600 * NS)][:50] != [t.price for t in one][:50]


def test_ticks_are_ordered_on_grid_inside_limits_and_frequent() -> None:
    m = SimMarket(seed=42)
    m.advance_to(T0)
    ticks = m.advance_to(T0 + 600 * NS)
    assert all(t.venue == "krx" and t.volume >= 1 for t in ticks)
    assert [t.ts_ns for t in ticks] == sorted(t.ts_ns for t in ticks)
    assert all(T0 < t.ts_ns <= T0 + 600 * NS for t in ticks)
    for t in ticks[:2000]:
        assert on_tick(t.price)
        lo, hi = m.limits(t.symbol)
        assert lo <= t.price <= hi
    per_symbol = Counter(t.symbol for t in ticks)
    assert set(per_symbol) == set(m.symbols)
    assert min(per_symbol.values()) >= 15          # several prints a minute, every symbol


def test_prices_respect_daily_limits_in_a_long_run() -> None:
    m = SimMarket(symbols=5, seed=3, surges_per_symbol_hour=30.0, max_catchup_s=1e6)
    m.advance_to(V0)
    ticks = m.advance_to(V0 + 6 * 3_600 * NS)
    for sym in m.symbols:
        lo, hi = (float(x) for x in price_limits(repr(m.prev_close(sym)), m.market_of(sym)))
        assert all(lo <= t.price <= hi for t in ticks if t.symbol == sym)


def test_u_shaped_intraday_volume() -> None:
    assert intraday_weight(5) > 2 * intraday_weight(200) < intraday_weight(385)
    m = SimMarket(symbols=20, seed=1, surges_per_symbol_hour=0.0, max_catchup_s=1e6)
    m.advance_to(V0)
    ticks = m.advance_to(V0 + SESSION_NS)
    minute = np.array([(t.ts_ns - V0) // (60 * NS) for t in ticks])
    vol = np.bincount(minute, weights=[t.volume for t in ticks], minlength=390)
    open_, mid, close = vol[:30].mean(), vol[150:240].mean(), vol[370:390].mean()
    assert open_ > 1.8 * mid and close > 1.5 * mid


def test_surges_multiply_volume_and_move_price() -> None:
    m = SimMarket(symbols=10, seed=5, surges_per_symbol_hour=1.0, max_catchup_s=1e6)
    m.advance_to(V0 + 60 * 60 * NS)
    ticks = m.advance_to(V0 + 240 * 60 * NS)
    assert m.surges_started > 0
    best = 0.0
    for sym in m.symbols:
        mins = np.array([(t.ts_ns - V0) // (60 * NS) for t in ticks if t.symbol == sym])
        vols = np.array([t.volume for t in ticks if t.symbol == sym])
        per_min = np.bincount(mins - 60, weights=vols, minlength=180)
        rolled = np.convolve(per_min, np.ones(3) / 3, "valid")
        best = max(best, float(rolled.max() / np.median(rolled)))
    assert best >= 4.0


def test_history_ends_at_live_start_and_is_stable() -> None:
    m = SimMarket(symbols=5, seed=9)
    h100 = m.history(100, T0)
    h40 = m.history(40, T0)
    for sym in m.symbols:
        bars = h100[sym]
        assert len(bars) == 100 and bars[-10:] == h40[sym][-10:]
        assert bars[-1].close == m.info(sym).start_price
        assert all(b.ts_ns % (60 * NS) == 0 for b in bars)
        assert all(b2.ts_ns - b1.ts_ns == 60 * NS for b1, b2 in itertools.pairwise(bars))
        assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in bars)
        assert bars[-1].ts_ns + 60 * NS <= T0


def test_history_after_streaming_includes_live_bars() -> None:
    m = SimMarket(symbols=3, seed=9)
    m.history(10, T0)
    m.advance_to(T0)
    m.advance_to(T0 + 30 * 60 * NS)
    h = m.history(50, T0 + 30 * 60 * NS)
    for sym in m.symbols:
        bars = h[sym]
        assert len(bars) == 50
        assert [b.ts_ns for b in bars] == sorted({b.ts_ns for b in bars})
        assert bars[-1].ts_ns >= T0 + 25 * 60 * NS        # live bars made it in
        assert bars[-1].close == m.last[m.symbols.index(sym)] or bars[-1].ts_ns < T0 + 29 * 60 * NS


def test_daily_and_session_following_history() -> None:
    cal = KrxCalendar()
    m = SimMarket(symbols=2, seed=1, follow_session=True, calendar=cal)
    daily = m.history(20, T0, "1d")["005930"]
    assert len(daily) == 20 and all(cal.is_trading_day(
        datetime.fromtimestamp(b.ts_ns / NS).date()) for b in daily)
    mins = m.history(500, T0, "5m")["005930"]
    assert len(mins) == 500
    assert all(cal.session_at(b.ts_ns) is Phase.CONTINUOUS for b in mins)
    with pytest.raises(ConfigError, match="unsupported timeframe"):
        m.history(5, T0, "7s")


def test_follow_session_is_silent_outside_continuous_trading() -> None:
    evening = from_datetime(datetime(2025, 6, 9, 18, 0))
    m = SimMarket(symbols=5, seed=2, follow_session=True)
    m.advance_to(evening)
    ticks = m.advance_to(from_datetime(datetime(2025, 6, 10, 9, 10)))
    cal = KrxCalendar()
    assert ticks and all(cal.session_at(t.ts_ns) is Phase.CONTINUOUS for t in ticks)
    assert min(t.ts_ns for t in ticks) > from_datetime(datetime(2025, 6, 10, 9, 0))


def test_default_runs_at_any_hour() -> None:
    night = from_datetime(datetime(2025, 6, 8, 3, 0))      # a Sunday, 03:00 KST
    m = SimMarket(symbols=5, seed=2)
    m.advance_to(night)
    assert m.advance_to(night + 60 * NS)


async def test_stream_batches_on_a_fake_clock() -> None:
    clock = FakeClock(T0)
    m = SimMarket(symbols=10, seed=4, tick_interval_s=0.5)
    batches: list[int] = []

    async def consume() -> None:
        async for batch in m.stream(clock):
            assert all(t.recv_ns == clock.now_ns() >= t.ts_ns for t in batch)
            batches.append(len(batch))
            if len(batches) == 20:
                return

    task = asyncio.create_task(consume())
    for _ in range(100):                      # bounded: a broken stream fails, never hangs
        if task.done():
            break
        await clock.run_for(0.5, step=0.5)
    assert task.done()
    await task
    assert len(batches) == 20 and sum(batches) > 0
    assert m.ticks_emitted == sum(batches)
