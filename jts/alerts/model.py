"""The :class:`Alert` value and its renderings (one-line text, message body, JSON payload).

Every outgoing rendering passes through the log redactor, so a registered secret that ends
up in an alert message (an error string quoting a URL, say) never leaves the process.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import msgspec

from jts.clock import KST, NS, iso_utc
from jts.log import redact_text

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
_ICON = {"info": "ℹ️", "warning": "⚠️", "critical": "🚨"}


class Alert(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    kind: str
    severity: str
    message: str
    key: str
    ts_ns: int                      # when notify() was called (the notifier's clock)
    fields: dict[str, Any] = {}

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "severity": self.severity,
                "message": redact_text(self.message), "key": self.key,
                "ts": iso_utc(self.ts_ns),
                "fields": {k: redact_text(v) if isinstance(v, str) else v
                           for k, v in self.fields.items()}}


def plain(value: Any) -> Any:
    """A JSON-safe copy of a field value: Decimal and other objects become strings."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return plain(value.value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return str(value)


def subject(alert: Alert) -> str:
    return redact_text(f"{alert.severity.upper()} {alert.kind}: {alert.message}")[:200]


def body_text(alert: Alert, suppressed: int = 0, limit: int = 4000) -> str:
    """A short human-readable message: headline, fields, KST time, throttle note."""
    when = datetime.fromtimestamp(alert.ts_ns / NS, tz=KST).strftime("%Y-%m-%d %H:%M:%S KST")
    lines = [f"{_ICON.get(alert.severity, '')} [{alert.severity.upper()}] {alert.kind}",
             alert.message]
    lines += [f"{k}: {v}" for k, v in alert.fields.items()]
    lines.append(when)
    if suppressed:
        lines.append(f"(+{suppressed} more alert(s) held back by the rate limit)")
    text = redact_text("\n".join(lines))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def payload(alert: Alert, suppressed: int = 0) -> dict[str, Any]:
    d = alert.to_dict()
    d["text"] = body_text(alert, suppressed)
    d["suppressed"] = suppressed
    return d
