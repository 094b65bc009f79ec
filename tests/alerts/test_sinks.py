"""Each sink against a real protocol on loopback: a fake Telegram Bot API, a webhook
receiver (aiohttp) and an SMTP server (asyncio streams); secrets come from the environment."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json

import pytest

from jts.alerts import Notifier
from jts.alerts.sinks.email import Mailer
from jts.clock import FakeClock
from jts.log import register_secret

from .conftest import config, guarded, until
from .fakes import FakeSMTP, FakeTelegram, FakeWebhook, Reply, self_signed, telegram_429

TOKEN = "123456:ABC-test-token-xyz"


@pytest.fixture
async def telegram(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("JTS_TEST_TG_TOKEN", TOKEN)
    fake = FakeTelegram(TOKEN)
    base = await fake.start()
    yield fake, base
    await fake.stop()


@pytest.fixture
async def webhook():
    fake = FakeWebhook()
    base = await fake.start()
    yield fake, f"{base}/hook"
    await fake.stop()


@pytest.fixture
async def smtp(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("JTS_TEST_SMTP_PW", "s3cret-pw")
    fake = FakeSMTP("jts", "s3cret-pw")
    port = await fake.start()
    yield fake, port
    await fake.stop()


def _tg(base: str, **kw: object) -> dict[str, object]:
    return {"enabled": True, "bot_token_env": "JTS_TEST_TG_TOKEN", "chat_id": "-100777",
            "base_url": base, **kw}


async def test_telegram_delivers_a_bot_api_message(clock: FakeClock, running, telegram) -> None:
    fake, base = telegram
    n = Notifier(config(telegram=_tg(base)), clock)
    await running(n)
    n.notify("order_rejected", "005930 order c-1 rejected: insufficient cash", reason="cash")
    n.notify("fill", "005930 매수 10 @ 71000")
    await until(n, "telegram", lambda s: s.delivered == 2)
    first, second = fake.messages
    assert first["chat_id"] == "-100777"
    assert "[WARNING] order_rejected" in first["text"] and "reason: cash" in first["text"]
    assert first["disable_notification"] is False
    assert second["disable_notification"] is True           # info is silent
    assert "매수" in second["text"] and "KST" in second["text"]


async def test_telegram_429_retry_after_is_honoured(clock: FakeClock, running, telegram) -> None:
    fake, base = telegram
    fake.replies.append(telegram_429(5))
    n = Notifier(config(telegram=_tg(base, backoff_initial=1)), clock)
    await running(n)
    n.notify("daily_loss", "loss over threshold")
    await until(n, "telegram", lambda s: s.retried == 1)
    assert fake.messages == [] and len(fake.requests) == 1
    clock.advance(4.9)
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(fake.requests) == 1
    clock.advance(0.1)
    await until(n, "telegram", lambda s: s.delivered == 1)
    assert [m["text"].splitlines()[1] for m in fake.messages] == ["loss over threshold"]


async def test_telegram_wrong_token_fails_without_retry_or_leak(
        clock: FakeClock, running, telegram, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake, base = telegram
    monkeypatch.setenv("JTS_TEST_TG_TOKEN", "999:wrong-token")
    n = Notifier(config(telegram=_tg(base)), clock)
    await running(n)
    n.notify("fill", "x")
    await until(n, "telegram", lambda s: s.failed == 1)
    st = n.status()["sinks"]["telegram"]
    assert st["retried"] == 0 and "HTTP 401" in st["last_error"]
    assert "wrong-token" not in json.dumps(n.status())


async def test_telegram_unreachable_is_retried(clock: FakeClock, running, telegram) -> None:
    fake, base = telegram
    await fake.stop()                                         # nothing listens any more
    n = Notifier(config(telegram=_tg(base, retries=1)), clock)
    await running(n)
    n.notify("fill", "x")
    await until(n, "telegram", lambda s: s.retried == 1)
    clock.advance(1)
    await until(n, "telegram", lambda s: s.failed == 1)
    assert "ClientConnectorError" in n.status()["sinks"]["telegram"]["last_error"]


async def test_webhook_json_hmac_auth_and_extra(
        clock: FakeClock, running, webhook, monkeypatch: pytest.MonkeyPatch) -> None:
    fake, url = webhook
    monkeypatch.setenv("JTS_TEST_HOOK_KEY", "hmac-key-123")
    monkeypatch.setenv("JTS_TEST_HOOK_AUTH", "Bearer gateway-tok")
    n = Notifier(config(webhook={"enabled": True, "url": url, "secret_env": "JTS_TEST_HOOK_KEY",
                                 "auth_env": "JTS_TEST_HOOK_AUTH", "headers": {"X-Team": "a"},
                                 "extra": {"to": "+821012345678"}}), clock)
    await running(n)
    n.notify("broker_disconnected", "kis disconnected", broker="kis")
    await until(n, "webhook", lambda s: s.delivered == 1)
    (req,) = fake.requests
    body = json.loads(req["raw"])
    assert body["kind"] == "broker_disconnected" and body["severity"] == "critical"
    assert body["fields"] == {"broker": "kis"} and body["to"] == "+821012345678"
    assert body["text"].startswith("🚨 [CRITICAL]")
    h = req["headers"]
    assert h["Authorization"] == "Bearer gateway-tok" and h["X-Team"] == "a"
    expect = hmac.new(b"hmac-key-123", h["X-JTS-Timestamp"].encode() + b"." + req["raw"],
                      hashlib.sha256).hexdigest()
    assert h["X-JTS-Signature"] == f"sha256={expect}"
    assert h["X-JTS-Alert-Id"].endswith("-1")


async def test_webhook_5xx_retried_4xx_not(clock: FakeClock, running, webhook) -> None:
    fake, url = webhook
    fake.replies.extend([Reply(503, {"error": "busy"}, {"Retry-After": "3"}),
                         Reply(400, {"error": "bad"})])
    n = Notifier(config(webhook={"enabled": True, "url": url, "dedup_window": 0,
                                 "backoff_initial": 1}), clock)
    await running(n)
    n.notify("fill", "one")
    await until(n, "webhook", lambda s: s.retried == 1)
    clock.advance(3)                                  # Retry-After beats the 1 s backoff
    await until(n, "webhook", lambda s: s.failed == 1)
    assert [r["status"] for r in fake.requests] == [503, 400]
    assert "HTTP 400" in n.status()["sinks"]["webhook"]["last_error"]
    n.notify("fill", "two")
    await until(n, "webhook", lambda s: s.delivered == 1)
    assert json.loads(fake.requests[-1]["raw"])["message"] == "two"


async def test_email_over_smtp_with_login(clock: FakeClock, running, smtp) -> None:
    fake, port = smtp
    n = Notifier(config(email={"enabled": True, "host": "127.0.0.1", "port": port,
                               "security": "none", "username": "jts",
                               "password_env": "JTS_TEST_SMTP_PW",
                               "from_addr": "jts@example.com",
                               "to": ["me@example.com", "you@example.com"]}), clock)
    await running(n)
    n.notify("daily_loss", "일일 손실 한도 80% 도달", loss="2400000")
    await until(n, "email", lambda s: s.delivered == 1)
    (mail,) = fake.mails
    assert mail.mail_from == "jts@example.com"
    assert mail.rcpt == ["me@example.com", "you@example.com"]
    assert mail.message["Subject"] == "[JTS] CRITICAL daily_loss: 일일 손실 한도 80% 도달"
    assert "loss: 2400000" in mail.message.get_content()


async def test_email_4xx_retried_5xx_and_bad_login_not(
        clock: FakeClock, running, smtp, monkeypatch: pytest.MonkeyPatch) -> None:
    fake, port = smtp
    fake.fail_data.extend([451, 554])
    cfg = {"enabled": True, "host": "127.0.0.1", "port": port, "security": "none",
           "username": "jts", "password_env": "JTS_TEST_SMTP_PW", "dedup_window": 0,
           "from_addr": "jts@example.com", "to": ["me@example.com"]}
    n = Notifier(config(email=cfg), clock)
    await running(n)
    n.notify("fill", "a")
    await until(n, "email", lambda s: s.retried == 1)
    clock.advance(1)
    await until(n, "email", lambda s: s.failed == 1)
    assert "SMTP 554" in n.status()["sinks"]["email"]["last_error"] and fake.mails == []
    monkeypatch.setenv("JTS_TEST_SMTP_PW", "wrong-pw")
    bad = Notifier(config(email=cfg), clock)
    await running(bad)
    bad.notify("fill", "b")
    await until(bad, "email", lambda s: s.failed == 1)
    assert bad.workers["email"].stats.retried == 0 and fake.auth_failures >= 1
    assert "SMTP 535" in bad.status()["sinks"]["email"]["last_error"]


async def test_secrets_in_alert_text_are_redacted(clock: FakeClock, running, telegram) -> None:
    fake, base = telegram
    register_secret("sk-live-ABCDEF")
    n = Notifier(config(telegram=_tg(base)), clock)
    await running(n)
    n.notify("order_rejected", "auth failed with key sk-live-ABCDEF", detail="sk-live-ABCDEF")
    await until(n, "telegram", lambda s: s.delivered == 1)
    text = fake.messages[0]["text"]
    assert "sk-live-ABCDEF" not in text and "***" in text
    assert TOKEN not in json.dumps(n.status())


async def test_all_sinks_together_one_slow(clock: FakeClock, running, telegram, webhook,
                                           smtp) -> None:
    (tg, base), (hook, url), (mail, port) = telegram, webhook, smtp
    tg.hold = asyncio.Event()                         # Telegram hangs until released
    n = Notifier(config(telegram=_tg(base),
                        webhook={"enabled": True, "url": url},
                        email={"enabled": True, "host": "127.0.0.1", "port": port,
                               "security": "none", "username": "jts",
                               "password_env": "JTS_TEST_SMTP_PW",
                               "from_addr": "a@b.c", "to": ["d@e.f"]}), clock)
    await running(n)
    n.notify("broker_disconnected", "creon bridge down")
    for name in ("dashboard", "webhook", "email"):
        await until(n, name, lambda s: s.delivered == 1)
    assert n.workers["telegram"].stats.delivered == 0
    tg.hold.set()
    await guarded(n.flush())
    assert [s["delivered"] for s in n.status()["sinks"].values()] == [1, 1, 1, 1]
    assert len(mail.mails) == 1 and len(hook.requests) == 1 and len(tg.messages) == 1


@pytest.mark.parametrize("security", ["starttls", "ssl"])
async def test_email_over_tls(clock: FakeClock, running, tmp_path, security: str,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JTS_TEST_SMTP_PW", "tls-pw")
    server_ctx, client_ctx = self_signed(tmp_path)
    fake = FakeSMTP("jts", "tls-pw", tls=server_ctx, implicit_tls=security == "ssl")
    port = await fake.start()
    try:
        cfg = config(email={"enabled": True, "host": "localhost", "port": port,
                            "security": security, "username": "jts",
                            "password_env": "JTS_TEST_SMTP_PW",
                            "from_addr": "a@b.c", "to": ["d@e.f"]})
        mailer = Mailer(cfg.email, "tls-pw", ssl_context=client_ctx)
        n = Notifier(cfg, clock, sinks={"email": mailer})
        await running(n)
        n.notify("broker_disconnected", "kis down")
        await until(n, "email", lambda s: s.delivered == 1)
        assert fake.tls_sessions == 1 and len(fake.mails) == 1
        # the default context does not trust a self-signed certificate: refused, retried
        plain = Notifier(cfg, clock)
        await running(plain)
        plain.notify("broker_disconnected", "kis down")
        await until(plain, "email", lambda s: s.retried == 1)
        assert "SSLCertVerificationError" in plain.status()["sinks"]["email"]["last_error"]
    finally:
        await fake.stop()
