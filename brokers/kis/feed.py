"""``KisFeed``: the daemon's market (what App uses of ``jts.sim.SimMarket``) fed by KIS.

* ``history`` — warm-up 1-minute bars, fetched from the REST minute chart by
  :meth:`KisFeed.prefetch` in the BACKGROUND lane while the broker connects (App calls
  ``history`` synchronously, so it can only hand out what was fetched before).
* ``stream`` — H0STCNT0 trade prints from the account's WebSocket session, batched; symbols
  beyond the registration cap (or refused with OPSP0008) are polled with the multi-symbol
  quote (30 per call, REALTIME lane) and turned into prints from the change in cumulative
  volume.
* a :class:`brokers.kis.ws.StreamGap` (the session was down) is filled from the REST
  minute chart: every whole minute between a symbol's last print and the reconnect becomes
  four synthetic prints (open, high/low, close) carrying the bar's volume, so the bar
  builder rebuilds the missing bars. Live prints received meanwhile wait in the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Sequence

import structlog

from brokers.kis import parse, wire
from brokers.kis.broker import KisBroker
from brokers.kis.ws import KisStream, StreamGap
from jts.clock import NS, Clock, to_kst
from jts.errors import BrokerError, ConfigError, DataError
from jts.krx import Market, market_of
from jts.ratelimit import Lane
from jts.types import Bar, Tick

log = structlog.get_logger(__name__)
MINUTE = 60 * NS
VENUE = parse.VENUE


def bar_prints(bar: Bar, recv_ns: int) -> list[Tick]:
    """Four prints that rebuild ``bar`` exactly in a 1-minute bar builder."""
    first, second = (bar.low, bar.high) if bar.close >= bar.open else (bar.high, bar.low)
    quarter = bar.volume / 4.0
    return [Tick(VENUE, bar.symbol, bar.ts_ns + k * 15 * NS, recv_ns, px, quarter)
            for k, px in enumerate((bar.open, first, second, bar.close))]


class KisFeed:
    venue = VENUE

    def __init__(self, broker: KisBroker, symbols: Sequence[str], *, history_bars: int = 120,
                 poll_interval: float | None = None, queue_size: int = 1_000,
                 batch_max: int = 5_000) -> None:
        if not symbols:
            raise ConfigError("the KIS feed needs symbols", key="market.watchlist")
        self.broker = broker
        self.symbols: list[str] = list(dict.fromkeys(symbols))
        self.history_bars = history_bars
        rps = broker.cfg.requests_per_second
        calls = math.ceil(len(self.symbols) / wire.MULTI_PRICE_MAX)
        # polling never takes more than half the account's budget
        self.poll_interval = poll_interval or max(1.0, calls / (0.5 * rps))
        self._history: dict[str, list[Bar]] = {}
        self._queue: asyncio.Queue[list[Tick]] = asyncio.Queue(queue_size)
        self._batch_max = batch_max
        self._last_ts: dict[str, int] = {}
        self._cum_volume: dict[str, float] = {}
        self.streamed: list[str] = []
        self.polled: list[str] = []
        self.counters = {"ticks": 0, "polls": 0, "poll_errors": 0, "polled_ticks": 0,
                         "gaps": 0, "gap_bars": 0, "gap_errors": 0, "history_errors": 0,
                         "dropped_batches": 0}

    # -- reference data -----------------------------------------------------------------

    def market_of(self, code: str) -> Market:
        return market_of(code) or Market.KOSPI

    def prev_close(self, code: str) -> float | None:
        return self.broker.prev_closes.get(code)

    # -- history --------------------------------------------------------------------------

    async def prefetch(self, end_ns: int) -> None:
        """Fetch today's completed minute bars up to ``end_ns`` for every symbol (BACKGROUND
        lane). A symbol that fails is logged and counted, and starts cold."""
        until = to_kst(end_ns).strftime("%H%M%S")
        for sym in self.symbols:
            try:
                bars = await self.broker.minute_bars(sym, until, lane=Lane.BACKGROUND,
                                                     since_ns=self._since(end_ns))
            except (BrokerError, DataError) as e:
                self.counters["history_errors"] += 1
                log.warning("kis_history_failed", symbol=sym, error=str(e)[:200])
                continue
            self._history[sym] = [b for b in bars if b.ts_ns + MINUTE <= end_ns]
        log.info("kis_history_loaded", symbols=len(self._history),
                 bars=sum(len(b) for b in self._history.values()))

    def _since(self, end_ns: int) -> int:
        return end_ns - (self.history_bars + 1) * MINUTE if self.history_bars else end_ns

    def history(self, n_bars: int, end_ns: int, timeframe: str = "1m") -> dict[str, list[Bar]]:
        """The last ``n_bars`` prefetched 1-minute bars per symbol ending by ``end_ns``."""
        if timeframe != "1m":
            raise ConfigError(f"the KIS feed warms up with 1m bars, not {timeframe!r}",
                              key="timeframe")
        if n_bars < 0:
            raise ConfigError(f"n_bars must be >= 0, got {n_bars}", key="history_bars")
        out: dict[str, list[Bar]] = {}
        for sym in self.symbols:
            done = [b for b in self._history.get(sym, []) if b.ts_ns + MINUTE <= end_ns]
            out[sym] = done[-n_bars:] if n_bars else []
        return out

    # -- live ---------------------------------------------------------------------------

    async def stream(self, clock: Clock) -> AsyncIterator[list[Tick]]:
        """Batches of prints: streamed, polled and gap-filled, in arrival order."""
        ws = self.broker.stream
        tasks: list[asyncio.Task[None]] = []
        loop = asyncio.get_running_loop()
        if ws is not None:
            for sym in self.symbols:
                if await ws.subscribe(wire.WS_TRADE, sym):
                    self.streamed.append(sym)
            tasks.append(loop.create_task(self._read(ws)))
        self.polled = [s for s in self.symbols if s not in self.streamed]
        log.info("kis_feed_started", streamed=len(self.streamed), polled=len(self.polled),
                 poll_interval=self.poll_interval)
        tasks.append(loop.create_task(self._poll(clock)))
        try:
            while True:
                batch = await self._queue.get()
                while not self._queue.empty() and len(batch) < self._batch_max:
                    batch.extend(self._queue.get_nowait())
                self.counters["ticks"] += len(batch)
                yield batch
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t

    def _put(self, ticks: list[Tick]) -> None:
        if not ticks:
            return
        for t in ticks:
            self._last_ts[t.symbol] = max(t.ts_ns, self._last_ts.get(t.symbol, 0))
        if self._queue.full():
            self._queue.get_nowait()
            self.counters["dropped_batches"] += 1
        self._queue.put_nowait(ticks)

    async def _read(self, ws: KisStream) -> None:
        while True:
            ev = await ws.market.get()
            if isinstance(ev, StreamGap):
                self._put(await self.fill_gap(ev))
                continue
            batch = [ev] if isinstance(ev, Tick) else []
            while not ws.market.empty() and len(batch) < self._batch_max:
                nxt = ws.market.get_nowait()
                if isinstance(nxt, StreamGap):
                    self._put(batch)
                    batch = []
                    self._put(await self.fill_gap(nxt))
                elif isinstance(nxt, Tick):
                    batch.append(nxt)
            self._put(batch)

    def _polled_now(self) -> list[str]:
        ws = self.broker.stream
        refused = {k for tr, k in (ws.unstreamed if ws else ()) if tr == wire.WS_TRADE}
        return [s for s in self.symbols if s in refused or s in self.polled]

    async def _poll(self, clock: Clock) -> None:
        while True:
            syms = self._polled_now()
            if syms:
                await self.poll_once(syms, clock.now_ns())
            await clock.sleep(self.poll_interval)

    async def poll_once(self, symbols: list[str], now_ns: int) -> list[Tick]:
        """One multi-quote round: a print per symbol whose cumulative volume grew."""
        self.counters["polls"] += 1
        try:
            quotes = await self.broker.quotes(symbols, lane=Lane.REALTIME)
        except (BrokerError, DataError) as e:
            self.counters["poll_errors"] += 1
            log.warning("kis_poll_failed", symbols=len(symbols), error=str(e)[:200])
            return []
        out: list[Tick] = []
        for q in quotes:
            before = self._cum_volume.get(q.symbol)
            self._cum_volume[q.symbol] = q.volume
            if before is not None and q.volume > before and q.price > 0:
                out.append(Tick(VENUE, q.symbol, now_ns, now_ns, q.price, q.volume - before))
        self.counters["polled_ticks"] += len(out)
        self._put(out)
        return out

    async def fill_gap(self, gap: StreamGap) -> list[Tick]:
        """Prints rebuilding the whole minutes each streamed symbol missed during ``gap``."""
        self.counters["gaps"] += 1
        until_min = gap.until_ns - gap.until_ns % MINUTE
        out: list[Tick] = []
        for tr_id, sym in gap.keys:
            if tr_id != wire.WS_TRADE:
                continue
            last = self._last_ts.get(sym, gap.since_ns)
            first_min = last - last % MINUTE + MINUTE
            if first_min >= until_min:
                continue
            hhmmss = to_kst(until_min - NS).strftime("%H%M%S")
            try:
                bars = await self.broker.minute_bars(sym, hhmmss, since_ns=first_min,
                                                     lane=Lane.REALTIME)
            except (BrokerError, DataError) as e:
                self.counters["gap_errors"] += 1
                log.warning("kis_gap_fill_failed", symbol=sym, error=str(e)[:200])
                continue
            missing = [b for b in bars if first_min <= b.ts_ns < until_min]
            self.counters["gap_bars"] += len(missing)
            for b in missing:
                out.extend(bar_prints(b, gap.until_ns))
        out.sort(key=lambda t: (t.ts_ns, t.symbol))
        log.info("kis_gap_filled", seconds=round((gap.until_ns - gap.since_ns) / NS, 1),
                 prints=len(out))
        return out

    def status(self) -> dict[str, object]:
        return {"streamed": len(self.streamed), "polled": self._polled_now(),
                "poll_interval": self.poll_interval, **self.counters}
