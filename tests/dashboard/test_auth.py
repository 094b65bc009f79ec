"""Password hashing, the password file, the signing key, HS256 tokens and rate limiting."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from jts.dashboard.auth import (
    PasswordStore,
    RateLimiter,
    TokenError,
    TokenSigner,
    hash_password,
    load_secret,
    verify_password,
)
from jts.errors import ConfigError


def test_hash_roundtrip_and_salted() -> None:
    h1, h2 = hash_password("s3cret-pass"), hash_password("s3cret-pass")
    assert h1 != h2 and h1.startswith("scrypt$")
    assert verify_password("s3cret-pass", h1) and verify_password("s3cret-pass", h2)
    assert not verify_password("s3cret-pasS", h1)
    assert not verify_password("x", "garbage") and not verify_password("x", "md5$1$2$3$4$5")


def test_short_password_refused() -> None:
    with pytest.raises(ConfigError, match="at least 8"):
        hash_password("short")


def test_password_file_is_private_and_config_wins(tmp_path: Path) -> None:
    store = PasswordStore(tmp_path)
    assert not store.is_set and not store.check("anything-at-all")
    store.set("first-password")
    mode = stat.S_IMODE(store.path.stat().st_mode)
    assert mode == 0o600
    assert store.check("first-password") and not store.check("other-password")
    pinned = PasswordStore(tmp_path, hash_password("config-password"))
    assert pinned.check("config-password") and not pinned.check("first-password")


def test_env_sets_password_only_on_first_start(tmp_path: Path) -> None:
    store = PasswordStore(tmp_path)
    assert store.ensure_from_env({"JTS_DASHBOARD_PASSWORD": "from-the-env"})
    assert store.check("from-the-env")
    assert not store.ensure_from_env({"JTS_DASHBOARD_PASSWORD": "changed-later"})
    assert store.check("from-the-env")
    assert not PasswordStore(tmp_path / "x").ensure_from_env({})


def test_secret_is_created_once_and_private(tmp_path: Path) -> None:
    k1 = load_secret(tmp_path)
    k2 = load_secret(tmp_path)
    assert k1 == k2 and len(k1) == 32
    assert stat.S_IMODE((tmp_path / "dashboard.secret").stat().st_mode) == 0o600


def _b64(d: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()


def test_token_roundtrip_expiry_and_forgery() -> None:
    now = [1_000_000.0]
    signer = TokenSigner(b"k" * 32, ttl=60, now=lambda: now[0])
    tok = signer.issue("admin", csrf="abc")
    claims = signer.verify(tok)
    assert claims["sub"] == "admin" and claims["csrf"] == "abc" and claims["exp"] == 1_000_060
    now[0] += 61
    with pytest.raises(TokenError, match="expired"):
        signer.verify(tok)
    now[0] -= 61
    other = TokenSigner(b"o" * 32, ttl=60, now=lambda: now[0])
    with pytest.raises(TokenError, match="signature"):
        signer.verify(other.issue("admin"))
    h, p, s = tok.split(".")
    forged = _b64({**claims, "sub": "root"})
    with pytest.raises(TokenError, match="signature"):
        signer.verify(f"{h}.{forged}.{s}")
    none_alg = _b64({"alg": "none", "typ": "JWT"})
    with pytest.raises(TokenError):
        signer.verify(f"{none_alg}.{p}.")
    for bad in ("", "a.b", "a.b.c.d", "!!!.???.***"):
        with pytest.raises(TokenError):
            signer.verify(bad)


def test_rate_limiter_refills_on_the_injected_clock() -> None:
    t = [0.0]
    lim = RateLimiter(rate=1.0, burst=3, now=lambda: t[0])
    assert [lim.allow("a") for _ in range(4)] == [True, True, True, False]
    assert lim.allow("b")                       # keys are independent
    assert lim.retry_after("a") == pytest.approx(1.0)
    t[0] += 1.0
    assert lim.allow("a") and not lim.allow("a")


def test_rate_limiter_bounds_its_memory() -> None:
    t = [0.0]
    lim = RateLimiter(rate=1.0, burst=1, now=lambda: t[0], max_keys=10)
    for i in range(50):
        lim.allow(f"k{i}")
    assert len(lim._buckets) <= 10
