"""Replay: the live trading pipeline driven over stored bars on a fake clock.

The same components the daemon composes in :mod:`jts.app` — :class:`Collector`,
:class:`StrategyEngine`, :class:`RiskGate`, :class:`Desk`, :class:`PaperBroker` and a SQLite
ledger — are stepped deterministically, one bar time at a time over the union of the
symbols' bars (no tasks, no channels, so nothing races):

1. the bar's prints (open, high, low, close, in that order and time) go through
   ``Collector.ingest`` (which marks the last prices and the portfolio, as the daemon's
   publish hook does) and then ``PaperBroker.on_ticks``: a market order sent after the
   previous bar closed fills at this bar's open print, with the CostModel's slippage, tick
   rounding, price limits, commission and tax; every broker event goes to
   ``Desk.on_report`` (ledger first), fills on to ``StrategyEngine.on_fill``;
2. the stored bars of that time go to ``StrategyEngine.on_bars``; every intent goes to
   ``Desk.handle`` (risk check, write-ahead, submit).

The result is a :class:`jts.backtest.engine.Result` built from the ledger's fills and the
portfolio's equity at each bar close, so ``jts.backtest.report.build`` renders the same JSON
as ``jts backtest --json``. See docs/replay.md.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import numpy as np
import structlog

from brokers.base import BrokerEvent
from brokers.paper import PaperBroker
from jts.backtest import kernel as K
from jts.backtest.engine import Result, Settings, assumptions
from jts.bars import timeframe_ns
from jts.clock import FakeClock
from jts.collector import Collector, Feed
from jts.config import RiskConfig
from jts.costs import CostModel
from jts.desk import Desk, OrderRecord
from jts.engine import StrategyEngine
from jts.errors import ConfigError, DataError, InvariantError
from jts.krx import Market, market_of
from jts.money import to_decimal
from jts.portfolio import Portfolio
from jts.risk import RiskGate
from jts.storage.ledger import Ledger, open_ledger
from jts.storage.timeseries import BarArrays
from jts.types import Bar, Fill, OrderIntent, Side, Tick

log = structlog.get_logger(__name__)

FEED = "replay"
# Limits wide enough never to bind: parity is about the simulation, not the risk policy
# (the strategy's own max_positions still applies, in the engine, as in the backtest).
WIDE_RISK = RiskConfig(max_position_notional=1e18, max_total_exposure=1e18,
                       max_open_positions=10**9, max_orders_per_minute=10**9,
                       max_daily_loss=1e18, price_band_pct=30.0)


class ReplayBroker(PaperBroker):
    """The paper broker with its event stream kept in a plain queue the replay drains after
    each step (``events()`` would need a concurrent router task)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outbox: deque[BrokerEvent] = deque()

    def _emit(self, ev: BrokerEvent) -> None:
        self.outbox.append(ev)


async def _no_feed() -> AsyncIterator[list[Tick]]:
    return
    yield  # pragma: no cover  (makes this an async generator)


@dataclass
class ReplayStats:
    """Counters of one replay (reported under ``"replay"`` in the JSON)."""

    prints: int = 0
    prints_accepted: int = 0
    bars: int = 0
    intents: int = 0
    risk_rejected: int = 0
    broker_rejected: int = 0
    fills: int = 0
    ledger: str = ""
    ledger_verified: bool = False

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


