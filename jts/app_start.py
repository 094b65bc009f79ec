"""The daemon's start-up steps before its tasks run, in order: the ledger (opened, migrated,
and the portfolio and strategies restored from its fills), the order journal (and what a
crash left in it), the reconciliation with the broker, and the warm-up history. Each takes
the :class:`jts.app.App` being started."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING

import structlog

from jts.clock import NS
from jts.money import to_decimal
from jts.risk import TradingState
from jts.storage.order_wal import OrderWal
from jts.types import Bar

if TYPE_CHECKING:
    from jts.app import App

log = structlog.get_logger(__name__)


async def open_ledger(app: App) -> None:
    """Open (and for the embedded default, migrate) the ledger; restore the portfolio
    and each strategy's positions from the fills it holds."""
    from jts.storage.ledger import open_ledger as open_store

    if app.ledger is None:
        app.ledger = await open_store(app.cfg.storage_url("ledger"), clock=app.clock)
    led = app.ledger
    app.desk.journal = led
    broker, account = app.broker.name, app.broker.account
    fills = [f for f in await led.fills() if f.broker == broker and f.account == account]
    if not fills and await led.cash(broker, account) == 0:
        # the first start of an account: paper starts from [paper] initial_cash, a real
        # account from the broker's own balance
        opening = (to_decimal(app.cfg.paper.initial_cash) if app.cfg.daemon.mode == "paper"
                   else (await app.broker.balance()).cash)
        await led.set_cash(broker, account, opening, reason="initial deposit")
    for f in fills:
        app.engine.on_fill(f)
        app.portfolio.apply(f)
    app.portfolio.cash = await led.cash(broker, account)   # the ledger's cash is the truth
    app.desk.seen_trades({(f.broker, f.account, f.trade_id) for f in fills})
    restore = getattr(app.broker, "restore", None)
    if restore is not None and fills:
        restore(app.portfolio.open_positions(), app.portfolio.cash)
    await led.audit("daemon_started", {"pid": os.getpid(), "mode": app.cfg.daemon.mode,
                                       "fills": len(fills)})
    log.info("ledger_restored", fills=len(fills), cash=str(app.portfolio.cash),
             positions=len(app.portfolio.open_positions()))


async def open_journal(app: App) -> None:
    """Open the order journal ([orders] journal) and put what a crash left in it into the
    ledger (orders journaled but never recorded: NEW, so the reconciliation that follows
    asks the broker about them); then the desk writes ahead to it."""
    from jts.order_recovery import restore_journal

    app.order_wal = await asyncio.to_thread(OrderWal.open, app.cfg.journal_path,
                                             sync=app.cfg.orders.journal_sync)
    await restore_journal(app.order_wal, app.ledger)
    app.desk.wal = app.order_wal


async def reconcile_at_start(app: App) -> None:
    """Compare broker truth with the ledger before trading; mismatches halt or are
    adopted per ``[daemon] reconcile``."""
    from jts.reconcile import reconcile

    report = await reconcile(app.ledger, app.broker, policy=app.cfg.daemon.reconcile,
                             clock=app.clock, on_alert=app.notifier.notify)
    if report.halt:
        app.risk.set_state(TradingState.HALTED, report.summary())
        log.critical("trading_halted", reason="reconciliation", summary=report.summary())
    for f in await app.ledger.fills(since_ns=report.ts_ns):
        if f.strategy == "reconcile" and (f.broker, f.account) == (app.broker.name,
                                                                     app.broker.account):
            app.portfolio.apply(f)
    app.portfolio.cash = await app.ledger.cash(app.broker.name, app.broker.account)
    app.last_reconcile = report.as_dict()


async def warmup_history(app: App) -> dict[str, list[Bar]]:
    """Warm-up bars: for a real feed, the stored 1-minute bars of the last week (the
    newest ``history_bars`` per symbol), topped up by the feed's own history for symbols
    the store lacks; the simulated market generates its own consistent history."""
    n, now = app.cfg.market.history_bars, app.clock.now_ns()
    symbols = list(app.market.symbols)
    if n == 0:
        return {}
    if app.timeseries is None or app.cfg.market.feed == "sim":
        return dict(app.market.history(n, now, "1m"))
    frame = await app.timeseries.read_bars_df(symbols, now - 7 * 86_400 * NS, now, "1m")
    stored: dict[str, list[Bar]] = {}
    for sym, g in frame.groupby("symbol", sort=False):
        rows = g.tail(n)
        stored[str(sym)] = [Bar(str(sym), "1m", int(r.ts_ns), float(r.open), float(r.high),
                                float(r.low), float(r.close), float(r.volume),
                                float(r.value)) for r in rows.itertuples()]
    missing = [s for s in symbols if len(stored.get(s, [])) < n]
    if missing:
        fetched = app.market.history(n, now, "1m")
        for s in missing:
            stored[s] = list(fetched.get(s, stored.get(s, [])))
    log.info("warmup_from_store", symbols=len(symbols), from_store=len(symbols) - len(missing))
    return stored
