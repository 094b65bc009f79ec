"""The KIS REST client for one account: headers, rate limiting, paging, error mapping.

Reads are retried (rate limit → the limiter's backoff; expired/invalid token → one fresh
token; transient failures → a few backed-off attempts). Orders and cancels are sent once
and never retried: a definite refusal raises (RateLimited / AuthError / OrderRejected), and
a timeout or a code-less 5xx after sending raises :class:`OrderOutcomeUnknown`.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import aiohttp
import structlog

from brokers.kis import parse, wire
from brokers.kis.auth import KisAuth
from brokers.kis.config import KisAccountConfig, KisCredentials
from jts.clock import Clock
from jts.errors import (
    AuthError,
    BrokerError,
    BrokerUnavailable,
    OrderOutcomeUnknown,
    RateLimited,
    TransientError,
)
from jts.ratelimit import Lane, RateLimiter

log = structlog.get_logger(__name__)
Json = dict[str, Any]
TOKEN_CODES = (wire.TOKEN_EXPIRED, wire.TOKEN_INVALID)


class KisResponse(NamedTuple):
    body: Json
    tr_cont: str

    @property
    def more(self) -> bool:
        return self.tr_cont in ("F", "M")


class KisRest:
    def __init__(self, session: aiohttp.ClientSession, cfg: KisAccountConfig,
                 creds: KisCredentials, auth: KisAuth, limiter: RateLimiter, *,
                 clock: Clock) -> None:
        self._session = session
        self.cfg = cfg
        self.creds = creds
        self.auth = auth
        self.limiter = limiter
        self._clock = clock
        self.counters = {"requests": 0, "rate_limited": 0, "token_refreshed": 0,
                         "transient": 0, "outcome_unknown": 0}

    def tr(self, real_tr: str) -> str:
        return wire.tr_for(self.cfg.domain, real_tr)

    async def _headers(self, tr_id: str, tr_cont: str) -> tuple[dict[str, str], str]:
        token = await self.auth.token()
        return {"content-type": "application/json; charset=utf-8",
                "authorization": f"Bearer {token}", "appkey": self.creds.app_key,
                "appsecret": self.creds.app_secret, "tr_id": tr_id,
                "custtype": self.cfg.custtype, "tr_cont": tr_cont}, token

    async def _once(self, method: str, path: str, tr_id: str, *, params: dict[str, str] | None,
                    body: Json | None, lane: Lane, tr_cont: str, order: bool) -> KisResponse:
        headers, token = await self._headers(tr_id, tr_cont)
        await self.limiter.acquire(lane)
        self.counters["requests"] += 1
        url = self.cfg.rest_base + path
        timeout = aiohttp.ClientTimeout(total=self.cfg.request_timeout)
        try:
            async with self._session.request(
                    method, url, params=params, headers=headers, timeout=timeout,
                    data=json.dumps(body, ensure_ascii=False).encode() if body else None
            ) as resp:
                text = await resp.text()
                status, cont = resp.status, resp.headers.get("tr_cont", "")
        except aiohttp.ClientConnectorError as e:     # never left this machine
            raise BrokerUnavailable(f"KIS {url} unreachable: {e}", broker="kis") from e
        except (aiohttp.ClientError, TimeoutError) as e:
            if order:
                self.counters["outcome_unknown"] += 1
                raise OrderOutcomeUnknown(f"KIS {path} {tr_id}: {type(e).__name__} after "
                                          "sending; query the order", broker="kis") from e
            raise TransientError(f"KIS {path} {tr_id}: {type(e).__name__}", broker="kis") from e
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if status == 200 and isinstance(data, dict) and str(data.get("rt_cd")) == "0":
            self.limiter.succeeded()
            return KisResponse(data, cont)
        err = parse.error_for(status, data if isinstance(data, dict) else None, text,
                              order=order)
        log.warning("kis_request_failed", path=path, tr_id=tr_id, status=status,
                    code=err.code, error=str(err)[:200])
        if isinstance(err, RateLimited):
            self.counters["rate_limited"] += 1
            self.limiter.penalize(err.retry_after)
        if isinstance(err, AuthError) and err.code in TOKEN_CODES:
            self.counters["token_refreshed"] += 1
            await self.auth.invalidate(token)
        if isinstance(err, OrderOutcomeUnknown):
            self.counters["outcome_unknown"] += 1
        raise err

    async def get(self, path: str, real_tr: str, params: dict[str, str], *,
                  lane: Lane = Lane.BACKGROUND, tr_cont: str = "") -> KisResponse:
        """A read with retries; the TR id is translated for the virtual domain."""
        tr_id = self.tr(real_tr)
        attempts = max(1, self.cfg.read_retries)
        token_retry = True
        limited = 0
        last: BrokerError | None = None
        attempt = 0
        while attempt <= attempts:
            try:
                return await self._once("GET", path, tr_id, params=params, body=None,
                                        lane=lane, tr_cont=tr_cont, order=False)
            except RateLimited as e:
                # not processed by KIS; the limiter already paused and shrank its budget
                last, limited = e, limited + 1
                if limited > 4 * attempts:
                    break
                continue
            except AuthError as e:
                if e.code not in TOKEN_CODES or not token_retry:
                    raise
                token_retry, last = False, e
            except TransientError as e:
                self.counters["transient"] += 1
                last = e
                await self._clock.sleep(min(8.0, 0.5 * 2 ** attempt))
            attempt += 1
        assert last is not None
        raise last

    async def get_pages(self, path: str, real_tr: str, params: dict[str, str], *,
                        lane: Lane = Lane.BACKGROUND, max_pages: int = 200) -> list[Json]:
        """Follow ``tr_cont`` F/M pages with the CTX_AREA cursors; all bodies in order."""
        bodies: list[Json] = []
        params = dict(params)
        cont = ""
        for _ in range(max_pages):
            resp = await self.get(path, real_tr, params, lane=lane, tr_cont=cont)
            bodies.append(resp.body)
            if not resp.more:
                return bodies
            params["CTX_AREA_FK100"] = str(resp.body.get("ctx_area_fk100", ""))
            params["CTX_AREA_NK100"] = str(resp.body.get("ctx_area_nk100", ""))
            cont = "N"
        raise TransientError(f"KIS {path}: more than {max_pages} pages", broker="kis")

    async def send(self, path: str, real_tr: str, body: dict[str, str]) -> KisResponse:
        """An order or cancel: ORDER lane, sent exactly once."""
        return await self._once("POST", path, self.tr(real_tr), params=None, body=body,
                                lane=Lane.ORDER, tr_cont="", order=True)

    def account_params(self) -> dict[str, str]:
        return {"CANO": self.creds.cano, "ACNT_PRDT_CD": self.creds.prdt}
