"""Live mode: the daemon's broker and market for one KIS account.

``jts.app.App`` calls :func:`build_live` when ``[daemon] mode = "live"``. It returns a
:class:`LiveKisBroker` (the KIS adapter whose ``connect`` also warms the feed up) and a
:class:`brokers.kis.feed.KisFeed` over that broker's WebSocket session. Both share the
daemon's cache store (``[storage] cache``): the access token and today's order mapping
survive a restart when it is ``redis://``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from brokers.kis.auth import TokenStore
from brokers.kis.broker import KisBroker
from brokers.kis.config import KisAccountConfig, KisConfig, KisCredentials
from brokers.kis.feed import KisFeed
from brokers.kis.memory import CacheTokenStore, LazyCache, OrderMemory
from jts.clock import Clock
from jts.errors import ConfigError

if TYPE_CHECKING:
    from jts.config import Config

log = structlog.get_logger(__name__)


class LiveKisBroker(KisBroker):
    """A :class:`KisBroker` that owns the cache it keeps its token and orders in, and
    prefetches the feed's warm-up bars while connecting (App reads them synchronously)."""

    def __init__(self, cfg: KisAccountConfig, creds: KisCredentials, *, cache: LazyCache,
                 account: str, clock: Clock, token_store: TokenStore | None = None,
                 memory: OrderMemory | None = None) -> None:
        super().__init__(cfg, creds, account=account, clock=clock, token_store=token_store,
                         memory=memory)
        self.cache = cache
        self.feed: KisFeed | None = None

    async def connect(self) -> None:
        await super().connect()
        if self.feed is not None:
            await self.feed.prefetch(self.clock.now_ns())

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            await self.cache.close()

    def status(self) -> dict[str, Any]:
        """For ``jts status``: rate limiting (EGW00201 included), stream and feed health."""
        out: dict[str, Any] = {"domain": self.cfg.domain}
        if hasattr(self, "rest"):
            lim = self.limiter.stats()
            out.update(requests=self.rest.counters["requests"],
                       rate_limited=self.rest.counters["rate_limited"],
                       venue_limited=lim.venue_limited, effective_limit=lim.effective_limit,
                       tokens_issued=self.auth.issued)
        if self.stream is not None:
            out["ws_connected"] = self.stream.connected.is_set()
            out["ws"] = dict(self.stream.counters)
        if self.feed is not None:
            out["feed"] = self.feed.status()
        return out


def choose_account(kis: KisConfig) -> tuple[str, KisAccountConfig]:
    """The daemon trades the first account of ``[brokers.kis.accounts]``."""
    if not kis.accounts:
        raise ConfigError("live mode needs a KIS account", key="brokers.kis.accounts")
    name = next(iter(kis.accounts))
    if len(kis.accounts) > 1:
        log.warning("kis_accounts_unused", trading=name,
                    unused=sorted(set(kis.accounts) - {name}))
    return name, kis.accounts[name]


def build_live(cfg: Config, clock: Clock, *, env: dict[str, str] | None = None
               ) -> tuple[LiveKisBroker, KisFeed]:
    """(broker, market) for ``[daemon] mode = "live"``; ConfigError names the key at fault."""
    kis = cfg.brokers.kis
    if kis is None:
        raise ConfigError("live mode needs [brokers.kis.accounts.NAME]", key="brokers.kis",
                          file=cfg.source or None)
    if cfg.market.feed != "kis":
        raise ConfigError('live mode streams from KIS: set feed = "kis"', key="market.feed",
                          file=cfg.source or None)
    if not cfg.market.watchlist:
        raise ConfigError("the KIS feed needs the symbols to stream", key="market.watchlist",
                          file=cfg.source or None)
    name, acct = choose_account(kis)
    creds = acct.credentials(env, where=f"brokers.kis.accounts.{name}")
    from jts.log import register_secret

    register_secret(creds.app_key)
    register_secret(creds.app_secret)
    cache = LazyCache(cfg.storage_url("cache"), clock=clock)
    memory = OrderMemory(cache, f"kis:orders:{acct.domain}:{creds.account}", clock=clock)
    broker = LiveKisBroker(acct, creds, cache=cache, account=name, clock=clock,
                           token_store=CacheTokenStore(cache, clock=clock), memory=memory)
    feed = KisFeed(broker, cfg.market.watchlist, history_bars=cfg.market.history_bars)
    broker.feed = feed
    log.info("kis_live_built", account=name, domain=acct.domain,
             symbols=len(feed.symbols))
    return broker, feed