class Replay:
    """One replay of ``strategy`` over ``bars`` (a (symbols × time) matrix, NaN = no bar)."""

    def __init__(self, strategy: Any, bars: BarArrays, costs: CostModel, ledger: Ledger, *,
                 initial_cash: float = 100_000_000.0, venue: str = "krx",
                 clock: FakeClock | None = None) -> None:
        if costs.fees(venue).kind != "krx":
            raise ConfigError(f"replay supports KRX venues only, not {venue!r}")
        if bars.ts_ns.size == 0 or not bars.symbols:
            raise DataError("no bars to replay")
        if dataclasses.is_dataclass(strategy) and not isinstance(strategy, type):
            # the replayed symbols are the universe (as `jts backtest --symbols`): a list,
            # a market or "surge" in the file does not narrow them
            strategy = dataclasses.replace(strategy, universe=tuple(bars.symbols))
        self.cs = strategy
        self.bars = bars
        self.costs = costs
        self.ledger = ledger
        self.cash0 = initial_cash
        self.venue = venue
        self.tf_ns = _bar_ns(bars.timeframe)
        self.clock = clock or FakeClock(int(bars.ts_ns[0]))
        self.stats = ReplayStats()
        self._base: dict[str, tuple[int, float | None]] = {}   # symbol → (KST day, prev close)
        self._last_close: dict[str, float] = {}
        self.portfolio = Portfolio(cash=to_decimal(initial_cash))
        self.last_prices: dict[str, float] = {}
        self.risk = RiskGate(WIDE_RISK, prev_close=self.prev_close)
        self.broker = ReplayBroker(name="replay", account="replay-1", cost_model=costs,
                                   initial_cash=to_decimal(initial_cash), clock=self.clock,
                                   symbols=bars.symbols, market=self.market,
                                   prev_close=self.prev_close)
        self.engine = StrategyEngine([strategy], list(bars.symbols), self.portfolio)
        self.desk = Desk(self.broker, self.risk, self.portfolio, self.clock,
                         self.last_prices.get, journal=cast(Any, ledger), on_order_done=self._done,
                         publish_fill=self._fill)
        self.collector = Collector([Feed(FEED, _no_feed, venue=venue)], self._publish,
                                   self.clock)
        self._signal: dict[str, int] = {}       # client order id → signal bar time
        self._reason: dict[str, int] = {}       # client order id → K.REASONS index of a stop exit

    # --- the hooks the daemon wires through channels ---------------------------------
    @staticmethod
    def market(symbol: str) -> Market:
        return market_of(symbol) or Market.KOSPI     # as the backtest's tax lookup

    def prev_close(self, symbol: str) -> float | None:
        """The previous KST day's last close (the ±30 % limit base); None on the first day."""
        got = self._base.get(symbol)
        return got[1] if got else None

    def _publish(self, ticks: Sequence[Tick]) -> None:
        for t in ticks:            # as App._on_ticks: last prices and portfolio marks
            self.last_prices[t.symbol] = t.price
            self.portfolio.mark(t.symbol, t.price)

    def _done(self, rec: OrderRecord) -> None:
        self.engine.on_order_done(rec.request.strategy, rec.request.symbol)

    async def _fill(self, fill: Fill) -> None:
        self.engine.on_fill(fill)

    async def _route(self) -> None:
        while self.broker.outbox:
            await self.desk.on_report(self.broker.outbox.popleft())

    # --- the loop ----------------------------------------------------------------------
    async def run(self) -> Result:
        led = self.ledger
        broker, account = self.broker.name, self.broker.account
        await led.set_cash(broker, account, to_decimal(self.cash0), reason="initial deposit",
                           ts_ns=self.clock.now_ns())
        await self.broker.connect()
        b = self.bars
        S, T = b.close.shape
        valid = ~np.isnan(b.close)
        equity = np.empty(T)
        gross = np.empty(T)
        held_bars = np.zeros(S, np.int64)
        step = min(self.tf_ns, 60 * 10**9) // 4
        for t in range(T):
            ts = int(b.ts_ns[t])
            rows = np.flatnonzero(valid[:, t]).tolist()
            day = (ts + 9 * 3600 * 10**9) // (86_400 * 10**9)
            for s in rows:
                sym = b.symbols[s]
                got = self._base.get(sym)
                if got is None or got[0] != day:
                    self._base[sym] = (day, self._last_close.get(sym))
            # (1) the bar's prints: open first; the orders from the last close fill on it
            for k, field in enumerate(("open", "high", "low", "close")):
                at = ts + k * step
                self.clock.set(max(self.clock.now_ns(), at))
                col = getattr(b, field)[:, t]
                batch = [Tick(self.venue, b.symbols[s], at, at, float(col[s]),
                              _print_volume(float(b.volume[s, t])), 0) for s in rows]
                accepted = self.collector.ingest(FEED, batch)
                self.stats.prints += len(batch)
                self.stats.prints_accepted += len(accepted)
                self.broker.on_ticks(accepted)
                await self._route()
                for intent in self.engine.on_ticks(accepted):   # [stops], on every print
                    await self._handle(intent)
            # (2) the closed bars of t → strategy → risk → orders
            self.clock.set(max(self.clock.now_ns(), ts + self.tf_ns))
            closed = [Bar(b.symbols[s], b.timeframe, ts, float(b.open[s, t]),
                          float(b.high[s, t]), float(b.low[s, t]), float(b.close[s, t]),
                          float(b.volume[s, t]), float(b.value[s, t])) for s in rows]
            for s in rows:
                self._last_close[b.symbols[s]] = float(b.close[s, t])
            self.stats.bars += len(closed)
            for intent in self.engine.on_bars(closed):
                await self._handle(intent)
            await self._route()
            eq, g = float(self.portfolio.cash), 0.0
            for s, sym in enumerate(b.symbols):
                q = float(self.portfolio.position(sym))
                if q:
                    held_bars[s] += 1
                    px = self._last_close[sym]
                    eq += q * px
                    g += abs(q * px)
            equity[t], gross[t] = eq, g
        await self.broker.close()
        return await self._result(equity, gross, held_bars, valid.sum(axis=1))

    async def _handle(self, intent: OrderIntent) -> None:
        self.stats.intents += 1
        decision = await self.desk.handle(intent)
        if not decision.approved:
            self.stats.risk_rejected += 1
            return
        coid = next(reversed(self.desk.orders))
        self._signal[coid] = intent.ts_ns
        if intent.reason in K.REASONS:
            self._reason[coid] = K.REASONS.index(intent.reason)

    # --- the outcome, from the ledger ----------------------------------------------------
    async def _result(self, equity: Any, gross: Any, held_bars: Any, per_symbol: Any
                      ) -> Result:
        led = self.ledger
        broker, account = self.broker.name, self.broker.account
        fills = [f for f in await led.fills() if (f.broker, f.account) == (broker, account)]
        cash = await led.cash(broker, account)
        if not cash == self.portfolio.cash == self.broker.cash:
            raise InvariantError(f"replay cash disagrees: ledger {cash}, portfolio "
                                 f"{self.portfolio.cash}, broker {self.broker.cash}")
        report = await led.verify()
        if not report.ok:
            raise InvariantError(f"replay ledger failed verification: {report.problems}")
        self.stats.ledger_verified = True
        self.stats.fills = len(fills)
        self.stats.broker_rejected = self.desk.stats.broker_rejected
        rows = self._trade_rows(fills)
        fees = sum((f.commission + f.tax for f in fills), Decimal(0))
        turnover = sum((f.notional for f in fills), Decimal(0))
        slippage = float(rows[:, K.T_SLIP].sum()) if rows.size else 0.0
        st = Settings(initial_cash=self.cash0, venue=self.venue)
        return Result(list(self.bars.symbols), self.bars.ts_ns, equity, gross, rows,
                      self.cash0, float(fees), slippage, float(turnover), len(fills), 0,
                      held_bars, per_symbol.astype(np.int64), st,
                      timeframe=self.bars.timeframe,
                      assumptions=assumptions(self.costs, st, float(self.costs.slippage_bps)))

    def _trade_rows(self, fills: list[Fill]) -> Any:
        """Round trips (flat → long → flat) from the fills, as the kernel's trade rows."""
        b = self.bars
        index = {s: i for i, s in enumerate(b.symbols)}
        out: list[np.ndarray] = []
        open_rows: dict[str, np.ndarray] = {}
        qty: dict[str, Decimal] = {}
        exit_val: dict[str, float] = {}
        for f in sorted(fills, key=lambda f: f.ts_ns):
            s = index[f.symbol]
            t = int(np.searchsorted(b.ts_ns, f.ts_ns, side="right")) - 1   # the fill's bar
            px, q = float(f.price), float(f.quantity)
            fee = float(f.commission + f.tax)
            slip = abs(px - float(b.open[s, t])) * q
            held = qty.get(f.symbol, Decimal(0))
            if held == 0:
                if f.side is not Side.BUY:
                    raise InvariantError(f"replay: a sell opened a short in {f.symbol}")
                r = np.zeros(K.NT)
                r[K.T_SYM], r[K.T_ENTRY_BAR], r[K.T_EXIT_BAR] = s, t, -1
                sig = self._signal.get(f.client_order_id)
                r[K.T_SIGNAL_BAR] = -1 if sig is None else np.searchsorted(b.ts_ns, sig)
                r[K.T_QTY], r[K.T_ENTRY_VALUE] = q, q * px
                r[K.T_ENTRY_PX], r[K.T_FEES], r[K.T_SLIP] = px, fee, slip
                open_rows[f.symbol] = r
                exit_val[f.symbol] = 0.0
                out.append(r)
            else:
                r = open_rows[f.symbol]
                r[K.T_FEES] += fee
                r[K.T_SLIP] += slip
                if f.side is Side.BUY:           # adding to a long
                    r[K.T_QTY] += q
                    r[K.T_ENTRY_VALUE] += q * px
                    r[K.T_ENTRY_PX] = r[K.T_ENTRY_VALUE] / r[K.T_QTY]
                else:
                    exit_val[f.symbol] += q * px
            qty[f.symbol] = held + f.quantity * f.side.sign
            if held != 0 and qty[f.symbol] == 0:
                r = open_rows.pop(f.symbol)
                r[K.T_EXIT_BAR] = t
                r[K.T_EXIT_PX] = exit_val[f.symbol] / r[K.T_QTY]
                r[K.T_PNL] = exit_val[f.symbol] - r[K.T_ENTRY_VALUE] - r[K.T_FEES]
                r[K.T_REASON] = self._reason.get(f.client_order_id, K.R_SIGNAL)
                r[K.T_BARS_HELD] = self._bars_between(s, int(r[K.T_ENTRY_BAR]), t)
        for sym, r in open_rows.items():         # marked at the last close, no exit costs
            s = index[sym]
            last = self._last_close[sym]
            r[K.T_EXIT_PX] = last
            r[K.T_PNL] = r[K.T_QTY] * last - r[K.T_ENTRY_VALUE] - r[K.T_FEES]
            r[K.T_REASON] = K.R_OPEN
            r[K.T_BARS_HELD] = self._bars_between(s, int(r[K.T_ENTRY_BAR]), b.ts_ns.shape[0])
        return np.array(out).reshape(len(out), K.NT)

    def _bars_between(self, s: int, start: int, stop: int) -> int:
        """Closed bars of symbol ``s`` in [start, stop): the engine's ``bars_held``."""
        return int((~np.isnan(self.bars.close[s, start:stop])).sum())


