"""One delivery worker per sink: a bounded queue, de-duplication, throttling, retries with
backoff and delivery-latency measurement — so a failing or slow sink only ever delays its
own alerts.

Order of decisions for an alert offered to a sink:

1. below the sink's ``min_severity`` → ignored;
2. same ``key`` accepted within ``dedup_window`` seconds → counted ``deduplicated``;
3. queue full → the oldest queued alert is dropped (counted ``dropped``);
4. at send time, ``max_per_minute`` already used in the last 60 s → a non-critical alert is
   counted ``throttled`` and mentioned in the next delivered message; a critical one waits
   for the window to open;
5. a retryable failure is tried again after ``backoff_initial·2ⁿ`` (capped at
   ``backoff_max``, or the remote ``retry_after`` hint) up to ``retries`` more times.

All waiting uses the injected clock; only the per-attempt ``timeout`` is wall time.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from jts.alerts.config import _Sink
from jts.alerts.model import SEVERITY_RANK, Alert
from jts.alerts.sinks import DeliveryError, Sink
from jts.clock import NS, Clock, iso_utc
from jts.log import redact_text

log = structlog.get_logger(__name__)
_WINDOW_NS = 60 * NS
_LATENCY_SAMPLES = 4096


@dataclass
class SinkStats:
    offered: int = 0
    delivered: int = 0
    failed: int = 0
    retried: int = 0
    deduplicated: int = 0
    throttled: int = 0
    dropped: int = 0
    below_severity: int = 0
    last_error: str = ""
    last_delivered_ns: int = 0
    latencies_ns: deque[int] = field(default_factory=lambda: deque(maxlen=_LATENCY_SAMPLES))


def percentile(sorted_values: list[int], q: float) -> int:
    """Nearest-rank percentile of an ascending list (``q`` in 0..100)."""
    if not sorted_values:
        return 0
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


class SinkWorker:
    def __init__(self, name: str, sink: Sink, cfg: _Sink, clock: Clock) -> None:
        self.name = name
        self.sink = sink
        self.cfg = cfg
        self.clock = clock
        self.stats = SinkStats()
        self._queue: deque[Alert] = deque()
        self._ready = asyncio.Event()
        self._seen: dict[str, int] = {}
        self._sent: deque[int] = deque()
        self._suppressed = 0
        self._busy = False
        self._waiters: list[asyncio.Event] = []
        self._min_rank = SEVERITY_RANK[cfg.min_severity]

    # --- producer side (synchronous, never blocks) -------------------------------------
    def offer(self, alert: Alert) -> bool:
        """Queue ``alert`` for this sink; False when filtered out or a duplicate."""
        st = self.stats
        if SEVERITY_RANK.get(alert.severity, 0) < self._min_rank:
            st.below_severity += 1
            return False
        window = int(self.cfg.dedup_window * NS)
        if window:
            last = self._seen.get(alert.key)
            if last is not None and alert.ts_ns - last < window:
                st.deduplicated += 1
                self._progress()
                return False
            self._seen[alert.key] = alert.ts_ns
            if len(self._seen) > 4096:
                self._seen = {k: t for k, t in self._seen.items() if alert.ts_ns - t < window}
        st.offered += 1
        if len(self._queue) >= self.cfg.queue_size:
            self._queue.popleft()
            st.dropped += 1
            if st.dropped == 1 or st.dropped % 100 == 0:
                log.warning("alert_queue_overflow", sink=self.name, dropped=st.dropped,
                            capacity=self.cfg.queue_size)
        self._queue.append(alert)
        self._ready.set()
        return True

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def idle(self) -> bool:
        return not self._queue and not self._busy

    # --- consumer side -----------------------------------------------------------------
    async def run(self) -> None:
        await self.sink.open()
        try:
            while True:
                while not self._queue:
                    self._ready.clear()
                    self._progress()
                    await self._ready.wait()
                alert = self._queue.popleft()
                self._busy = True
                try:
                    await self._deliver(alert)
                finally:
                    self._busy = False
                    self._progress()
        finally:
            await self.sink.close()

    async def _deliver(self, alert: Alert) -> None:
        limit = self.cfg.max_per_minute
        if limit:
            while True:
                now = self.clock.now_ns()
                while self._sent and now - self._sent[0] >= _WINDOW_NS:
                    self._sent.popleft()
                if len(self._sent) < limit:
                    break
                if alert.severity != "critical":
                    self.stats.throttled += 1
                    self._suppressed += 1
                    return
                await self.clock.sleep((self._sent[0] + _WINDOW_NS - now) / NS)
        attempt = 0
        while True:
            try:
                async with asyncio.timeout(self.cfg.timeout):
                    await self.sink.send(alert, self._suppressed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a sink must never kill its worker
                err = exc if isinstance(exc, DeliveryError) else DeliveryError(
                    redact_text(f"{self.name}: {type(exc).__name__}: {exc}"),
                    retryable=isinstance(exc, TimeoutError))
                self.stats.last_error = str(err)
                if not err.retryable or attempt >= self.cfg.retries:
                    self.stats.failed += 1
                    log.warning("alert_delivery_failed", sink=self.name, alert_id=alert.id,
                                kind=alert.kind, attempts=attempt + 1, error=str(err))
                    return
                delay = min(self.cfg.backoff_max, self.cfg.backoff_initial * 2 ** attempt)
                if err.retry_after is not None:
                    delay = min(max(delay, err.retry_after), self.cfg.backoff_max)
                attempt += 1
                self.stats.retried += 1
                log.info("alert_delivery_retry", sink=self.name, alert_id=alert.id,
                         attempt=attempt, delay_s=delay, error=str(err))
                self._progress()
                await self.clock.sleep(delay)
                continue
            now = self.clock.now_ns()
            self._sent.append(now)
            self._suppressed = 0
            self.stats.delivered += 1
            self.stats.last_delivered_ns = now
            self.stats.latencies_ns.append(max(0, now - alert.ts_ns))
            return

    # --- observation -------------------------------------------------------------------
    def _progress(self) -> None:
        waiters, self._waiters = self._waiters, []
        for ev in waiters:
            ev.set()

    async def wait_until(self, predicate: Callable[[SinkStats], bool]) -> None:
        """Wait until ``predicate(stats)`` holds (checked after every queue/delivery step)."""
        while not predicate(self.stats):
            ev = asyncio.Event()
            self._waiters.append(ev)
            await ev.wait()

    async def wait_idle(self) -> None:
        """Wait until the queue is empty and nothing is being sent."""
        while not self.idle:
            ev = asyncio.Event()
            self._waiters.append(ev)
            await ev.wait()

    def status(self) -> dict[str, Any]:
        st = self.stats
        lat = sorted(st.latencies_ns)
        return {
            "enabled": True, "queued": len(self._queue), "offered": st.offered,
            "delivered": st.delivered, "failed": st.failed, "retried": st.retried,
            "deduplicated": st.deduplicated, "throttled": st.throttled, "dropped": st.dropped,
            "below_severity": st.below_severity, "last_error": st.last_error,
            "last_delivered_at": iso_utc(st.last_delivered_ns) if st.last_delivered_ns else None,
            "latency_ms": {"n": len(lat), "p50": round(percentile(lat, 50) / 1e6, 3),
                           "p99": round(percentile(lat, 99) / 1e6, 3),
                           "max": round((lat[-1] if lat else 0) / 1e6, 3)},
        }
