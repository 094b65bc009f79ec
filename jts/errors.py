"""The one JTS error tree.

Every exception JTS raises on purpose derives from :class:`JTSError`, named for what the
caller does about it::

    JTSError
    ├── ConfigError            bad jts.toml / strategy TOML / CLI argument (file, key path, line)
    ├── DSLError               a strategy formula that does not parse, type-check or resolve
    ├── StrategyError          a strategy that failed at run time (it is disabled, others go on)
    ├── DataError              bad market data (CSV rows, broker payloads, out-of-order ticks)
    ├── StorageError           a store that cannot be opened, migrated or verified
    ├── DaemonError            lifecycle: already running, not running, port in use
    ├── BrokerError            anything a broker adapter reports
    │   ├── TransientError     retry later is safe (network blip, 5xx before send)
    │   │   └── RateLimited    the venue said slow down (EGW00201, 429, Creon 4)
    │   ├── AuthError          credentials or token refused
    │   ├── OrderRejected      the venue refused the order; it never became live
    │   ├── OrderOutcomeUnknown sent, but we cannot know whether it took: ask, never resubmit
    │   └── BrokerUnavailable  the venue or bridge cannot be reached at all
    └── InvariantError         something that must never happen did: halt rather than guess

Rejections by the risk gate are values (``RiskDecision``), not exceptions.
"""

from __future__ import annotations


class JTSError(Exception):
    """Base of every error JTS raises deliberately."""


class ConfigError(JTSError):
    """A configuration problem; ``str()`` is a complete one-line message naming file and key."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None,
                 line: int | None = None) -> None:
        self.file = file
        self.key = key
        self.line = line
        self.message = message
        where = ""
        if file:
            where = file + (f":{line}" if line else "")
        if key:
            where = f"{where}: {key}" if where else key
        super().__init__(f"{where}: {message}" if where else message)


class DSLError(JTSError):
    """A strategy-formula error with a source position."""


class StrategyError(JTSError):
    """A strategy failed while running."""


class DataError(JTSError):
    """Market or imported data that cannot be accepted."""


class StorageError(JTSError):
    """A store cannot be opened, migrated, written or verified."""


class DaemonError(JTSError):
    """Daemon lifecycle and control-endpoint problems."""


class BrokerError(JTSError):
    """Base of broker adapter errors; ``code`` is the venue's own error code when known."""

    def __init__(self, message: str, *, code: str | None = None, broker: str | None = None) -> None:
        self.code = code
        self.broker = broker
        super().__init__(message)


class TransientError(BrokerError):
    """A failure after which retrying (reads, or sends that certainly did not leave) is safe."""


class RateLimited(TransientError):
    """The venue asked us to slow down."""

    def __init__(self, message: str, *, code: str | None = None, broker: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, code=code, broker=broker)
        self.retry_after = retry_after


class AuthError(BrokerError):
    """Credentials or token refused."""


class OrderRejected(BrokerError):
    """The venue refused the order; it never became live."""


class OrderOutcomeUnknown(BrokerError):
    """The order may or may not have reached the venue: resolve by querying, never resubmit."""


class BrokerUnavailable(BrokerError):
    """The venue (or the Creon bridge) cannot be reached."""


class InvariantError(JTSError):
    """An internal invariant broke; the daemon halts trading rather than guess."""
