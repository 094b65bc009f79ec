"""The email sink: one message per alert over SMTP (stdlib ``smtplib``), run in this sink's
own single worker thread so a slow mail server blocks neither the event loop nor the other
sinks. Reply codes 4xx and connection problems are retryable, 5xx are not.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from jts.alerts.config import EmailSink
from jts.alerts.model import Alert, body_text, subject
from jts.alerts.sinks import DeliveryError
from jts.log import redact_text


class Mailer:
    name = "email"

    def __init__(self, cfg: EmailSink, password: str = "",
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._cfg = cfg
        self._password = password
        self._ssl = ssl_context
        self._pool: ThreadPoolExecutor | None = None

    async def open(self) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jts-smtp")

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def message(self, alert: Alert, suppressed: int) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = f"{self._cfg.subject_prefix} {subject(alert)}".strip()
        msg["From"] = self._cfg.from_addr
        msg["To"] = ", ".join(self._cfg.to)
        msg["Date"] = formatdate(alert.ts_ns / 1e9, localtime=False)
        msg["Message-ID"] = make_msgid(idstring=f"jts-{alert.ts_ns}-{alert.id}")
        msg["X-JTS-Severity"] = alert.severity
        msg.set_content(body_text(alert, suppressed, limit=100_000))
        return msg

    async def send(self, alert: Alert, suppressed: int) -> None:
        if self._pool is None:
            await self.open()
        msg = self.message(alert, suppressed)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self._deliver, msg)

    def _ctx(self) -> ssl.SSLContext:
        return self._ssl or ssl.create_default_context()

    def _deliver(self, msg: EmailMessage) -> None:
        cfg = self._cfg
        try:
            smtp: smtplib.SMTP
            if cfg.security == "ssl":
                smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout,
                                        context=self._ctx())
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
            with smtp:
                smtp.ehlo()
                if cfg.security == "starttls":
                    smtp.starttls(context=self._ctx())
                    smtp.ehlo()
                if cfg.username:
                    smtp.login(cfg.username, self._password)
                smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"email: every recipient refused: {sorted(exc.recipients)}",
                                retryable=False) from None
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode("utf-8", "replace") if isinstance(
                exc.smtp_error, bytes) else str(exc.smtp_error)
            raise DeliveryError(redact_text(f"email: SMTP {exc.smtp_code}: {text}"),
                                retryable=400 <= exc.smtp_code < 500) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(f"email: {exc}", retryable=False) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(redact_text(f"email: {type(exc).__name__}: {exc}"),
                                retryable=True) from None
