"""The :class:`Notifier`: the one entry point for alerts.

``notify()`` is synchronous, O(sinks), never raises and never waits: it applies the rule for
the alert's kind (enabled? which sinks? default severity) and offers the alert to each routed
sink's delivery worker. ``run()`` is the supervised daemon component that drives the workers
(one task per sink) until cancelled.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Mapping
from typing import Any

import structlog

from jts.alerts.config import SINK_NAMES, AlertsConfig
from jts.alerts.delivery import SinkWorker
from jts.alerts.hooks import EventHooks
from jts.alerts.model import SEVERITY_RANK, Alert, plain
from jts.alerts.sinks import Sink
from jts.alerts.sinks.dashboard import DashboardFeed
from jts.clock import Clock, LiveClock

log = structlog.get_logger(__name__)


def build_sinks(cfg: AlertsConfig, *, file: str = "") -> dict[str, Sink]:
    """The enabled external sinks, with their secrets resolved from the environment
    (a missing variable is a :class:`~jts.errors.ConfigError` naming the key)."""
    from jts.config import resolve_secret

    def secret(env: str, key: str) -> str:
        return resolve_secret(env, key=f"alerts.{key}", file=file) if env else ""

    sinks: dict[str, Sink] = {}
    if cfg.telegram.enabled:
        from jts.alerts.sinks.http import TelegramBot

        token = secret(cfg.telegram.bot_token_env, "telegram.bot_token_env")
        sinks["telegram"] = TelegramBot(cfg.telegram, token)
    if cfg.webhook.enabled:
        from jts.alerts.sinks.http import Webhook

        sinks["webhook"] = Webhook(cfg.webhook,
                                   secret=secret(cfg.webhook.secret_env, "webhook.secret_env"),
                                   auth=secret(cfg.webhook.auth_env, "webhook.auth_env"))
    if cfg.email.enabled:
        from jts.alerts.sinks.email import Mailer

        sinks["email"] = Mailer(cfg.email, secret(cfg.email.password_env, "email.password_env"))
    return sinks


class Notifier(EventHooks):
    def __init__(self, cfg: AlertsConfig, clock: Clock | None = None, *,
                 sinks: Mapping[str, Sink] | None = None, config_file: str = "") -> None:
        """``clock`` should be wall time (LiveClock, the default) — not the simulated
        market's ScaledClock — since windows and latencies are meant in real seconds.
        ``sinks`` replaces the configured external sinks (tests, embedding)."""
        self.cfg = cfg
        self.clock: Clock = clock or LiveClock()
        self.dashboard = DashboardFeed(cfg.dashboard.history, cfg.dashboard.subscriber_queue)
        external = dict(sinks) if sinks is not None else build_sinks(cfg, file=config_file)
        self.workers: dict[str, SinkWorker] = {}
        if cfg.enabled:
            if cfg.dashboard.enabled:
                self.workers["dashboard"] = SinkWorker("dashboard", self.dashboard,
                                                       cfg.dashboard, self.clock)
            for name in SINK_NAMES[1:]:
                if name in external:
                    self.workers[name] = SinkWorker(name, external[name], cfg.sink(name),
                                                    self.clock)
        self._ids = itertools.count(1)
        self.notified = 0
        self.disabled = 0
        self.errors = 0
        self.unrouted = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._daily_loss_days: set[str] = set()
        self.running = False

    # --- producer ----------------------------------------------------------------------
    def notify(self, kind: str, message: str, *, severity: str | None = None,
               key: str | None = None, **fields: Any) -> None:
        """Raise an alert. Never raises, never blocks; safe from other threads too.

        ``severity`` defaults to the rule's; ``key`` (default ``kind:message``) is what
        de-duplication compares; ``fields`` are shown with the message and sent as JSON.
        """
        try:
            if (self._thread is not None and self._loop is not None
                    and threading.get_ident() != self._thread):
                self._loop.call_soon_threadsafe(
                    lambda: self.notify(kind, message, severity=severity, key=key, **fields))
                return
            self._notify(kind, message, severity, key, fields)
        except Exception as exc:  # alerting must never break the caller
            self.errors += 1
            try:
                log.error("alert_notify_failed", kind=kind, error=f"{type(exc).__name__}: {exc}")
            except Exception:
                pass

    def _notify(self, kind: str, message: str, severity: str | None, key: str | None,
                fields: dict[str, Any]) -> None:
        if not self.cfg.enabled:
            return
        rule = self.cfg.rules.get(kind)
        if not rule.enabled:
            self.disabled += 1
            return
        sev = severity or rule.severity
        if sev not in SEVERITY_RANK:
            log.warning("alert_bad_severity", kind=kind, severity=sev)
            sev = "warning"
        message = str(message)
        alert = Alert(id=next(self._ids), kind=kind, severity=sev, message=message,
                      key=key if key is not None else f"{kind}:{message}",
                      ts_ns=self.clock.now_ns(),
                      fields={str(k): plain(v) for k, v in fields.items()})
        self.notified += 1
        targets = rule.sinks if rule.sinks is not None else list(self.workers)
        routed = False
        for name in targets:
            worker = self.workers.get(name)
            if worker is not None:
                routed = True
                worker.offer(alert)
        if not routed:
            self.unrouted += 1

    # --- component ---------------------------------------------------------------------
    async def run(self) -> None:
        """Deliver until cancelled (the daemon component)."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self.running = True
        log.info("alerts_started", sinks=list(self.workers))
        try:
            async with asyncio.TaskGroup() as tg:
                for name, worker in self.workers.items():
                    tg.create_task(worker.run(), name=f"alerts.{name}")
        finally:
            self.running = False
            self._thread = None

    async def flush(self) -> None:
        """Wait until every sink's queue is empty and nothing is in flight."""
        for worker in self.workers.values():
            await worker.wait_idle()

    async def drain(self, seconds: float) -> bool:
        """At shutdown: give queued alerts up to ``seconds`` of wall time to go out.
        True when everything was delivered (or given up on) in time."""
        try:
            await asyncio.wait_for(self.flush(), seconds)
        except TimeoutError:
            left = {n: w.queued for n, w in self.workers.items() if not w.idle}
            log.warning("alerts_not_drained", queued=left)
            return False
        return True

    def status(self) -> dict[str, Any]:
        sinks: dict[str, Any] = {}
        for name in SINK_NAMES:
            worker = self.workers.get(name)
            sinks[name] = worker.status() if worker is not None else {"enabled": False}
        return {"enabled": self.cfg.enabled, "running": self.running,
                "notified": self.notified, "disabled_by_rule": self.disabled,
                "errors": self.errors, "unrouted": self.unrouted,
                "dashboard_subscribers": self.dashboard.subscribers, "sinks": sinks}


__all__ = ["Notifier", "build_sinks"]