def _bar_ns(timeframe: str) -> int:
    try:
        return timeframe_ns(timeframe)
    except ConfigError:
        return 86_400 * 10**9      # weeks and months: prints within the first day


def _print_volume(bar_volume: float) -> float:
    """Each of the four prints carries a quarter of the bar's volume. A bar without volume
    has no trades: its prints are rejected by the collector (``zero_volume``) and nothing
    fills on it — the one place replay can differ from the backtest (docs/replay.md)."""
    return bar_volume / 4.0 if bar_volume > 0 else 0.0


async def run_replay(strategy: Any, bars: BarArrays, costs: CostModel, *,
                     initial_cash: float = 100_000_000.0,
                     ledger_path: Path | None = None) -> tuple[Result, ReplayStats]:
    """Replay ``strategy`` over ``bars`` with a fresh SQLite ledger (``ledger_path``, or a
    temporary file removed afterwards); returns the backtest-shaped result and counters."""
    with tempfile.TemporaryDirectory(prefix="jts-replay-") as tmp:
        path = ledger_path or Path(tmp) / "ledger.sqlite3"
        if path.exists():
            raise ConfigError(f"ledger file already exists: {path} (replay needs a fresh one)")
        replay_clock = FakeClock(int(bars.ts_ns[0]) if bars.ts_ns.size else 0)
        ledger = await open_ledger(f"sqlite:///{path}?synchronous=normal", clock=replay_clock)
        try:
            rp = Replay(strategy, bars, costs, ledger, initial_cash=initial_cash,
                        clock=replay_clock)
            rp.stats.ledger = str(path) if ledger_path else ""
            res = await rp.run()
        finally:
            await ledger.close()
        log.info("replay_done", strategy=getattr(strategy, "name", ""), **rp.stats.as_dict())
        return res, rp.stats
