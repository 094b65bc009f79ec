"""The KIS simulator's gateway rules: app keys and domains, access tokens, approval keys
and the per-app-key fixed one-second request window.

Everything time-dependent reads the injected clock, so tests drive token throttling,
expiry and rate windows with a FakeClock.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from brokers.kis import wire
from brokers.kis.simulator.accounts import SimBook
from brokers.kis.simulator.market import DEFAULT_SYMBOLS, KisSimMarket
from brokers.kis.wire import Domain
from jts.clock import NS, Clock, LiveClock, to_kst

Json = dict[str, Any]


class SimHttpError(Exception):
    """Answered as HTTP ``status`` with the JSON ``body``."""

    def __init__(self, status: int, body: Json) -> None:
        super().__init__(body.get("msg1") or body.get("error_description") or str(status))
        self.status = status
        self.body = body


def kis_error(status: int, code: str, message: str) -> SimHttpError:
    return SimHttpError(status, {"rt_cd": "1", "msg_cd": code, "msg1": message})


@dataclass
class SimSettings:
    domain: Domain = "virtual"
    rate_limit: int | None = None          # per app key per 1 s window; None: 20 real / 2 virtual
    balance_rows: int | None = None        # None: 50 real / 20 virtual
    token_ttl: float = 86_400.0
    token_reuse: float = 6 * 3_600.0       # same token if re-requested within this
    token_throttle: float = 60.0           # one issuance per minute
    liquidity_per_step: int = 100
    step_interval: float = 1.0             # market step period of the background loop
    auto_step: bool = True
    ping_interval: float = 30.0
    max_subscriptions: int = wire.WS_MAX_SUBSCRIPTIONS
    seed: int = 7
    symbols: tuple[str, ...] | int = DEFAULT_SYMBOLS   # codes, or a count (as paper mode)

    def limit(self) -> int:
        return self.rate_limit or wire.RATE_LIMIT[self.domain]

    def rows(self) -> int:
        return self.balance_rows or wire.BALANCE_ROWS[self.domain]


@dataclass
class SimApp:
    app_key: str
    app_secret: str
    domain: Domain
    accounts: list[str] = field(default_factory=list)


@dataclass
class SimToken:
    value: str
    app_key: str
    issued_ns: int
    expires_ns: int
    revoked: bool = False


@dataclass
class SimStats:
    requests: int = 0
    rate_rejected: int = 0
    tokens_issued: int = 0
    token_throttled: int = 0
    per_window: dict[tuple[str, int], int] = field(default_factory=dict)


class SimVenue:
    """Gateway state: apps, tokens, approval keys, rate windows; owns the order book."""

    def __init__(self, settings: SimSettings | None = None, *, clock: Clock | None = None,
                 market: KisSimMarket | None = None) -> None:
        self.settings = settings or SimSettings()
        self.clock: Clock = clock or LiveClock()
        s = self.settings
        self.market = market or KisSimMarket(s.symbols, s.seed, step_s=s.step_interval,
                                             start_ns=self.clock.now_ns())
        self.book = SimBook(self.market, self._notify,
                            liquidity_per_step=self.settings.liquidity_per_step)
        self.apps: dict[str, SimApp] = {}
        self.tokens: dict[str, SimToken] = {}
        self.approvals: dict[str, str] = {}           # approval key -> app key
        self._last_issue: dict[str, int] = {}
        self._current: dict[str, SimToken] = {}
        self.stats = SimStats()
        self.notice_sinks: list[Any] = []             # callables (hts_id, fields) -> None

    # -- setup --------------------------------------------------------------------------

    def add_app(self, app_key: str, app_secret: str, *, domain: Domain | None = None,
                account: str = "50000000-01", hts_id: str = "simuser",
                cash: Decimal = Decimal(10_000_000),
                positions: dict[str, tuple[int, int]] | None = None) -> SimApp:
        app = SimApp(app_key, app_secret, domain or self.settings.domain, [account])
        self.apps[app_key] = app
        self.book.open_account(account, hts_id, cash, positions)
        return app

    def _notify(self, hts_id: str, fields: list[str]) -> None:
        for sink in list(self.notice_sinks):
            sink(hts_id, fields)

    # -- OAuth --------------------------------------------------------------------------

    def _app(self, app_key: str, secret: str) -> SimApp:
        app = self.apps.get(app_key)
        if app is None or app.app_secret != secret:
            raise SimHttpError(403, {"error_code": "EGW00103",
                                     "error_description": "유효하지 않은 AppKey입니다."})
        if app.domain != self.settings.domain:
            raise self._domain_error()
        return app

    def _domain_error(self) -> SimHttpError:
        if self.settings.domain == "real":
            msg = "실전투자 도메인은 모의투자 앱키로 호출하실 수 없습니다."
        else:
            msg = "모의투자 도메인은 실전투자 앱키로 호출하실 수 없습니다."
        return kis_error(500, wire.DOMAIN_MISMATCH, msg)

    def issue_token(self, body: Json) -> Json:
        if body.get("grant_type") != "client_credentials":
            raise SimHttpError(403, {"error_code": "EGW00002",
                                     "error_description": "grant_type 오류"})
        app = self._app(str(body.get("appkey", "")), str(body.get("appsecret", "")))
        now = self.clock.now_ns()
        last = self._last_issue.get(app.app_key)
        if last is not None and now - last < self.settings.token_throttle * NS:
            self.stats.token_throttled += 1
            raise SimHttpError(403, {"error_code": wire.TOKEN_THROTTLED,
                                     "error_description":
                                     "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)"})
        self._last_issue[app.app_key] = now
        tok = self._current.get(app.app_key)
        if (tok is None or tok.revoked or tok.expires_ns <= now
                or now - tok.issued_ns >= self.settings.token_reuse * NS):
            tok = SimToken("sim." + secrets.token_urlsafe(48), app.app_key, now,
                           now + int(self.settings.token_ttl * NS))
            self.tokens[tok.value] = tok
            self._current[app.app_key] = tok
            self.stats.tokens_issued += 1
        return {"access_token": tok.value, "token_type": "Bearer",
                "expires_in": max(0, (tok.expires_ns - now) // NS),
                "access_token_token_expired":
                    to_kst(tok.expires_ns).strftime("%Y-%m-%d %H:%M:%S")}

    def revoke(self, token: str) -> None:
        tok = self.tokens.get(token)
        if tok:
            tok.revoked = True

    def approval(self, body: Json) -> Json:
        app = self._app(str(body.get("appkey", "")), str(body.get("secretkey", "")))
        key = "simws-" + secrets.token_hex(16)
        self.approvals[key] = app.app_key
        return {"approval_key": key}

    # -- per-request gateway checks -----------------------------------------------------

    def gate(self, headers: Any) -> SimApp:
        """Authenticate a /uapi request and count it in its app key's 1 s window."""
        self.stats.requests += 1
        app_key = headers.get("appkey", "")
        app = self.apps.get(app_key)
        if app is None or headers.get("appsecret", "") != app.app_secret:
            raise kis_error(500, "EGW00103", "유효하지 않은 AppKey입니다.")
        if app.domain != self.settings.domain:
            raise self._domain_error()
        now = self.clock.now_ns()
        window = now // NS
        n = self.stats.per_window.get((app_key, window), 0) + 1
        self.stats.per_window[(app_key, window)] = n
        if n > self.settings.limit():
            self.stats.rate_rejected += 1
            raise kis_error(500, wire.RATE_EXCEEDED, "초당 거래건수를 초과하였습니다.")
        auth = headers.get("authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        tok = self.tokens.get(token)
        if tok is None or tok.revoked or tok.app_key != app_key:
            raise kis_error(500, wire.TOKEN_INVALID, "유효하지 않은 token 입니다.")
        if tok.expires_ns <= now:
            raise kis_error(500, wire.TOKEN_EXPIRED, "기간이 만료된 token 입니다.")
        return app

    def check_tr(self, tr_id: str, allowed: tuple[str, ...]) -> None:
        """Trading TRs must match the domain (virtual ones start with V)."""
        virtual = tr_id.startswith("V")
        real_form = "T" + tr_id[1:] if virtual else tr_id
        if real_form not in allowed:
            raise kis_error(500, "OPSQ0002", f"없는 서비스 코드 입니다 (tr_id {tr_id})")
        if virtual != (self.settings.domain == "virtual"):
            msg = "모의투자 TR 이 아닙니다." if self.settings.domain == "virtual" \
                else "실전투자 TR 이 아닙니다."
            raise kis_error(500, "OPSQ0003", msg)

    def account_of(self, app: SimApp, cano: str, prdt: str) -> str:
        account = f"{cano}-{prdt}"
        if account not in app.accounts:
            raise kis_error(500, "OPSQ0001", f"계좌번호 오류 (account {account})")
        return account
