"""Alerts: rules in ``[alerts]`` decide which events (fills, rejections, risk limits, daily
loss, stale feeds, broker disconnects, surge candidates, daemon starts) reach which sinks —
the dashboard, Telegram, a webhook, email — each delivered by its own isolated worker."""

from jts.alerts.config import KINDS, AlertsConfig
from jts.alerts.model import Alert
from jts.alerts.notifier import Notifier

__all__ = ["KINDS", "Alert", "AlertsConfig", "Notifier"]
