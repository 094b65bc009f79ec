"""Loopback fakes for the alert sinks: a Telegram Bot API server, a webhook receiver (both
aiohttp) and a small SMTP server written on asyncio streams. Also used by
bench/bench_alerts.py."""

from __future__ import annotations

import asyncio
import base64
import email
import email.message
import email.policy
import ssl
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web


@dataclass
class Reply:
    status: int = 200
    body: Any = None            # JSON body; None = the server's normal success reply
    headers: dict[str, str] = field(default_factory=dict)


class _HttpFake:
    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()   # consumed one per request, then success
        self.requests: list[dict[str, Any]] = []
        self.hold: asyncio.Event | None = None  # set → requests wait until it is set
        self.received = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    def app(self) -> web.Application:
        raise NotImplementedError

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _answer(self, record: dict[str, Any], ok_body: Any) -> web.Response:
        if self.hold is not None:
            await self.hold.wait()
        reply = self.replies.popleft() if self.replies else Reply()
        record["status"] = reply.status
        self.requests.append(record)
        self.received.set()
        body = ok_body if reply.body is None and reply.status == 200 else reply.body
        return web.json_response(body, status=reply.status, headers=reply.headers)


class FakeTelegram(_HttpFake):
    """Speaks the Bot API's ``sendMessage`` for one token."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self._message_id = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/bot{token}/sendMessage", self._send)
        return app

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [r["json"] for r in self.requests if r["status"] == 200]

    async def _send(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401,
                                      "description": "Unauthorized"}, status=401)
        data = await request.json()
        if "chat_id" not in data or not data.get("text"):
            return web.json_response({"ok": False, "error_code": 400,
                                      "description": "Bad Request: message text is empty"},
                                     status=400)
        self._message_id += 1
        ok = {"ok": True, "result": {"message_id": self._message_id,
                                     "chat": {"id": data["chat_id"]}, "text": data["text"]}}
        return await self._answer({"json": data}, ok)


def telegram_429(retry_after: int) -> Reply:
    return Reply(429, {"ok": False, "error_code": 429,
                       "description": f"Too Many Requests: retry after {retry_after}",
                       "parameters": {"retry_after": retry_after}})


class FakeWebhook(_HttpFake):
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/hook", self._hook)
        return app

    async def _hook(self, request: web.Request) -> web.Response:
        raw = await request.read()
        return await self._answer({"method": request.method, "raw": raw,
                                   "headers": dict(request.headers)}, {"ok": True})


@dataclass
class Mail:
    mail_from: str
    rcpt: list[str]
    message: email.message.EmailMessage


class FakeSMTP:
    """Enough ESMTP for smtplib: EHLO/HELO, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA, RSET,
    NOOP, QUIT. ``fail_data`` replies queue makes DATA answer with those codes first."""

    def __init__(self, user: str = "", password: str = "",
                 tls: ssl.SSLContext | None = None, implicit_tls: bool = False) -> None:
        self.user, self.password = user, password
        self.tls, self.implicit_tls = tls, implicit_tls
        self.tls_sessions = 0
        self.mails: list[Mail] = []
        self.fail_data: deque[int] = deque()
        self.auth_failures = 0
        self.received = asyncio.Event()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(
            self._session, "127.0.0.1", 0, ssl=self.tls if self.implicit_tls else None)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def say(line: str) -> None:
            writer.write(line.encode() + b"\r\n")

        say("220 fake.smtp ESMTP")
        mail_from, rcpt, authed = "", [], not self.user
        secure = self.implicit_tls
        if secure:
            self.tls_sessions += 1
        try:
            while True:
                await writer.drain()
                raw = await reader.readline()
                if not raw:
                    return
                line = raw.decode().rstrip("\r\n")
                verb, _, arg = line.partition(" ")
                verb = verb.upper()
                if verb == "EHLO":
                    say("250-fake.smtp")
                    if self.tls is not None and not secure:
                        say("250-STARTTLS")
                    say("250-AUTH PLAIN LOGIN")
                    say("250 8BITMIME")
                elif verb == "STARTTLS" and self.tls is not None and not secure:
                    say("220 Ready to start TLS")
                    await writer.drain()
                    await writer.start_tls(self.tls)
                    secure, authed = True, not self.user
                    self.tls_sessions += 1
                elif verb == "HELO":
                    say("250 fake.smtp")
                elif verb == "AUTH" and self.tls is not None and not secure:
                    say("538 5.7.11 Encryption required")
                elif verb == "AUTH":
                    authed = await self._auth(arg, reader, say, writer)
                elif verb == "MAIL":
                    if not authed:
                        say("530 5.7.0 Authentication required")
                        continue
                    mail_from, rcpt = arg.split(":", 1)[1].strip("<> "), []
                    say("250 OK")
                elif verb == "RCPT":
                    rcpt.append(arg.split(":", 1)[1].strip("<> "))
                    say("250 OK")
                elif verb == "DATA":
                    say("354 End data with <CR><LF>.<CR><LF>")
                    await writer.drain()
                    data = bytearray()
                    while (chunk := await reader.readline()) not in (b".\r\n", b""):
                        data += chunk[1:] if chunk.startswith(b"..") else chunk
                    if self.fail_data:
                        code = self.fail_data.popleft()
                        say(f"{code} simulated failure")
                        continue
                    msg = email.message_from_bytes(bytes(data), policy=email.policy.default)
                    assert isinstance(msg, email.message.EmailMessage)
                    self.mails.append(Mail(mail_from, rcpt, msg))
                    self.received.set()
                    say("250 OK queued")
                elif verb in ("RSET", "NOOP"):
                    say("250 OK")
                elif verb == "QUIT":
                    say("221 Bye")
                    await writer.drain()
                    return
                else:
                    say("502 Command not implemented")
        finally:
            writer.close()

    async def _auth(self, arg: str, reader: asyncio.StreamReader, say: Any,
                    writer: asyncio.StreamWriter) -> bool:
        mech, _, initial = arg.partition(" ")
        if mech.upper() == "PLAIN":
            if not initial:
                say("334 ")
                await writer.drain()
                initial = (await reader.readline()).decode().strip()
            parts = base64.b64decode(initial).split(b"\0")
            user, pw = parts[1].decode(), parts[2].decode()
        elif mech.upper() == "LOGIN":
            say("334 VXNlcm5hbWU6")
            await writer.drain()
            user = base64.b64decode((await reader.readline()).strip()).decode()
            say("334 UGFzc3dvcmQ6")
            await writer.drain()
            pw = base64.b64decode((await reader.readline()).strip()).decode()
        else:
            say("504 Unrecognized authentication type")
            return False
        if (user, pw) == (self.user, self.password):
            say("235 2.7.0 Authentication successful")
            return True
        self.auth_failures += 1
        say("535 5.7.8 Authentication credentials invalid")
        return False


def self_signed(tmp: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) TLS contexts for a fresh self-signed 127.0.0.1/localhost cert."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_pem = tmp / "cert.pem"
    key_pem = tmp / "key.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_pem, key_pem)
    client = ssl.create_default_context(cafile=str(cert_pem))
    return server, client
