"""KIS access tokens and WebSocket approval keys.

The token is cached in a :class:`TokenStore` (memory by default; the daemon passes its
Redis-backed cache) under a key derived from a hash of the app key, so a restart reuses
it until ``token_refresh_margin`` before expiry. A new token is never requested within
``issue_interval`` (60 s) of the previous request — that moment is stored too — and an
``EGW00133`` answer waits out the minute instead of hammering the endpoint (each issuance
also sends the user a KakaoTalk message).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any, Protocol

import aiohttp
import structlog

from brokers.kis import parse, wire
from brokers.kis.config import KisAccountConfig, KisCredentials
from jts.clock import NS, Clock
from jts.errors import AuthError, BrokerUnavailable, RateLimited, TransientError

log = structlog.get_logger(__name__)


class TokenStore(Protocol):
    async def get(self, key: str) -> tuple[str, int] | None:
        """(value, expires_ns) or None."""
        ...

    async def set(self, key: str, value: str, expires_ns: int) -> None: ...

    async def delete(self, key: str) -> None: ...


class MemoryTokenStore:
    """Process-local token cache (default; the value expires by the caller's clock)."""

    def __init__(self) -> None:
        self.data: dict[str, tuple[str, int]] = {}

    async def get(self, key: str) -> tuple[str, int] | None:
        return self.data.get(key)

    async def set(self, key: str, value: str, expires_ns: int) -> None:
        self.data[key] = (value, expires_ns)

    async def delete(self, key: str) -> None:
        self.data.pop(key, None)


class KisAuth:
    def __init__(self, session: aiohttp.ClientSession, cfg: KisAccountConfig,
                 creds: KisCredentials, *, clock: Clock, store: TokenStore | None = None,
                 issue_interval: float = 60.0, max_attempts: int = 3) -> None:
        self._session = session
        self._cfg = cfg
        self._creds = creds
        self._clock = clock
        self.store: TokenStore = store or MemoryTokenStore()
        self._interval_ns = int(issue_interval * NS)
        self._attempts = max_attempts
        digest = hashlib.sha256(creds.app_key.encode()).hexdigest()[:16]
        self._key = f"kis:token:{cfg.domain}:{digest}"
        self._lock = asyncio.Lock()
        self.issued = 0

    async def token(self) -> str:
        """A valid access token, from the cache when possible."""
        cached = await self.store.get(self._key)
        margin = int(self._cfg.token_refresh_margin * NS)
        if cached and cached[1] - margin > self._clock.now_ns():
            return cached[0]
        async with self._lock:
            cached = await self.store.get(self._key)
            if cached and cached[1] - margin > self._clock.now_ns():
                return cached[0]
            return await self._issue()

    async def invalidate(self, token: str) -> None:
        """KIS said the token is expired or invalid: forget it (if still the cached one)."""
        cached = await self.store.get(self._key)
        if cached and cached[0] == token:
            await self.store.delete(self._key)
            log.warning("kis_token_invalidated", domain=self._cfg.domain)

    async def _issue(self) -> str:
        for attempt in range(1, self._attempts + 1):
            await self._respect_interval()
            now = self._clock.now_ns()
            await self.store.set(self._key + ":issued", str(now), now + self._interval_ns)
            try:
                body = await self._post(wire.TOKEN, {"grant_type": "client_credentials",
                                                     "appkey": self._creds.app_key,
                                                     "appsecret": self._creds.app_secret})
            except RateLimited as e:          # EGW00133: someone issued within the minute
                log.warning("kis_token_throttled", attempt=attempt, code=e.code)
                continue
            token = str(body.get("access_token", ""))
            if not token:
                raise AuthError("KIS token answer has no access_token", broker="kis")
            try:
                ttl = int(body.get("expires_in", 86_400))
            except (TypeError, ValueError):
                ttl = 86_400
            expires = self._clock.now_ns() + ttl * NS
            await self.store.set(self._key, token, expires)
            self.issued += 1
            log.info("kis_token_issued", domain=self._cfg.domain, expires_in=ttl)
            return token
        raise AuthError(f"KIS token issuance throttled {self._attempts} times (EGW00133)",
                        code=wire.TOKEN_THROTTLED, broker="kis")

    async def _respect_interval(self) -> None:
        last = await self.store.get(self._key + ":issued")
        if last:
            wait = int(last[0]) + self._interval_ns - self._clock.now_ns()
            if wait > 0:
                log.info("kis_token_wait", seconds=wait / NS)
                await self._clock.sleep(wait / NS)

    async def approval_key(self) -> str:
        """A WebSocket approval key (``/oauth2/Approval``; note the ``secretkey`` field)."""
        body = await self._post(wire.APPROVAL, {"grant_type": "client_credentials",
                                                "appkey": self._creds.app_key,
                                                "secretkey": self._creds.app_secret})
        key = str(body.get("approval_key", ""))
        if not key:
            raise AuthError("KIS approval answer has no approval_key", broker="kis")
        return key

    async def _post(self, path: str, payload: dict[str, str]) -> dict[str, Any]:
        url = self._cfg.rest_base + path
        timeout = aiohttp.ClientTimeout(total=self._cfg.request_timeout)
        try:
            async with self._session.post(url, json=payload, timeout=timeout, headers={
                    "content-type": "application/json; charset=utf-8"}) as resp:
                text = await resp.text()
                status = resp.status
        except aiohttp.ClientConnectorError as e:
            raise BrokerUnavailable(f"KIS {url} unreachable: {e}", broker="kis") from e
        except (aiohttp.ClientError, TimeoutError) as e:
            raise TransientError(f"KIS {path} failed: {type(e).__name__}", broker="kis") from e
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if status != 200 or not isinstance(body, dict) or "error_code" in body:
            err = parse.error_for(status, body if isinstance(body, dict) else None, text,
                                  order=False)
            if not isinstance(err, RateLimited | TransientError):
                err = AuthError(str(err), code=err.code, broker="kis")
            raise err
        return body
