"""Instrumentation for bench/bench_pipeline.py: the synthetic market fed to the App, the
paper broker with a hook on ``submit``, and the probe that times each stage by wrapping the
App's component *instances* (the components themselves are the real ones, never copies)."""

from __future__ import annotations

import asyncio
import gc
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from brokers.paper import PaperBroker
from jts.app import App
from jts.clock import NS
from jts.krx import round_prices_f64
from jts.sim import SimMarket
from jts.tick_batch import TickColumns
from jts.types import Bar, OrderEvent, OrderIntent, OrderRequest, Tick

MIN = 60 * NS
DAY0 = (1_750_000_000 // 86_400 + 1) * 86_400 * NS        # a UTC midnight = 09:00 KST
SIZE_MU, SIZE_SIGMA = 3.0, 0.8


def _activity(n: int) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** 0.6          # a few symbols trade most
    return np.asarray(w / w.sum())


class SyntheticMarket:
    """Reference data from :class:`SimMarket` (codes, markets, previous closes); prints drawn
    in numpy at ``rate`` per market second (skewed activity, ~1 % of symbols surging), with
    matching 1-minute history so the surge profile and the strategies warm up on the same
    statistics the stream has."""

    venue = "krx"

    def __init__(self, n_symbols: int, *, rate: float, batch: int, total: int, start_ns: int,
                 seed: int = 7, paced_tps: float | None = None, coalesce: int = 0,
                 columnar: bool = True) -> None:
        self.ref = SimMarket(symbols=n_symbols, seed=seed)
        self.symbols = self.ref.symbols
        self.market_of, self.prev_close = self.ref.market_of, self.ref.prev_close
        self.rate, self.batch, self.total, self.start_ns = rate, batch, total, start_ns
        self.paced_tps = paced_tps
        self.coalesce = coalesce                    # paced: max ticks of a catch-up read
        self.columnar = columnar                    # yield TickColumns (else list[Tick])
        self.names = tuple(self.symbols)
        self.rng = np.random.default_rng(seed)
        n = n_symbols
        self.weight = _activity(n)
        self.surging = self.rng.random(n) < 0.01
        w = self.weight * np.where(self.surging, 8.0, 1.0)
        self.p = w / w.sum()
        self.cdf = np.cumsum(self.p)
        self._pending: list[np.ndarray] = []        # drawn prints not yet streamed
        self._drawn_from = self._drawn_to = 0
        self.logp = np.log(np.array([self.ref.prev_close(s) or 1.0 for s in self.symbols]))
        self.recv: list[int] = []                   # perf_counter_ns arrival, per batch
        self.recv_cpu: list[int] = []               # loop thread CPU (thread_time_ns) then
        self.feed_ns = 0                            # building Tick objects, measured part
        self.feed_cpu_ns = 0                        # the same, loop thread CPU
        self.skip = 0                               # leading batches that are the warm-up
        self.t_last = 0
        self.cpu0 = self.cpu1 = 0.0                 # process CPU time over the measured part
        self.release: Callable[[], Any] | None = None   # closed loop: await until taken
        self.done = asyncio.Event()

    def history(self, n_bars: int, end_ns: int, timeframe: str = "1m") -> dict[str, list[Bar]]:
        rng = np.random.default_rng(1)
        per_min = self.rate * 60 * self.weight * np.exp(SIZE_MU + SIZE_SIGMA ** 2 / 2)
        out: dict[str, list[Bar]] = {}
        for i, sym in enumerate(self.symbols):
            steps = rng.normal(0.0, 0.002, n_bars)
            closes = np.exp(self.logp[i] - np.cumsum(steps[::-1])[::-1] + steps[-1])
            vols = per_min[i] * np.exp(rng.normal(0.0, 0.3, n_bars))
            out[sym] = [Bar(sym, "1m", end_ns - (n_bars - k) * MIN, c, c * 1.001, c * 0.999,
                            c, v, c * v) for k, (c, v) in enumerate(zip(closes.tolist(),
                                                                        vols.tolist(),
                                                                        strict=True))]
        return out

    # prints drawn per numpy call (~1-2 ms): not a divisor of a minute's prints, so a draw
    # never lands on the batch that closes the bars
    BLOCK = 24_750

    def _draw(self, first: int) -> tuple[np.ndarray, ...]:
        """Prints ``first .. first + BLOCK`` (symbol, ts, price, volume): one vectorised
        draw, so a small batch costs a slice, not a draw (a feed parser's cost per batch is
        not the subject; it is reported apart)."""
        k, rng = self.BLOCK, self.rng
        sym = np.searchsorted(self.cdf, rng.random(k), side="right").clip(0, len(self.p) - 1)
        ts = self.start_ns + ((first + np.arange(k, dtype=np.int64)) * NS / self.rate
                              ).astype(np.int64)
        dt = k / self.rate
        self.logp += rng.normal(0.0, 0.02 * np.sqrt(dt / 60.0), len(self.logp)) + np.where(
            self.surging, 0.002 * dt / 60.0, 0.0)
        px = round_prices_f64(np.exp(self.logp[sym] + rng.normal(0.0, 3e-4, k)))
        vol = np.maximum(1.0, np.round(np.exp(rng.normal(SIZE_MU, SIZE_SIGMA, k))
                                       * np.where(self.surging[sym], 3.0, 1.0)))
        return sym.astype(np.int64), ts, px, vol

    def _make(self, b: int, now_ns: int) -> list[Tick] | TickColumns:
        k = self.batch
        first = b * k
        while first + k > self._drawn_to:
            block = self._draw(self._drawn_to)
            self._pending = [np.concatenate([a[first - self._drawn_from:], c])
                             for a, c in zip(self._pending, block, strict=True)] \
                if self._pending else list(block)
            self._drawn_from, self._drawn_to = first, self._drawn_to + self.BLOCK
        lo = first - self._drawn_from
        sym, ts, px, vol = (a[lo:lo + k] for a in self._pending)
        if self.columnar:                           # a feed that parses into arrays
            return TickColumns("krx", self.names, sym, ts, px, vol,
                               np.arange(first + 1, first + k + 1, dtype=np.int64))
        names = [self.symbols[i] for i in sym.tolist()]
        return list(map(Tick, ["krx"] * k, names, ts.tolist(), [now_ns] * k, px.tolist(),
                        vol.tolist(), range(first + 1, first + k + 1)))

    def _due(self, b: int, t0: int) -> int:
        return t0 + int(b * self.batch / (self.paced_tps or 1.0) * 1e9)

    def _one(self, b: int, clock: Any, due: int) -> list[Tick] | TickColumns:
        """Batch ``b``, built as a feed parser would, with its arrival stamps."""
        f0 = time.perf_counter_ns()
        c0 = time.thread_time_ns()
        clock.set(max(clock.now_ns(), self.start_ns + int((b + 1) * self.batch * NS
                                                           / self.rate)))
        ticks = self._make(b, clock.now_ns())
        f1 = time.perf_counter_ns()
        if b > self.skip:
            self.feed_ns += f1 - f0
            self.feed_cpu_ns += time.thread_time_ns() - c0
        # arrival: the scheduled time when paced (queueing counts), else when built
        self.recv.append(due if self.paced_tps else f1)
        self.recv_cpu.append(time.thread_time_ns())
        if b == self.skip:
            self.cpu0 = time.process_time()
        return ticks

    async def stream(self, clock: Any) -> AsyncIterator[list[Tick] | TickColumns]:
        """Paced: batch ``b`` is due at ``b·batch/paced_tps``; with ``coalesce`` the batches
        already due when the reader comes back join the one it takes (as a socket reader
        takes whatever is buffered, up to ``coalesce`` ticks)."""
        n_batches = self.total // self.batch
        t0 = time.perf_counter_ns()
        b = 0
        while b < n_batches:
            due = self._due(b, t0)
            if self.paced_tps:
                wait = due - time.perf_counter_ns()
                # a socket feed yields to the loop at least once per read, even when behind
                await asyncio.sleep(max(0.0, wait / 1e9))
            elif self.release is not None:
                await self.release()
            parts = [self._one(b, clock, due)]
            while (self.paced_tps and (len(parts) + 1) * self.batch <= self.coalesce
                   and b + 1 < n_batches and self._due(b + 1, t0) <= time.perf_counter_ns()):
                b += 1
                parts.append(self._one(b, clock, self._due(b, t0)))
            b += 1
            yield parts[0] if len(parts) == 1 else _concat(parts)
        if self.release is not None:
            await self.release()
        self.t_last = time.perf_counter_ns()
        self.cpu1 = time.process_time()
        self.done.set()
        await asyncio.Event().wait()                # a feed that went quiet, not one that died


def _concat(parts: list[Any]) -> list[Tick] | TickColumns:
    """Batches already due, read at once (as a socket reader takes what is buffered)."""
    if isinstance(parts[0], TickColumns):
        return TickColumns("krx", parts[0].names,
                           *(np.concatenate([getattr(p, f) for p in parts])
                             for f in ("sym", "ts_ns", "price", "volume", "seq")))
    return [t for p in parts for t in p]


class TimedPaperBroker(PaperBroker):
    """The paper broker with a hook at the top of ``submit`` (the stage boundary)."""

    on_submit: Callable[[OrderRequest], None] | None = None

    async def submit(self, order: OrderRequest) -> OrderEvent:
        if self.on_submit is not None:
            self.on_submit(order)
        return await super().submit(order)


@dataclass
class Samples:
    scored: list[int] = field(default_factory=list)         # per batch, weight = ticks
    scored_w: list[int] = field(default_factory=list)
    candidate: list[int] = field(default_factory=list)
    bars_done: list[int] = field(default_factory=list)
    intent: list[int] = field(default_factory=list)
    intent_cpu: list[int] = field(default_factory=list)     # loop thread CPU, not wall
    risk: list[int] = field(default_factory=list)
    desk: list[int] = field(default_factory=list)
    to_submit: list[int] = field(default_factory=list)
    tick_to_submit: list[int] = field(default_factory=list)
    surge_call: list[int] = field(default_factory=list)
    engine_call: list[int] = field(default_factory=list)
    bar_call: list[int] = field(default_factory=list)
    gc_pause: list[int] = field(default_factory=list)       # cyclic GC runs, measured part


class Probe:
    """Wraps the App's component instances with timers; ``skip`` leading batches are the
    warm-up (numba compilation, first bar closes) and are not recorded."""

    def __init__(self, app: App, market: SyntheticMarket, broker: TimedPaperBroker,
                 skip: int) -> None:
        self.s = Samples()
        self.m, self.skip, self.batch = market, skip, market.batch
        self._bars: dict[int, tuple[list[Bar], int, int]] = {}
        self._intents: dict[int, tuple[OrderIntent, int, int]] = {}
        self._cur: tuple[int, int, int] | None = None      # (handle start, intent t, recv)
        # handle_many: the burst's start and, in send order, (intent t, recv) of each approved
        # intent (None for a warm-up intent)
        self._burst_start: int | None = None
        self._burst: dict[int, tuple[int, int] | None] = {}
        self._approved: deque[tuple[int, int] | None] = deque()
        self._wrap(app, "surge", "update_ticks", self._surge)
        self._wrap(app, "bar_builder", "add", self._bar_add)
        self._wrap(app, "engine", "on_bars", self._on_bars)
        self._wrap(app, "risk", "check", self._risk)
        self._wrap(app, "desk", "handle", self._handle)
        if hasattr(app.desk, "handle_many"):
            self._wrap(app, "desk", "handle_many", self._handle_many)
        broker.on_submit = self._submit
        self._gc_t0 = 0
        gc.callbacks.append(self._gc)

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_t0 = time.perf_counter_ns()
        elif len(self.m.recv) > self.skip and not self.m.done.is_set():
            self.s.gc_pause.append(time.perf_counter_ns() - self._gc_t0)

    def close(self) -> None:
        if self._gc in gc.callbacks:
            gc.callbacks.remove(self._gc)

    def _wrap(self, app: App, attr: str, meth: str, hook: Callable[..., Any]) -> None:
        obj = getattr(app, attr)
        orig = getattr(obj, meth)
        setattr(obj, meth, lambda *a, **kw: hook(orig, *a, **kw))

    def _batch(self, ticks: Any, at: int) -> int:
        seq = getattr(ticks, "seq", None)           # a TickBatch: read the column
        s = int(seq[at]) if seq is not None else ticks[at].seq
        return (s - 1) // self.batch

    def _surge(self, orig: Any, ticks: list[Tick]) -> Any:
        t0 = time.perf_counter_ns()
        found = orig(ticks)
        t1 = time.perf_counter_ns()
        lo, hi = self._batch(ticks, 0), self._batch(ticks, -1)
        if lo >= self.skip:
            self.s.surge_call.append(t1 - t0)
            recv = self.m.recv
            for b in range(lo, hi + 1):
                self.s.scored.append(t1 - recv[b])
                self.s.scored_w.append(self.batch)
            self.s.candidate.extend([t1 - recv[lo]] * len(found))
        return found

    def _bar_add(self, orig: Any, ticks: list[Tick]) -> Any:
        t0 = time.perf_counter_ns()
        bars = orig(ticks)
        b = self._batch(ticks, 0)
        if b >= self.skip:
            self.s.bar_call.append(time.perf_counter_ns() - t0)
        if bars:
            self._bars[id(bars)] = (bars, self.m.recv[b], b)
        return bars

    def _on_bars(self, orig: Any, bars: list[Bar]) -> Any:
        t0 = time.perf_counter_ns()
        intents = orig(bars)
        t1 = time.perf_counter_ns()
        cpu = time.thread_time_ns()
        _, recv, b = self._bars.pop(id(bars), (None, 0, -1))
        if b >= self.skip:
            self.s.engine_call.append(t1 - t0)
            self.s.bars_done.append(t1 - recv)
            for it in intents:
                self.s.intent.append(t1 - recv)
                self.s.intent_cpu.append(cpu - self.m.recv_cpu[b])
                self._intents[id(it)] = (it, t1, recv)
        return intents

    def _risk(self, orig: Any, *a: Any) -> Any:
        t0 = time.perf_counter_ns()
        d = orig(*a)
        t1 = time.perf_counter_ns()
        if self._cur is not None:
            self.s.risk.append(t1 - t0)
        elif self._burst_start is not None:
            got = self._burst.get(id(a[0]))
            if got is not None:
                self.s.risk.append(t1 - t0)
            if d.approved:
                self._approved.append(got)
        return d

    async def _handle_many(self, orig: Any, intents: list[OrderIntent]) -> Any:
        """A burst: risk checks in turn, one write-ahead commit, then the sends in order.
        Desk service of an order = burst start → its submit call."""
        self._burst_start = time.perf_counter_ns()
        for it in intents:
            got = self._intents.pop(id(it), None)
            self._burst[id(it)] = (got[1], got[2]) if got else None
        try:
            return await orig(intents)
        finally:
            self._burst_start = None
            self._burst.clear()
            self._approved.clear()

    async def _handle(self, orig: Any, intent: OrderIntent) -> Any:
        got = self._intents.pop(id(intent), None)
        self._cur = (time.perf_counter_ns(), got[1], got[2]) if got else None
        try:
            return await orig(intent)
        finally:
            self._cur = None

    def _submit(self, order: OrderRequest) -> None:
        t = time.perf_counter_ns()
        if self._cur is None:
            if self._burst_start is None or not self._approved:
                return
            got = self._approved.popleft()
            if got is None:
                return
            start, (t_intent, recv) = self._burst_start, got
        else:
            start, t_intent, recv = self._cur
        self.s.desk.append(t - start)
        self.s.to_submit.append(t - t_intent)
        self.s.tick_to_submit.append(t - recv)
