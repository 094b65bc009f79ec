"""Configuration of KIS accounts: ``[brokers.kis.accounts.NAME]`` tables in jts.toml.

Secrets never live in the file: each account names the environment variables that hold
its app key, app secret, account number (``CANO-ACNT_PRDT_CD``) and HTS id. Endpoints
default to the official hosts of the chosen domain and can point at the simulator.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from brokers.kis import wire
from jts.errors import ConfigError


class KisAccountConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    domain: Literal["real", "virtual"] = "virtual"
    app_key_env: str = "KIS_APP_KEY"
    app_secret_env: str = "KIS_APP_SECRET"
    account_env: str = "KIS_ACCOUNT"          # "12345678-01"
    hts_id_env: str = "KIS_HTS_ID"            # fill notices are keyed by HTS id; optional
    rest_url: str = ""                        # "" = official host for the domain
    ws_url: str = ""
    custtype: Literal["P", "B"] = "P"
    rate_limit: int = 0                       # requests/s per app key; 0 = 20 real / 2 virtual
    rate_margin: float = 0.05                 # seconds added to each window (jitter guard)
    request_timeout: float = 10.0
    ws_max_subscriptions: int = wire.WS_MAX_SUBSCRIPTIONS
    token_refresh_margin: float = 3_600.0     # renew a cached token this long before expiry
    read_retries: int = 3
    fill_poll_interval: float = 5.0           # s; read today's orders when notices are quiet

    @property
    def rest_base(self) -> str:
        return (self.rest_url or wire.REST_HOSTS[self.domain]).rstrip("/")

    @property
    def ws_endpoint(self) -> str:
        return self.ws_url or wire.WS_HOSTS[self.domain]

    @property
    def requests_per_second(self) -> int:
        return self.rate_limit or wire.RATE_LIMIT[self.domain]

    def credentials(self, env: Mapping[str, str] | None = None, *,
                    where: str = "brokers.kis") -> KisCredentials:
        """Read the secrets from the environment; a missing one is a ConfigError naming
        the variable and the config key."""
        env = os.environ if env is None else env

        def need(field: str, var: str) -> str:
            value = env.get(var, "").strip()
            if not value:
                raise ConfigError(f"environment variable {var} is not set",
                                  key=f"{where}.{field}")
            return value

        account = need("account_env", self.account_env)
        cano, _, prdt = account.partition("-")
        if len(cano) != 8 or not cano.isdigit() or len(prdt) != 2 or not prdt.isdigit():
            raise ConfigError(f"{self.account_env} must look like 12345678-01, got {account!r}",
                              key=f"{where}.account_env")
        return KisCredentials(need("app_key_env", self.app_key_env),
                              need("app_secret_env", self.app_secret_env), cano, prdt,
                              env.get(self.hts_id_env, "").strip())


class KisCredentials:
    """Secrets of one account; ``repr`` never shows them."""

    __slots__ = ("app_key", "app_secret", "cano", "hts_id", "prdt")

    def __init__(self, app_key: str, app_secret: str, cano: str, prdt: str,
                 hts_id: str = "") -> None:
        self.app_key = app_key
        self.app_secret = app_secret
        self.cano = cano
        self.prdt = prdt
        self.hts_id = hts_id

    @property
    def account(self) -> str:
        return f"{self.cano}-{self.prdt}"

    def __repr__(self) -> str:
        return f"KisCredentials(account={self.cano[:2]}******-{self.prdt}, app_key=***)"


class KisConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    accounts: dict[str, KisAccountConfig] = {}

    def account(self, name: str | None = None) -> tuple[str, KisAccountConfig]:
        """The named account, or the only one when ``name`` is None."""
        if name is None:
            if len(self.accounts) != 1:
                raise ConfigError(f"say which KIS account (kis:NAME); configured: "
                                  f"{', '.join(sorted(self.accounts)) or 'none'}",
                                  key="brokers.kis.accounts")
            name = next(iter(self.accounts))
        if name not in self.accounts:
            raise ConfigError(f"no KIS account {name!r}", key=f"brokers.kis.accounts.{name}")
        return name, self.accounts[name]


def parse_kis_config(raw: Mapping[str, Any], *, file: str | None = None) -> KisConfig:
    """Validate the ``[brokers.kis]`` table; errors name the key path."""
    unknown = set(raw) - {"accounts"}
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(sorted(unknown))}", file=file,
                          key="brokers.kis")
    accounts_raw = raw.get("accounts", {})
    if not isinstance(accounts_raw, Mapping):
        raise ConfigError("must be a table of accounts", file=file, key="brokers.kis.accounts")
    accounts: dict[str, KisAccountConfig] = {}
    for name, table in accounts_raw.items():
        where = f"brokers.kis.accounts.{name}"
        try:
            accounts[str(name)] = msgspec.convert(table, KisAccountConfig)
        except msgspec.ValidationError as e:
            text, _, path = str(e).partition(" - at `$")
            key = where + path.rstrip("`") if path else where
            raise ConfigError(text, file=file, key=key) from None
    cfg = KisConfig(accounts)
    for name, acct in cfg.accounts.items():
        where = f"brokers.kis.accounts.{name}"
        if acct.rate_limit < 0 or acct.rate_margin < 0 or acct.request_timeout <= 0:
            raise ConfigError("rate_limit, rate_margin and request_timeout must be positive",
                              file=file, key=where)
        for field, url in (("rest_url", acct.rest_url), ("ws_url", acct.ws_url)):
            if url and "://" not in url:
                raise ConfigError(f"{url!r} is not a URL", file=file, key=f"{where}.{field}")
    return cfg
