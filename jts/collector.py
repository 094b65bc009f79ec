"""The collector: runs the market-data feeds, validates and normalizes their ticks, publishes
accepted batches on the bus (one publish per batch), keeps the last-price cache (batched, off
the hot path) and the time-series writer fed, throttles floods, and watches each feed for
silence during its session (stale / recovered alerts).

Bad data never raises: every rejected tick is counted under one reason (see ``REASONS``) and
logged at a limited rate. Per-symbol order and duplicate state is keyed by (venue, symbol) and
shared by all feeds, so two redundant feeds of the same venue de-duplicate each other. The
checks run column-wise (:mod:`jts.ingest`): a feed may yield ``list[Tick]`` or, cheaper,
:class:`~jts.tick_batch.TickColumns`; either way the published batch is a
:class:`~jts.tick_batch.TickBatch` whose ``Tick`` objects are only built if someone reads
them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import structlog

from jts.calendar import CryptoCalendar, Phase
from jts.clock import NS, Clock
from jts.ingest import Validator
from jts.ingest_kernels import N_COUNTS
from jts.storage.cache import Cache, set_last_price
from jts.tick_batch import SymbolTable, TickColumns
from jts.types import Tick

log = structlog.get_logger(__name__)

REASONS = ("malformed", "bad_price", "bad_volume", "zero_volume", "out_of_order", "duplicate",
           "flood")
Batch = Sequence[Any] | TickColumns
FeedSource = AsyncIterable[Batch] | Callable[[], AsyncIterable[Batch]]
AlertFn = Callable[..., object]


class SessionCalendar(Protocol):
    def session_at(self, ts_ns: int) -> Phase: ...


class TickOffer(Protocol):
    """What the collector needs of :class:`jts.storage.ts_writer.TickWriter`."""

    dropped: int

    def offer_many(self, ticks: Sequence[Tick]) -> int: ...


@dataclass
class Feed:
    """One market-data feed. ``source`` is an async iterable of tick batches, or a zero-argument
    factory of one (then the feed is restarted ``restart_delay_s`` after it fails).
    ``calendar.session_at`` decides when silence counts: only in ``session_phases``."""

    name: str
    source: FeedSource
    venue: str = ""                         # filled into ticks that carry no venue
    calendar: SessionCalendar = field(default_factory=CryptoCalendar)
    session_phases: frozenset[Phase] = frozenset({Phase.CONTINUOUS})
    stale_after_s: float | None = None      # None: the collector's default
    max_batch: int | None = None            # flood: more ticks in one batch → drop oldest
    max_per_second: int | None = None       # flood: more ticks per clock second → drop oldest
    restart_delay_s: float = 5.0


class _FeedState:
    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.ticks = 0
        self.batches = 0
        self.accepted = 0
        self.rejected = dict.fromkeys(REASONS, 0)
        self.last_recv_ns: int | None = None
        self.active_since: int | None = None
        self.stale = False
        self.stale_count = 0
        self.state = "idle"
        self.errors = 0
        self.window = -1
        self.window_count = 0
        self.last_flood_alert_ns: int | None = None
        self.last_warn_ns: int | None = None
        self.warned = dict.fromkeys(REASONS, 0)


def _tail(batch: Batch, cut: int) -> Batch:
    """``batch`` without its ``cut`` oldest ticks."""
    return batch.take(slice(cut, None)) if isinstance(batch, TickColumns) else batch[cut:]


class Collector:
    def __init__(self, feeds: Sequence[Feed], bus_publish: Callable[[Sequence[Tick]], object],
                 clock: Clock, *, cache: Cache | None = None,
                 tick_writer: TickOffer | None = None, stale_after_s: float = 30.0,
                 on_alert: AlertFn | None = None, out_of_order_tolerance_s: float = 0.0,
                 dedup_window: int = 256, check_interval_s: float = 1.0,
                 cache_interval_s: float = 1.0, warn_interval_s: float = 10.0,
                 flood_alert_interval_s: float = 60.0,
                 symbol_index: dict[str, int] | None = None) -> None:
        names = [f.name for f in feeds]
        if len(set(names)) != len(names):
            raise ValueError(f"feed names must be unique, got {names}")
        if stale_after_s <= 0 or check_interval_s <= 0 or cache_interval_s <= 0:
            raise ValueError("stale_after_s, check_interval_s and cache_interval_s must be > 0")
        if dedup_window < 1:
            raise ValueError("dedup_window must be >= 1")
        self._feeds = [_FeedState(f) for f in feeds]
        self._by_name = {st.feed.name: st for st in self._feeds}
        self._publish = bus_publish
        self._clock = clock
        self._cache = cache
        self.tick_writer = tick_writer     # may be attached after construction (before run)
        self.stale_after_s = stale_after_s
        self._on_alert = on_alert
        self._tol_ns = int(out_of_order_tolerance_s * NS)
        self._dedup_window = dedup_window
        self.check_interval_s = check_interval_s
        self.cache_interval_s = cache_interval_s
        self._warn_ns = int(warn_interval_s * NS)
        self._flood_alert_ns = int(flood_alert_interval_s * NS)
        self.symbol_index = symbol_index   # published batches carry columns over it
        self._pending_cache: dict[tuple[str, str], Tick] = {}
        self._started_ns = clock.now_ns()
        self.published = 0
        self.publish_errors = 0
        self.cache_writes = 0
        self.cache_errors = 0
        self.alerts = 0

    # --- lifecycle -----------------------------------------------------------------------
    async def run(self) -> None:
        """Run every feed, the stale watchdog and the cache flusher until cancelled (or until
        every feed has ended for good, when the cache is flushed once more and this returns)."""
        self._started_ns = self._clock.now_ns()
        helpers = [asyncio.ensure_future(self._watchdog())]
        if self._cache is not None:
            helpers.append(asyncio.ensure_future(self._cache_loop()))
        try:
            async with asyncio.TaskGroup() as tg:
                for st in self._feeds:
                    tg.create_task(self._run_feed(st), name=f"feed:{st.feed.name}")
        finally:
            for h in helpers:
                h.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            if self._cache is not None:
                await asyncio.shield(self.flush_cache())

    async def _run_feed(self, st: _FeedState) -> None:
        feed = st.feed
        restartable = not isinstance(feed.source, AsyncIterable)
        while True:
            src = feed.source if isinstance(feed.source, AsyncIterable) else feed.source()
            st.state = "running"
            log.info("feed_started", feed=feed.name, venue=feed.venue)
            try:
                async for batch in src:
                    self.ingest(feed.name, batch)
                st.state = "ended"
                log.warning("feed_ended", feed=feed.name, ticks=st.ticks)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                st.errors += 1
                st.state = "failed"
                log.error("feed_failed", feed=feed.name, error=f"{type(exc).__name__}: {exc}",
                          restart=restartable, exc_info=True)
                self._alert("feed_failed", f"feed {feed.name} failed: {type(exc).__name__}: "
                            f"{exc}", severity="critical", key=f"feed_failed:{feed.name}",
                            feed=feed.name, restart=restartable)
            if not restartable:
                return
            await self._clock.sleep(feed.restart_delay_s)

    # --- the hot path --------------------------------------------------------------------
    @property
    def symbol_index(self) -> dict[str, int] | None:
        return self._table.index

    @symbol_index.setter
    def symbol_index(self, index: dict[str, int] | None) -> None:
        """The universe the published columns are over (set before the first batch: the
        per-symbol state starts afresh)."""
        venue = self._feeds[0].feed.venue if self._feeds else ""
        self._table = SymbolTable(index, venue)
        self._check = Validator(self._table, window=self._dedup_window,
                                tolerance_ns=self._tol_ns)

    def ingest(self, feed_name: str, batch: object) -> Sequence[Tick]:
        """Validate and normalize one batch (``list[Tick]`` or :class:`TickColumns`) from
        ``feed_name``; publish, cache and write the accepted ticks; return them (a
        :class:`TickBatch`). Never raises on bad data."""
        st = self._by_name[feed_name]
        now = self._clock.now_ns()
        st.batches += 1
        if not isinstance(batch, list | tuple | TickColumns):
            st.rejected["malformed"] += 1
            self._warn(st, now, batch_type=type(batch).__name__)
            return []
        if not len(batch):
            return []
        st.ticks += len(batch)
        st.last_recv_ns = now
        if st.stale:
            self._recovered(st, now)
        items = self._throttle(st, batch, now)
        rej = st.rejected
        raw = self._check.raw(items, st.feed.venue)
        counts = np.zeros(N_COUNTS, np.int64)
        out = self._check.accept(raw, now, counts)
        rej["malformed"] += raw.malformed
        for reason, n in zip(REASONS[:6], counts.tolist(), strict=True):
            rej[reason] += n
        st.accepted += len(out)
        if self._cache is not None:
            for t in out.last_ticks():
                self._pending_cache[(t.venue, t.symbol)] = t
        if len(out) != len(batch):
            self._warn(st, now)
        if self.tick_writer is not None and len(out):
            try:
                self.tick_writer.offer_many(out)      # one call per batch
            except Exception as exc:     # the store must never break the market-data path
                log.error("tick_writer_offer_failed", feed=feed_name, error=repr(exc))
        if len(out):
            try:
                self._publish(out)
                self.published += 1
            except Exception as exc:
                self.publish_errors += 1
                log.error("tick_publish_failed", feed=feed_name, ticks=len(out),
                          error=f"{type(exc).__name__}: {exc}")
        return out

    def _throttle(self, st: _FeedState, batch: Batch, now: int) -> Batch:
        feed = st.feed
        dropped = 0
        if feed.max_batch is not None and len(batch) > feed.max_batch:
            dropped = len(batch) - feed.max_batch
            batch = _tail(batch, dropped)
        if feed.max_per_second is not None:
            window = now // NS
            if window != st.window:
                st.window, st.window_count = window, 0
            room = max(0, feed.max_per_second - st.window_count)
            if len(batch) > room:
                cut = len(batch) - room
                dropped += cut
                batch = _tail(batch, cut)
            st.window_count += len(batch)
        if dropped:
            st.rejected["flood"] += dropped
            last = st.last_flood_alert_ns
            if last is None or now - last >= self._flood_alert_ns:
                st.last_flood_alert_ns = now
                log.warning("feed_flooding", feed=feed.name, dropped=dropped,
                            dropped_total=st.rejected["flood"], max_batch=feed.max_batch,
                            max_per_second=feed.max_per_second)
                self._alert("feed_flood", f"feed {feed.name} is flooding: dropped {dropped} "
                            "oldest ticks", severity="warning", key=f"feed_flood:{feed.name}",
                            feed=feed.name, dropped_total=st.rejected["flood"])
        return batch

    def _warn(self, st: _FeedState, now: int, **fields: Any) -> None:
        """Log rejections at most once per ``warn_interval_s`` per feed, with the counts since."""
        last = st.last_warn_ns
        if last is not None and now - last < self._warn_ns:
            return
        st.last_warn_ns = now
        since = {r: n - st.warned[r] for r, n in st.rejected.items() if n != st.warned[r]}
        st.warned = dict(st.rejected)
        if since:
            log.warning("ticks_rejected", feed=st.feed.name, since_last=since,
                        totals={r: n for r, n in st.rejected.items() if n}, **fields)

    # --- last-price cache ----------------------------------------------------------------
    async def _cache_loop(self) -> None:
        while True:
            await self._clock.sleep(self.cache_interval_s)
            await self.flush_cache()

    async def flush_cache(self) -> int:
        """Write the newest accepted tick of every symbol seen since the last flush."""
        if self._cache is None or not self._pending_cache:
            return 0
        pending, self._pending_cache = self._pending_cache, {}
        written = 0
        for tick in pending.values():
            try:
                await set_last_price(self._cache, tick)
                written += 1
            except Exception as exc:
                self.cache_errors += 1
                log.error("last_price_cache_failed", symbol=tick.symbol, venue=tick.venue,
                          error=f"{type(exc).__name__}: {exc}")
                break          # the cache is down: try again next interval, keep the hot path
        self.cache_writes += written
        return written

    # --- staleness -----------------------------------------------------------------------
    async def _watchdog(self) -> None:
        while True:
            await self._clock.sleep(self.check_interval_s)
            self.check_stale()

    def check_stale(self) -> None:
        """Mark feeds silent beyond their threshold during their session as stale."""
        now = self._clock.now_ns()
        for st in self._feeds:
            feed = st.feed
            if feed.calendar.session_at(now) not in feed.session_phases:
                st.active_since = None
                continue
            if st.active_since is None:
                st.active_since = now
            if st.stale:
                continue
            ref = max(st.last_recv_ns or 0, st.active_since, self._started_ns)
            silent_s = (now - ref) / NS
            limit = feed.stale_after_s if feed.stale_after_s is not None else self.stale_after_s
            if silent_s > limit:
                st.stale = True
                st.stale_count += 1
                log.warning("feed_stale", feed=feed.name, silent_s=round(silent_s, 3),
                            stale_after_s=limit)
                self._alert("feed_stale", f"feed {feed.name} has sent no ticks for "
                            f"{silent_s:.0f} s", severity="warning",
                            key=f"feed_stale:{feed.name}", feed=feed.name,
                            age_s=round(silent_s, 3))

    def _recovered(self, st: _FeedState, now: int) -> None:
        st.stale = False
        log.info("feed_recovered", feed=st.feed.name)
        self._alert("feed_recovered", f"feed {st.feed.name} recovered", severity="info",
                    key=f"feed_recovered:{st.feed.name}", feed=st.feed.name)

    def _alert(self, kind: str, message: str, **fields: Any) -> None:
        self.alerts += 1
        if self._on_alert is None:
            return
        try:
            self._on_alert(kind, message, **fields)
        except Exception as exc:     # alerting must never break the collector
            log.error("collector_alert_failed", kind=kind, error=f"{type(exc).__name__}: {exc}")

    # --- status --------------------------------------------------------------------------
    def status(self) -> list[dict[str, Any]]:
        """One dict per feed, for ``jts status`` and the dashboard."""
        now = self._clock.now_ns()
        out = []
        for st in self._feeds:
            feed = st.feed
            age = None if st.last_recv_ns is None else round((now - st.last_recv_ns) / NS, 3)
            out.append({
                "name": feed.name, "venue": feed.venue, "state": st.state,
                "ticks": st.ticks, "batches": st.batches, "accepted": st.accepted,
                "rejected": dict(st.rejected), "rejected_total": sum(st.rejected.values()),
                "last_tick_age_s": age, "stale": st.stale, "stale_count": st.stale_count,
                "in_session": feed.calendar.session_at(now) in feed.session_phases,
                "errors": st.errors,
            })
        return out

    def totals(self) -> dict[str, Any]:
        """Collector-wide counters: publishes, cache writes, writer drops, alerts."""
        return {"published": self.published, "publish_errors": self.publish_errors,
                "cache_writes": self.cache_writes, "cache_errors": self.cache_errors,
                "cache_pending": len(self._pending_cache),
                "writer_dropped": self.tick_writer.dropped if self.tick_writer is not None else 0,
                "symbols": len(self._table), "alerts": self.alerts}
