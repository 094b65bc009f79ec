"""Request budgets for venues: priority lanes over a window limit, on an injected clock.

A :class:`RateLimiter` hands out at most ``limit`` permits per ``window`` seconds. Two window
semantics are offered, both exact (the limiter itself never exceeds the budget):

* ``aligned=True`` — fixed windows aligned to the clock (``now // window``), the venue's
  own semantics when the venue's and our clocks agree (the KIS simulator, Binance minutes).
* ``aligned=False`` (default) — every run of ``limit`` consecutive permits spans at least
  ``window + margin`` seconds. This is the safe choice against a venue whose fixed windows
  are aligned to a clock we cannot see (KIS): whatever the venue's window phase, and with
  network jitter below ``margin``, no venue window ever sees more than ``limit`` requests.
  Under saturation it still delivers ``limit / (window + margin)`` per second
  (95 % with a 50 ms margin on a 1 s window).

Waiters are served strictly by lane (``Lane.ORDER`` before ``Lane.REALTIME`` before
``Lane.BACKGROUND``), first-come within a lane. When the venue nevertheless answers
"slow down" (KIS ``EGW00201``), :meth:`RateLimiter.penalize` blocks every lane for an
exponentially growing pause, counts the event and (``adaptive``) withdraws one permit per
window until ``recover_after`` seconds pass without complaint — a budget configured above
the venue's real limit converges to it instead of failing forever. :meth:`RateLimiter.stats`
feeds ``jts status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import heapq
import itertools
from collections import deque

import msgspec
import structlog

from jts.clock import NS, Clock

log = structlog.get_logger(__name__)


class Lane(enum.IntEnum):
    """Priority lanes; a lower value is served first."""

    ORDER = 0        # orders, modifications, cancels
    REALTIME = 1     # quotes feeding live decisions
    BACKGROUND = 2   # history backfill, reconciliation sweeps


class LaneStats(msgspec.Struct, frozen=True):
    granted: int
    waiting: int
    waited_seconds: float


class RateLimitStats(msgspec.Struct, frozen=True):
    """A snapshot for ``jts status``."""

    name: str
    limit: int
    effective_limit: int        # lower than limit after the venue complained (adaptive)
    window: float
    granted: int
    venue_limited: int          # times the venue said "too many" (EGW00201, 429, ...)
    blocked_for: float          # seconds of penalty pause still ahead
    lanes: dict[str, LaneStats]


_Waiter = tuple[int, int, asyncio.Future[None]]


class RateLimiter:
    """``limit`` permits per ``window`` seconds, served by priority lane."""

    def __init__(self, limit: int, window: float = 1.0, *, clock: Clock, name: str = "",
                 aligned: bool = False, margin: float = 0.0, backoff_initial: float = 1.0,
                 backoff_max: float = 60.0, adaptive: bool = True,
                 recover_after: float = 30.0) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if window <= 0 or margin < 0:
            raise ValueError("window must be positive and margin non-negative")
        self.name = name
        self.limit = limit
        self.window = window
        self.aligned = aligned
        self._clock = clock
        self.adaptive = adaptive
        self._window_ns = int(window * NS)
        self._margin_ns = int(margin * NS)
        # the time each of the `limit` slots becomes free again, oldest first
        self._free_at: deque[int] = deque([0] * limit)
        self._recover_ns = int(recover_after * NS)
        self._last_penalty = 0
        self._blocked_until = 0
        self._backoff0 = backoff_initial
        self._backoff_max = backoff_max
        self._backoff = backoff_initial
        self._waiters: list[_Waiter] = []
        self._seq = itertools.count()
        self._pump: asyncio.Task[None] | None = None
        self._granted = dict.fromkeys(Lane, 0)
        self._waited_ns = dict.fromkeys(Lane, 0)
        self._venue_limited = 0

    # -- permits ------------------------------------------------------------------------

    def _available_at(self) -> int:
        return max(self._free_at[0], self._blocked_until)

    def _take(self, lane: Lane, now: int) -> None:
        self._free_at.popleft()
        if self.aligned:
            free = (now // self._window_ns + 1) * self._window_ns
        else:
            free = now + self._window_ns + self._margin_ns
        self._free_at.append(free)
        self._granted[lane] += 1

    def try_acquire(self, lane: Lane = Lane.BACKGROUND) -> bool:
        """Take a permit now if one is free and nobody of equal or higher priority waits."""
        now = self._clock.now_ns()
        if self._available_at() > now:
            return False
        if any(w[0] <= lane and not w[2].done() for w in self._waiters):
            return False
        self._take(lane, now)
        return True

    async def acquire(self, lane: Lane = Lane.BACKGROUND) -> None:
        """Wait for a permit in ``lane``."""
        if self.try_acquire(lane):
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (int(lane), next(self._seq), fut))
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(self._serve())
        start = self._clock.now_ns()
        await fut
        self._waited_ns[lane] += self._clock.now_ns() - start

    async def _serve(self) -> None:
        while self._waiters:
            lane, _, fut = self._waiters[0]
            if fut.done():              # cancelled while waiting
                heapq.heappop(self._waiters)
                continue
            now = self._clock.now_ns()
            at = self._available_at()
            if at > now:
                await self._clock.sleep((at - now) / NS)
                continue
            heapq.heappop(self._waiters)
            self._take(Lane(lane), now)
            fut.set_result(None)
            await asyncio.sleep(0)      # let the granted task run before the next grant

    async def aclose(self) -> None:
        """Stop the dispatcher (pending waiters are cancelled)."""
        for _, _, fut in self._waiters:
            fut.cancel()
        self._waiters.clear()
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump

    # -- venue feedback -----------------------------------------------------------------

    def penalize(self, retry_after: float | None = None) -> float:
        """The venue said "too many requests": pause every lane and count it.

        Returns the pause in seconds (``retry_after`` when the venue gave one, else the
        current exponential backoff, which doubles up to ``backoff_max``)."""
        pause = retry_after if retry_after is not None else self._backoff
        self._backoff = min(self._backoff * 2, self._backoff_max)
        now = self._clock.now_ns()
        self._blocked_until = max(self._blocked_until, now + int(pause * NS))
        self._venue_limited += 1
        # one permit fewer per window from now on (once per window: a burst of rejections
        # for requests already in flight is one complaint, not many)
        if (self.adaptive and len(self._free_at) > 1
                and now - self._last_penalty >= self._window_ns):
            self._free_at.pop()
        self._last_penalty = now
        log.warning("rate_limited_by_venue", limiter=self.name, pause=pause,
                    count=self._venue_limited, effective_limit=len(self._free_at))
        return pause

    def succeeded(self) -> None:
        """A request went through: reset the backoff, and after ``recover_after`` seconds
        without complaints give back one permit that :meth:`penalize` took away."""
        self._backoff = self._backoff0
        now = self._clock.now_ns()
        if len(self._free_at) < self.limit and now - self._last_penalty >= self._recover_ns:
            self._free_at.appendleft(min(now, self._free_at[0]))
            self._last_penalty = now

    @property
    def effective_limit(self) -> int:
        return len(self._free_at)

    # -- introspection ------------------------------------------------------------------

    def stats(self) -> RateLimitStats:
        now = self._clock.now_ns()
        waiting = dict.fromkeys(Lane, 0)
        for lane, _, fut in self._waiters:
            if not fut.done():
                waiting[Lane(lane)] += 1
        return RateLimitStats(
            name=self.name, limit=self.limit, effective_limit=len(self._free_at),
            window=self.window,
            granted=sum(self._granted.values()), venue_limited=self._venue_limited,
            blocked_for=max(0, self._blocked_until - now) / NS,
            lanes={lane.name.lower(): LaneStats(self._granted[lane], waiting[lane],
                                                self._waited_ns[lane] / NS)
                   for lane in Lane})
