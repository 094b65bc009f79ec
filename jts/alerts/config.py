"""The ``[alerts]`` table of jts.toml: which alert kinds are on, where each goes, and how
each sink (dashboard, Telegram, webhook, email) is reached, retried, de-duplicated and
throttled.

Secrets are never inline: ``bot_token_env``, ``secret_env``, ``auth_env`` and
``password_env`` name the environment variable that holds them (resolved when the
:class:`~jts.alerts.notifier.Notifier` is built, through ``jts.config.resolve_secret``).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Severity = Literal["info", "warning", "critical"]
SinkName = Literal["dashboard", "telegram", "webhook", "email"]
SINK_NAMES: tuple[SinkName, ...] = ("dashboard", "telegram", "webhook", "email")
KINDS: tuple[str, ...] = ("fill", "order_rejected", "risk_limit", "daily_loss", "feed_stale",
                          "broker_disconnected", "surge_candidate", "daemon_started")

NonNeg = Annotated[float, msgspec.Meta(ge=0)]
Timeout = Annotated[float, msgspec.Meta(gt=0, le=300)]
Retries = Annotated[int, msgspec.Meta(ge=0, le=20)]
QueueSize = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
PerMinute = Annotated[int, msgspec.Meta(ge=0, le=100_000)]


class _Table(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class Rule(_Table, frozen=True):
    """One alert kind: on or off, its default severity and the sinks it goes to.

    ``sinks`` left out means every enabled sink; an empty list means nowhere.
    """

    enabled: bool = True
    severity: Severity = "info"
    sinks: list[str] | None = None

    def __post_init__(self) -> None:
        for name in self.sinks or ():
            if name not in SINK_NAMES:
                raise ValueError(f"sinks: unknown sink {name!r} (expected one of "
                                 f"{', '.join(repr(n) for n in SINK_NAMES)})")


class Rules(_Table, frozen=True):
    fill: Rule = Rule()
    order_rejected: Rule = Rule(severity="warning")
    risk_limit: Rule = Rule(severity="warning")
    daily_loss: Rule = Rule(severity="critical")
    feed_stale: Rule = Rule(severity="warning")
    broker_disconnected: Rule = Rule(severity="critical")
    # surges are frequent: the dashboard only unless routed elsewhere on purpose
    surge_candidate: Rule = Rule(sinks=["dashboard"])
    daemon_started: Rule = Rule()
    # kinds not listed above (custom notify() calls)
    other: Rule = Rule(sinks=["dashboard"])

    def get(self, kind: str) -> Rule:
        rule: Rule = getattr(self, kind, self.other) if kind in KINDS else self.other
        return rule


class _Sink(_Table, frozen=True):
    """Settings every sink shares."""

    enabled: bool = False
    min_severity: Severity = "info"
    queue_size: QueueSize = 1000
    max_per_minute: PerMinute = 20          # 0 = unlimited
    dedup_window: NonNeg = 60.0             # seconds; same key within it is sent once
    retries: Retries = 3                    # extra attempts after the first
    backoff_initial: Annotated[float, msgspec.Meta(gt=0, le=600)] = 1.0
    backoff_max: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 60.0
    timeout: Timeout = 10.0                 # seconds per attempt (wall time)


class DashboardSink(_Sink, frozen=True):
    enabled: bool = True
    max_per_minute: PerMinute = 0
    dedup_window: NonNeg = 10.0
    retries: Retries = 0
    history: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 500
    subscriber_queue: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 256


class TelegramSink(_Sink, frozen=True):
    bot_token_env: str = ""
    chat_id: str = ""
    base_url: str = "https://api.telegram.org"
    # info alerts arrive without a sound on the phone
    silent_info: bool = True

    def __post_init__(self) -> None:
        if self.enabled:
            _require(self, "bot_token_env", "chat_id", "base_url")
            _url(self.base_url, "base_url")


class WebhookSink(_Sink, frozen=True):
    url: str = ""
    method: Literal["POST", "PUT"] = "POST"
    headers: dict[str, str] = {}            # non-secret headers only
    auth_env: str = ""                      # env var holding the Authorization header value
    secret_env: str = ""                    # env var holding the HMAC-SHA256 key
    signature_header: str = "X-JTS-Signature"
    extra: dict[str, str] = {}              # static JSON fields (an SMS gateway's "to", …)

    def __post_init__(self) -> None:
        if self.enabled:
            _require(self, "url")
            _url(self.url, "url")
        for name in self.headers:
            if name.lower() in ("authorization", "cookie", "x-api-key"):
                raise ValueError(f"headers.{name}: secrets are never written inline — put "
                                 f"the value in an environment variable and name it in auth_env")


class EmailSink(_Sink, frozen=True):
    max_per_minute: PerMinute = 6
    host: str = ""
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 587
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str = ""
    password_env: str = ""
    from_addr: str = ""
    to: list[str] = []
    subject_prefix: str = "[JTS]"

    def __post_init__(self) -> None:
        if self.enabled:
            _require(self, "host", "from_addr", "to")
        for addr in (self.from_addr, *self.to):
            if addr and "@" not in addr:
                raise ValueError(f"not an email address: {addr!r}")
        if self.password_env and not self.username:
            raise ValueError("password_env needs username")


class AlertsConfig(_Table, frozen=True):
    enabled: bool = True
    # daily_loss fires once a day when today's loss reaches this many KRW; 0 means
    # daily_loss_fraction × [risk] max_daily_loss
    daily_loss_threshold: NonNeg = 0.0
    daily_loss_fraction: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.8
    rules: Rules = Rules()
    dashboard: DashboardSink = DashboardSink()
    telegram: TelegramSink = TelegramSink()
    webhook: WebhookSink = WebhookSink()
    email: EmailSink = EmailSink()

    def sink(self, name: str) -> _Sink:
        cfg: _Sink = getattr(self, name)
        return cfg

    def enabled_sinks(self) -> list[SinkName]:
        return [n for n in SINK_NAMES if self.sink(n).enabled]


def _require(cfg: _Sink, *fields: str) -> None:
    for f in fields:
        if not getattr(cfg, f):
            raise ValueError(f"{f} is required when the sink is enabled")


def _url(value: str, field: str) -> None:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"{field} must be an http:// or https:// URL, got {value!r}")


__all__ = ["KINDS", "SINK_NAMES", "AlertsConfig", "DashboardSink", "EmailSink", "Rule", "Rules",
           "Severity", "SinkName", "TelegramSink", "WebhookSink"]
