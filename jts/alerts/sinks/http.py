"""HTTP sinks: Telegram (Bot API ``sendMessage``) and a generic JSON webhook (with an
optional HMAC-SHA256 signature), each with its own aiohttp session and connection pool.

Status mapping: 2xx delivered; 408, 429 and 5xx retryable (``Retry-After`` / Telegram's
``parameters.retry_after`` honoured); other 4xx permanent (a wrong token, chat id or URL
will not fix itself). Network errors and timeouts are retryable.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import aiohttp
import msgspec

from jts.alerts.config import TelegramSink, WebhookSink
from jts.alerts.model import Alert, body_text, payload
from jts.alerts.sinks import DeliveryError
from jts.log import redact_text

_RETRYABLE = {408, 425, 429}


def _retry_after(value: Any) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


class _HttpSink:
    name = "http"

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                connector=aiohttp.TCPConnector(limit=4))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(self, method: str, url: str, *, data: bytes,
                       headers: dict[str, str]) -> tuple[int, bytes, str | None]:
        if self._session is None:
            await self.open()
        assert self._session is not None
        try:
            async with self._session.request(method, url, data=data, headers=headers) as resp:
                return resp.status, await resp.read(), resp.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise DeliveryError(redact_text(f"{self.name}: {type(exc).__name__}: {exc}"),
                                retryable=True) from None


class TelegramBot(_HttpSink):
    """Sends each alert as one message to one chat through the Bot API."""

    name = "telegram"

    def __init__(self, cfg: TelegramSink, token: str) -> None:
        super().__init__(cfg.timeout)
        self._cfg = cfg
        self._url = f"{cfg.base_url.rstrip('/')}/bot{token}/sendMessage"

    async def send(self, alert: Alert, suppressed: int) -> None:
        body = {"chat_id": self._cfg.chat_id, "text": body_text(alert, suppressed),
                "disable_notification": self._cfg.silent_info and alert.severity == "info"}
        status, raw, retry_hdr = await self._request(
            "POST", self._url, data=msgspec.json.encode(body),
            headers={"Content-Type": "application/json"})
        try:
            reply = msgspec.json.decode(raw) if raw else {}
        except msgspec.DecodeError:
            reply = {}
        if not isinstance(reply, dict):
            reply = {}
        if status == 200 and reply.get("ok") is True:
            return
        desc = redact_text(str(reply.get("description") or raw[:200].decode("utf-8", "replace")))
        params = reply.get("parameters") if isinstance(reply.get("parameters"), dict) else {}
        retry_after = _retry_after((params or {}).get("retry_after")) or _retry_after(retry_hdr)
        retryable = status in _RETRYABLE or status >= 500
        raise DeliveryError(f"telegram: HTTP {status}: {desc}", retryable=retryable,
                            retry_after=retry_after)


class Webhook(_HttpSink):
    """POSTs the alert as JSON; with a secret, signs ``"<timestamp>.<body>"`` with
    HMAC-SHA256 and sends ``sha256=<hex>`` in ``signature_header`` plus ``X-JTS-Timestamp``."""

    name = "webhook"

    def __init__(self, cfg: WebhookSink, *, secret: str = "", auth: str = "") -> None:
        super().__init__(cfg.timeout)
        self._cfg = cfg
        self._secret = secret.encode()
        self._auth = auth

    def headers_for(self, alert: Alert, body: bytes) -> dict[str, str]:
        headers = {"Content-Type": "application/json", **self._cfg.headers,
                   "X-JTS-Alert-Id": f"{alert.ts_ns}-{alert.id}"}
        if self._auth:
            headers["Authorization"] = self._auth
        if self._secret:
            ts = str(alert.ts_ns // 1_000_000_000)
            headers["X-JTS-Timestamp"] = ts
            headers[self._cfg.signature_header] = "sha256=" + sign(self._secret, ts, body)
        return headers

    async def send(self, alert: Alert, suppressed: int) -> None:
        body = msgspec.json.encode({**payload(alert, suppressed), **self._cfg.extra})
        status, raw, retry_hdr = await self._request(
            self._cfg.method, self._cfg.url, data=body, headers=self.headers_for(alert, body))
        if 200 <= status < 300:
            return
        text = redact_text(raw[:200].decode("utf-8", "replace"))
        raise DeliveryError(f"webhook: HTTP {status}: {text}",
                            retryable=status in _RETRYABLE or status >= 500,
                            retry_after=_retry_after(retry_hdr))


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The hex HMAC-SHA256 a webhook receiver recomputes to check a delivery."""
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
