"""The dashboard sink: an in-process fan-out of alerts to live pages plus a bounded history.

``subscribe()`` hands each page (WebSocket connection) its own drop-oldest channel, so a slow
browser loses its own oldest alerts and never delays the notifier or another page.
"""

from __future__ import annotations

from collections import deque

import structlog

from jts.alerts.model import Alert
from jts.channel import Channel, ChannelClosed, Overflow

log = structlog.get_logger(__name__)


class DashboardFeed:
    name = "dashboard"

    def __init__(self, history: int = 500, subscriber_queue: int = 256) -> None:
        self._history: deque[Alert] = deque(maxlen=history)
        self._subs: list[Channel[Alert]] = []
        self._subscriber_queue = subscriber_queue
        self._next_sub = 0
        self.published = 0

    def subscribe(self, capacity: int | None = None) -> Channel[Alert]:
        """A new channel that receives every alert delivered from now on."""
        self._next_sub += 1
        ch: Channel[Alert] = Channel(f"alerts->dashboard#{self._next_sub}",
                                     capacity or self._subscriber_queue, Overflow.DROP_OLDEST)
        self._subs.append(ch)
        return ch

    def unsubscribe(self, ch: Channel[Alert]) -> None:
        ch.close()
        if ch in self._subs:
            self._subs.remove(ch)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def recent(self, n: int = 50) -> list[Alert]:
        """The last ``n`` alerts, oldest first."""
        if n <= 0:
            return []
        items = list(self._history)
        return items[-n:]

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        for ch in list(self._subs):
            ch.close()
        self._subs.clear()

    async def send(self, alert: Alert, suppressed: int) -> None:
        self._history.append(alert)
        self.published += 1
        for ch in list(self._subs):
            try:
                ch.send_nowait(alert)
            except ChannelClosed:
                self._subs.remove(ch)
