"""Alert sinks: where an alert is delivered. Each sink knows one transport and reports a
failure as :class:`DeliveryError`, saying whether retrying can help; retries, de-duplication,
throttling and latency are the delivery worker's job (``jts.alerts.delivery``)."""

from __future__ import annotations

from typing import Protocol

from jts.alerts.model import Alert
from jts.errors import JTSError


class DeliveryError(JTSError):
    """A sink could not deliver. ``retryable`` says whether another attempt may succeed;
    ``retry_after`` is the remote side's own hint in seconds (Telegram 429, Retry-After)."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        self.retryable = retryable
        self.retry_after = retry_after
        super().__init__(message)


class Sink(Protocol):
    name: str

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def send(self, alert: Alert, suppressed: int) -> None:
        """Deliver one alert (``suppressed`` alerts were throttled since the last one)."""


__all__ = ["DeliveryError", "Sink"]
