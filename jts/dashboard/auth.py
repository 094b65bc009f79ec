"""Dashboard authentication: the password hash (scrypt), the session token (HS256 JWT signed
with a random key kept in the state directory), and the rate limiters for login and API.

Nothing here does I/O besides the two small 0600 files in the state directory
(``dashboard.passwd`` and ``dashboard.secret``); clocks are injected so tests never sleep.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jts.errors import ConfigError, DaemonError

PASSWD_FILE = "dashboard.passwd"
SECRET_FILE = "dashboard.secret"
MIN_PASSWORD = 8
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


class TokenError(DaemonError):
    """A session token that is malformed, forged or expired (the reason says which)."""


# --- password hashing ----------------------------------------------------------------------
def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def hash_password(password: str, *, n: int = _SCRYPT_N) -> str:
    """``scrypt$N$r$p$salt$hash`` (url-safe base64, no padding)."""
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"dashboard password must have at least {MIN_PASSWORD} characters")
    salt = secrets.token_bytes(16)
    dk = hashlib.scrypt(password.encode(), salt=salt, n=n, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    return f"scrypt${n}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(dk)}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of ``password`` against a :func:`hash_password` string."""
    try:
        scheme, n, r, p, salt, want = stored.split("$")
        if scheme != "scrypt":
            return False
        dk = hashlib.scrypt(password.encode(), salt=_unb64(salt), n=int(n), r=int(r),
                            p=int(p), dklen=len(_unb64(want)), maxmem=256 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(dk, _unb64(want))


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class PasswordStore:
    """The dashboard password hash: ``[dashboard] password_hash`` in jts.toml wins, else the
    file ``<state_dir>/dashboard.passwd`` written by ``jts dashboard passwd``."""

    def __init__(self, state_dir: Path, config_hash: str = "") -> None:
        self.path = state_dir / PASSWD_FILE
        self.config_hash = config_hash

    def current(self) -> str:
        if self.config_hash:
            return self.config_hash
        try:
            return self.path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return ""

    @property
    def is_set(self) -> bool:
        return bool(self.current())

    def set(self, password: str) -> None:
        _write_private(self.path, (hash_password(password) + "\n").encode("ascii"))

    def check(self, password: str) -> bool:
        stored = self.current()
        if not stored:
            return False
        return verify_password(password, stored)

    def ensure_from_env(self, env: dict[str, str] | None = None) -> bool:
        """First start: set the password from ``JTS_DASHBOARD_PASSWORD`` if none is set yet.
        Returns True if it did."""
        e = os.environ if env is None else env
        pw = e.get("JTS_DASHBOARD_PASSWORD", "")
        if pw and not self.is_set:
            self.set(pw)
            return True
        return False


def load_secret(state_dir: Path) -> bytes:
    """The token-signing key: 32 random bytes in ``<state_dir>/dashboard.secret`` (0600),
    created on first use. Deleting the file logs every session out."""
    path = state_dir / SECRET_FILE
    try:
        key = _unb64(path.read_text(encoding="ascii").strip())
        if len(key) >= 32:
            return key
    except (OSError, ValueError, UnicodeDecodeError):
        pass
    key = secrets.token_bytes(32)
    _write_private(path, (_b64(key) + "\n").encode("ascii"))
    return key


# --- JWT (HS256) -----------------------------------------------------------------------------
_HEADER = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())


class TokenSigner:
    def __init__(self, key: bytes, ttl: float, now: Callable[[], float] = time.time) -> None:
        if len(key) < 32:
            raise ValueError("signing key must have at least 32 bytes")
        self._key = key
        self.ttl = ttl
        self._now = now

    def _sig(self, signing_input: bytes) -> str:
        return _b64(hmac.new(self._key, signing_input, hashlib.sha256).digest())

    def issue(self, subject: str, **claims: Any) -> str:
        iat = int(self._now())
        body = {"sub": subject, "iat": iat, "exp": iat + int(self.ttl),
                "jti": secrets.token_urlsafe(12), **claims}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        head = f"{_HEADER}.{payload}"
        return f"{head}.{self._sig(head.encode('ascii'))}"

    def verify(self, token: str) -> dict[str, Any]:
        parts = token.split(".")
        if len(parts) != 3 or len(token) > 4096:
            raise TokenError("malformed token")
        head = f"{parts[0]}.{parts[1]}"
        try:
            if not hmac.compare_digest(self._sig(head.encode("ascii")), parts[2]):
                raise TokenError("bad token signature")
            header = json.loads(_unb64(parts[0]))
            claims = json.loads(_unb64(parts[1]))
        except (ValueError, UnicodeError):
            raise TokenError("malformed token") from None
        if not isinstance(header, dict) or header.get("alg") != "HS256":
            raise TokenError("unsupported token algorithm")
        if not isinstance(claims, dict) or not isinstance(claims.get("exp"), int):
            raise TokenError("malformed token claims")
        if claims["exp"] <= self._now():
            raise TokenError("token expired")
        return claims


# --- rate limiting -------------------------------------------------------------------------
@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class RateLimiter:
    """Token buckets by key (``user:…``, ``ip:…``): ``rate`` per second, ``burst`` deep."""

    rate: float
    burst: float
    now: Callable[[], float] = time.monotonic
    max_keys: int = 10_000
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def allow(self, key: str, cost: float = 1.0) -> bool:
        t = self.now()
        b = self._buckets.get(key)
        if b is None:
            if len(self._buckets) >= self.max_keys:
                self._evict(t)
            b = self._buckets[key] = _Bucket(self.burst, t)
        b.tokens = min(self.burst, b.tokens + (t - b.stamp) * self.rate)
        b.stamp = t
        if b.tokens >= cost:
            b.tokens -= cost
            return True
        return False

    def retry_after(self, key: str, cost: float = 1.0) -> float:
        b = self._buckets.get(key)
        if b is None:
            return 0.0
        return max(0.0, (cost - b.tokens) / self.rate)

    def _evict(self, t: float) -> None:
        full = [k for k, b in self._buckets.items()
                if b.tokens + (t - b.stamp) * self.rate >= self.burst]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= self.max_keys:        # still full: drop the oldest half
            for k in sorted(self._buckets, key=lambda k: self._buckets[k].stamp)[
                    : self.max_keys // 2]:
                del self._buckets[k]


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)
