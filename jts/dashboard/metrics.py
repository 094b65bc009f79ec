"""Fan-out measurements the dashboard keeps about itself: recent timed samples and the
event-loop lag monitor.

:class:`Samples` is a bounded ring of ``(wall ns, value)`` pairs summarised as
count/p50/p99/max over the samples taken since a given time (``GET /api/fanout?since=``),
so a benchmark can ask for exactly its measuring window. :class:`LoopLag` sleeps a fixed
interval on the daemon's event loop and records how late each wake-up was: the delay every
other task on that loop (trading included) saw at that moment. It also records how much of
that lateness the loop's thread itself spent on a CPU (at most): a late wake-up with little
CPU behind it means the process was waiting for a core (other processes), one with CPU
behind it means something on the loop ran too long. While it runs it also times the
interpreter's full (generation 2) garbage collections, a usual cause of such stalls.
"""

from __future__ import annotations

import gc
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from jts.clock import NS, Clock


class Samples:
    def __init__(self, maxlen: int = 8192) -> None:
        self._ring: deque[tuple[int, float]] = deque(maxlen=maxlen)

    def add(self, ts_ns: int, value: float) -> None:
        self._ring.append((ts_ns, value))

    def summary(self, since_ns: int = 0) -> dict[str, Any]:
        """``{"n", "p50", "p99", "max"}`` over the kept samples taken at or after
        ``since_ns`` (nearest-rank percentiles; ``None`` when there are none)."""
        xs = sorted(v for t, v in self._ring if t >= since_ns)
        if not xs:
            return {"n": 0, "p50": None, "p99": None, "max": None}

        def rank(p: int) -> float:
            return xs[max(0, -(-len(xs) * p // 100) - 1)]
        return {"n": len(xs), "p50": rank(50), "p99": rank(99), "max": xs[-1]}


class LoopLag:
    """Records, in ms, how late ``clock.sleep(interval)`` returns on the running loop
    (``samples``) and, per wake-up, ``min(lateness, CPU the thread used while asleep)``
    (``on_cpu``; ``thread_cpu`` gives the thread's CPU seconds)."""

    def __init__(self, clock: Clock, interval: float = 0.05, maxlen: int = 8192, *,
                 thread_cpu: Callable[[], float] = time.thread_time) -> None:
        self.clock = clock
        self.interval = interval
        self._thread_cpu = thread_cpu
        self.samples = Samples(maxlen)
        self.on_cpu = Samples(maxlen)
        self.gc_full_ms = Samples(1024)
        self._gc_t0 = 0.0

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._gc_t0 = time.perf_counter()
        elif self._gc_t0:
            self.gc_full_ms.add(time.time_ns(), (time.perf_counter() - self._gc_t0) * 1000)
            self._gc_t0 = 0.0

    async def run(self) -> None:
        step = int(self.interval * NS)
        gc.callbacks.append(self._on_gc)
        try:
            while True:
                due = self.clock.now_ns() + step
                cpu0 = self._thread_cpu()
                await self.clock.sleep(self.interval)
                now = self.clock.now_ns()
                late = max(0, now - due) / 1e6
                self.samples.add(now, late)
                self.on_cpu.add(now, min(late, (self._thread_cpu() - cpu0) * 1000))
        finally:
            gc.callbacks.remove(self._on_gc)
