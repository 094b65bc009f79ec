"""The bundled, deterministic simulated KRX market.

Prices are random walks (per-symbol volatility, tick-rounded, inside the ±30 % daily limits)
advanced on a fixed grid of ``step_s`` market seconds; prints arrive as a Poisson process
shaped by the U-shaped intraday curve; now and then a symbol *surges* (volume × 5-20 with a
directional price run). The tick sequence depends only on the seed, the universe and the
start time — never on how often the stream is woken — so runs are reproducible.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal

import numpy as np
import structlog

from jts.calendar import NS, KrxCalendar, kst_date
from jts.clock import Clock
from jts.errors import ConfigError
from jts.krx import Market, price_limits, round_prices_f64
from jts.sim.history import backward_bars
from jts.sim.profile import intraday_weight, session_position, virtual_position
from jts.sim.universe import SimSymbol, make_universe
from jts.types import Bar, Tick

log = structlog.get_logger(__name__)

SESSION_S = 390 * 60
_TIMEFRAMES = {"1m": 1, "3m": 3, "5m": 5, "10m": 10, "15m": 15, "30m": 30, "60m": 60,
               "1h": 60, "1d": 390}


def timeframe_minutes(timeframe: str) -> int:
    try:
        return _TIMEFRAMES[timeframe]
    except KeyError:
        raise ConfigError(f"unsupported timeframe {timeframe!r}; use one of "
                          f"{', '.join(_TIMEFRAMES)}", key="timeframe") from None


class SimMarket:
    """A seeded simulated KRX market: ``history()`` for warm-up, ``stream(clock)`` live."""

    venue = "krx"

    def __init__(self, symbols: int | Sequence[str] | None = None, seed: int = 42,
                 tick_interval_s: float = 0.1, *, follow_session: bool = False,
                 calendar: KrxCalendar | None = None, step_s: float = 1.0,
                 surges_per_symbol_hour: float = 0.15, keep_bars: int = 5_000,
                 max_catchup_s: float = 7_200.0) -> None:
        if tick_interval_s <= 0 or step_s <= 0:
            raise ConfigError("tick_interval_s and step_s must be positive",
                              key="market.tick_interval")
        self.universe: list[SimSymbol] = make_universe(symbols, seed)
        self.symbols: list[str] = [s.code for s in self.universe]
        self._index = {s.code: i for i, s in enumerate(self.universe)}
        self.seed = seed
        self.tick_interval_s = tick_interval_s
        self.follow_session = follow_session
        self.calendar = calendar or KrxCalendar()
        self.step_s = step_s
        self._step_ns = int(step_s * NS)
        self._p_surge = surges_per_symbol_hour / 3_600.0
        self._max_catchup_ns = int(max_catchup_s * NS)
        self._rng = np.random.default_rng([seed, 1])
        n = len(self.universe)
        start = np.array([s.start_price for s in self.universe])
        self._sig_s = np.array([s.daily_vol for s in self.universe]) / math.sqrt(SESSION_S)
        self._rate_s = np.array([s.trades_per_min for s in self.universe]) / 60.0
        self._qty = np.array([s.trade_qty for s in self.universe])
        self._log_fair = np.log(start)
        self.last = start.copy()
        self._prev_close = start.copy()
        self._lo, self._hi = np.zeros(n), np.zeros(n)
        self._set_limits()
        self._surge_left = np.zeros(n)
        self._surge_mult = np.ones(n)
        self._surge_drift = np.zeros(n)
        self._day: int | None = None
        self._t: int | None = None                    # last simulated grid time
        self.anchor_ns: int | None = None             # live start (end of synthetic history)
        self._seq = 0
        self.ticks_emitted = 0
        self.surges_started = 0
        self.steps_skipped = 0
        self._cur: dict[int, list[float]] = {}        # symbol → [start, o, h, l, c, v, value]
        self._bars: list[deque[Bar]] = [deque(maxlen=keep_bars) for _ in range(n)]

    # --- reference data --------------------------------------------------------------
    def info(self, code: str) -> SimSymbol:
        return self.universe[self._index[code]]

    def market_of(self, code: str) -> Market:
        return self.info(code).market

    def prev_close(self, code: str) -> float | None:
        """The base price of ``code``'s current daily limits (``None``: unknown symbol)."""
        i = self._index.get(code)
        return None if i is None else float(self._prev_close[i])

    def limits(self, code: str) -> tuple[float, float]:
        i = self._index[code]
        return float(self._lo[i]), float(self._hi[i])

    def _set_limits(self) -> None:
        for i, s in enumerate(self.universe):
            lo, hi = price_limits(Decimal(repr(float(self._prev_close[i]))), s.market)
            self._lo[i], self._hi[i] = float(lo), float(hi)

    # --- simulation ------------------------------------------------------------------
    def _position(self, ts_ns: int) -> tuple[int, float] | None:
        if self.follow_session:
            return session_position(self.calendar, ts_ns)
        return virtual_position(ts_ns)

    def _roll_day(self, day: int) -> None:
        if self._day is not None:
            self._prev_close = self.last.copy()
            self._set_limits()
        self._day = day

    def _start(self, now_ns: int) -> None:
        if self.anchor_ns is None:
            self.anchor_ns = now_ns
        self._t = (self.anchor_ns // self._step_ns) * self._step_ns

    def advance_to(self, now_ns: int) -> list[Tick]:
        """Simulate every grid step up to ``now_ns`` and return their prints in time order.
        Synchronous and deterministic: the core of :meth:`stream`, usable directly."""
        if self._t is None:
            self._start(now_ns)
        assert self._t is not None
        if now_ns - self._t > self._max_catchup_ns:
            skip = (now_ns - self._max_catchup_ns - self._t) // self._step_ns
            self._t += skip * self._step_ns
            self.steps_skipped += int(skip)
            log.warning("sim_catchup_skipped", steps=int(skip), step_s=self.step_s)
        out: list[Tick] = []
        while self._t + self._step_ns <= now_ns:
            t = self._t + self._step_ns
            pos = self._position(t)
            if pos is None:                                # follow_session and closed
                nxt = self.calendar.next_open(t)
                self._t = max(t, (min(nxt, now_ns) // self._step_ns) * self._step_ns)
                continue
            self._t = t
            self._step(t, pos, now_ns, out)
        self.ticks_emitted += len(out)
        return out

    def _step(self, t: int, pos: tuple[int, float], now_ns: int, out: list[Tick]) -> None:
        day, minute = pos
        if day != self._day:
            self._roll_day(day)
        rng, dt, n = self._rng, self.step_s, len(self.universe)
        w = intraday_weight(minute)
        # surges: volume x5-20 and a directional run for 2-10 minutes
        self._surge_left = np.maximum(0.0, self._surge_left - dt)
        starting = (rng.random(n) < self._p_surge * dt) & (self._surge_left <= 0.0)
        if starting.any():
            for j in np.flatnonzero(starting).tolist():
                dur = float(rng.uniform(120.0, 600.0))
                run = float(rng.uniform(0.01, 0.06)) * (1.0 if rng.random() < 0.75 else -1.0)
                self._surge_left[j] = dur
                self._surge_mult[j] = float(rng.uniform(5.0, 20.0))
                self._surge_drift[j] = run / dur
                self.surges_started += 1
                log.debug("sim_surge", symbol=self.symbols[j], seconds=round(dur),
                          volume_x=round(float(self._surge_mult[j]), 1), run=round(run, 4))
        active = self._surge_left > 0.0
        mult = np.where(active, self._surge_mult, 1.0)
        drift = np.where(active, self._surge_drift, 0.0)
        sig = self._sig_s * math.sqrt(dt) * np.where(active, 1.8, 1.0)
        self._log_fair += drift * dt + sig * rng.standard_normal(n)
        np.clip(self._log_fair, np.log(self._lo), np.log(self._hi), out=self._log_fair)
        counts = rng.poisson(self._rate_s * dt * w * np.sqrt(mult))
        m = int(counts.sum())
        if m == 0:
            return
        idx = np.repeat(np.arange(n), counts)
        ts = t - ((1.0 - rng.random(m)) * self._step_ns).astype(np.int64) + 1
        noise = rng.standard_normal(m) * 0.0004
        px = round_prices_f64(np.exp(self._log_fair[idx] + noise))
        px = np.minimum(np.maximum(px, self._lo[idx]), self._hi[idx])
        vol = np.maximum(1.0, np.round(self._qty[idx] * rng.lognormal(-0.18, 0.6, m)
                                       * np.sqrt(mult[idx]) * w ** 0.3))
        order = np.lexsort((idx, ts))
        for k in order.tolist():
            i, price, volume, tsk = int(idx[k]), float(px[k]), float(vol[k]), int(ts[k])
            self._seq += 1
            out.append(Tick(self.venue, self.symbols[i], tsk, now_ns, price, volume, self._seq))
            self.last[i] = price
            self._record(i, tsk, price, volume)

    def _record(self, i: int, ts: int, price: float, volume: float) -> None:
        start = ts - ts % (60 * NS)
        cur = self._cur.get(i)
        if cur is not None and int(cur[0]) != start:
            self._bars[i].append(Bar(self.symbols[i], "1m", int(cur[0]), cur[1], cur[2],
                                     cur[3], cur[4], cur[5], cur[6]))
            cur = None
        if cur is None:
            self._cur[i] = [float(start), price, price, price, price, volume, price * volume]
        else:
            cur[2], cur[3] = max(cur[2], price), min(cur[3], price)
            cur[4] = price
            cur[5] += volume
            cur[6] += price * volume

    async def stream(self, clock: Clock) -> AsyncIterator[list[Tick]]:
        """Yield one batch of prints every ``tick_interval_s`` wall seconds (clock seconds
        scaled by the clock's ``speed`` when it has one), each covering the market time
        since the previous batch."""
        wait = self.tick_interval_s * float(getattr(clock, "speed", 1.0))
        self.advance_to(clock.now_ns())
        while True:
            await clock.sleep(wait)
            yield self.advance_to(clock.now_ns())

    # --- history ---------------------------------------------------------------------
    def history(self, n_bars: int, end_ns: int, timeframe: str = "1m") -> dict[str, list[Bar]]:
        """The last ``n_bars`` completed bars per symbol ending at or before ``end_ns``:
        synthetic warm-up bars that end exactly at the live start price, followed by the
        1-minute bars of prints already streamed (for ``"1m"``)."""
        if n_bars < 0:
            raise ConfigError(f"n_bars must be >= 0, got {n_bars}", key="history_bars")
        tf_min = timeframe_minutes(timeframe)
        if self.anchor_ns is None:
            self.anchor_ns = end_ns
        starts, weights = self._bar_slots(n_bars, self.anchor_ns, timeframe, tf_min)
        tf_ns = tf_min * 60 * NS
        out: dict[str, list[Bar]] = {}
        for i, sym in enumerate(self.universe):
            bars = backward_bars((sym, i), self.seed, timeframe, starts, weights, tf_min,
                                 sym.start_price)
            if timeframe == "1m":
                bars.extend(self._bars[i])
            if timeframe == "1d":      # daily bars are whole sessions before the anchor day
                done = [b for b in bars if b.ts_ns < end_ns]
            else:
                done = [b for b in bars if b.ts_ns + tf_ns <= end_ns]
            out[sym.code] = done[-n_bars:] if n_bars else []
        return out

    def _bar_slots(self, n: int, anchor: int, timeframe: str, tf_min: int
                   ) -> tuple[list[int], list[float]]:
        if n == 0:
            return [], []
        tf_ns = tf_min * 60 * NS
        if timeframe == "1d":
            days: list[int] = []
            d = kst_date(anchor)
            while len(days) < n:
                d = d.fromordinal(d.toordinal() - 1)
                bounds = self.calendar.session_bounds(d)
                if bounds is not None:
                    days.append(bounds[0])
            return days[::-1], [1.0] * n
        starts: list[int] = []
        weights: list[float] = []
        t = (anchor // tf_ns) * tf_ns - tf_ns
        guard = 0
        while len(starts) < n:
            pos = self._position(t)
            if pos is not None:
                starts.append(t)
                weights.append(intraday_weight(pos[1] + tf_min / 2.0))
                t -= tf_ns
            else:
                prev_open = t - 86_400 * NS
                guard += 1
                if guard > 20_000:
                    raise ConfigError("no trading session found for history", key="calendar")
                t = min(t - tf_ns, self._last_slot_before(prev_open, t, tf_ns))
        return starts[::-1], weights[::-1]

    def _last_slot_before(self, floor_ns: int, t: int, tf_ns: int) -> int:
        """Jump back over a closed stretch: the last bar slot in a session before ``t``."""
        d = kst_date(t)
        for _ in range(30):
            bounds = self.calendar.session_bounds(d)
            if bounds is not None and bounds[0] < t:
                close = min(bounds[1], t)
                return ((close - 1) // tf_ns) * tf_ns
            d = d.fromordinal(d.toordinal() - 1)
        return floor_ns
