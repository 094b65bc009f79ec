"""Run one backtest: compiled strategy + aligned bars + the shared CostModel → equity curve
and trade list. Prepares the kernel's inputs (signals per symbol on its own bars, scattered
onto the common time axis; ATR for volatility sizing; per-market, per-day sell-tax rates
looked up by settlement date exactly as the paper broker does) and decodes its output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

import msgspec
import numpy as np
import numpy.typing as npt

from jts.backtest import kernel as K
from jts.backtest.signals import evaluate
from jts.costs import CostModel, TaxRate
from jts.errors import ConfigError, DataError
from jts.indicators import atr as atr_fn
from jts.krx import LIMIT_RATE, Market, market_of, tick_arrays
from jts.live_sizing import KELLY_MIN_TRADES, KELLY_PROBE, KELLY_WINDOW
from jts.storage.timeseries import BarArrays
from jts.strategy.loader import CompiledStrategy

F64 = npt.NDArray[np.float64]
DAY_NS = 86_400 * 10**9
KST_NS = 9 * 3_600 * 10**9
EPOCH = date(1970, 1, 1)
SIZING = {"fixed_quantity": K.SZ_QTY, "fixed_notional": K.SZ_NOTIONAL,
          "percent_equity": K.SZ_PCT, "atr_target": K.SZ_ATR, "kelly": K.SZ_KELLY}
FILLS = {"next_open": K.FILL_NEXT_OPEN, "close": K.FILL_CLOSE, "next_vwap": K.FILL_NEXT_VWAP}


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Simulation assumptions (costs come from the CostModel)."""

    initial_cash: float = 100_000_000.0
    fill: Literal["next_open", "close", "next_vwap"] = "next_open"
    venue: str = "krx"
    direction: Literal["long", "short"] = "long"
    slippage_bps: float | None = None      # None: CostModel.slippage_bps
    impact_bps: float = 0.0                # + impact_bps * sqrt(quantity / bar volume)
    participation_cap: float = 0.0         # max fraction of a bar's volume; 0: no cap
    lot_size: float | None = None          # None: 1 share (KRX), 1e-8 (crypto)
    price_limits: bool = True              # KRX ±30 % around the previous day's close
    max_positions: int | None = None       # None: the strategy's max_positions (or no limit)
    kelly_window: int = KELLY_WINDOW
    kelly_min_trades: int = KELLY_MIN_TRADES
    kelly_probe: float = KELLY_PROBE       # fraction of equity while Kelly has too few trades

    def __post_init__(self) -> None:
        if not self.initial_cash > 0:
            raise ValueError("initial_cash must be > 0")
        if not 0 <= self.participation_cap <= 1:
            raise ValueError("participation_cap must be in [0, 1]")
        if self.impact_bps < 0 or (self.slippage_bps is not None and self.slippage_bps < 0):
            raise ValueError("slippage and impact must be ≥ 0")


@dataclass
class Trade:
    symbol: str
    side: str                  # "long" | "short"
    quantity: float
    signal_ts_ns: int          # close of the bar whose signal opened it (-1: none)
    entry_ts_ns: int
    entry_price: float
    exit_ts_ns: int | None     # None while open
    exit_price: float          # last close while open
    fees: float
    slippage: float
    pnl: float
    exit_reason: str
    bars_held: int
    entry_bar: int
    exit_bar: int


@dataclass
class Result:
    symbols: list[str]
    ts_ns: npt.NDArray[np.int64]
    equity: F64
    gross: F64
    rows: F64                  # kernel trade rows (decoded lazily by ``trades``)
    initial_cash: float
    fees: float
    slippage: float
    turnover: float
    fills: int
    capped_fills: int
    held_bars: npt.NDArray[np.int64]
    bars_per_symbol: npt.NDArray[np.int64]
    settings: Settings
    timeframe: str = "1m"
    assumptions: dict[str, object] = field(default_factory=dict)
    _trades: list[Trade] | None = None

    @property
    def trades(self) -> list[Trade]:
        if self._trades is None:
            self._trades = decode_trades(self.rows, self.symbols, self.ts_ns,
                                         self.settings.direction)
        return self._trades

    @property
    def final_equity(self) -> float:
        return float(self.equity[-1]) if self.equity.size else self.initial_cash


def _scatter(mask: npt.NDArray[np.bool_], values: F64, fill: float = np.nan) -> F64:
    out = np.full(mask.shape[0], fill)
    out[mask] = values
    return out


_TAX_CACHE: dict[tuple[str | None, int, Market, int], TaxRate] = {}


def _taxes(costs: CostModel, venue: str, markets: list[Market], days: npt.NDArray[np.int64]
           ) -> tuple[F64, F64]:
    """Per market (rows in ``Market`` order) and unique day: (stt, rural) sell-tax rates."""
    stt = np.zeros((len(Market), days.shape[0]))
    rural = np.zeros_like(stt)
    if costs.fees(venue).kind != "krx":
        return stt, rural
    for mi, m in enumerate(Market):
        if m not in markets:
            continue
        for j, d in enumerate(days.tolist()):
            key = (costs.tax_file, costs.settlement_days, m, int(d))
            rate = _TAX_CACHE.get(key)
            if rate is None:
                rate = _TAX_CACHE[key] = costs.tax_rate(m, EPOCH + timedelta(days=int(d)))
            stt[mi, j], rural[mi, j] = float(rate.stt), float(rate.rural)
    return stt, rural


def params_vector(cs: CompiledStrategy, costs: CostModel, st: Settings) -> F64:
    fees = costs.fees(st.venue)
    crypto = fees.kind == "crypto"
    if st.direction == "short" and not crypto:
        raise ConfigError("short selling is not allowed on KRX cash accounts "
                          f"(venue {st.venue!r}); use direction = 'long'")
    p = np.zeros(K.N_PARAMS)
    p[K.P_CASH] = st.initial_cash
    p[K.P_COMM] = float(fees.commission_rate)
    p[K.P_MIN_COMM] = float(fees.min_commission)
    p[K.P_TAKER] = float(fees.taker_rate)
    p[K.P_CRYPTO] = 1.0 if crypto else 0.0
    p[K.P_TICKS] = 1.0 if fees.rounds_to_ticks else 0.0
    p[K.P_SLIP_BPS] = float(costs.slippage_bps) if st.slippage_bps is None else st.slippage_bps
    p[K.P_IMPACT_BPS] = st.impact_bps
    p[K.P_CAP] = st.participation_cap
    p[K.P_FILL] = FILLS[st.fill]
    p[K.P_DIR] = -1.0 if st.direction == "short" else 1.0
    p[K.P_SIZING] = SIZING[cs.sizing.method]
    p[K.P_SIZE] = cs.sizing.value
    p[K.P_MAX_FRAC] = cs.sizing.max_fraction
    for slot, x in ((K.P_SL, cs.stops.stop_loss_pct), (K.P_TP, cs.stops.take_profit_pct),
                    (K.P_TRAIL, cs.stops.trailing_pct)):
        p[slot] = math.nan if x is None else x
    mp = st.max_positions if st.max_positions is not None else cs.max_positions
    p[K.P_MAX_POS] = float(mp) if mp is not None else math.inf
    p[K.P_LOT] = st.lot_size if st.lot_size is not None else (1e-8 if crypto else 1.0)
    p[K.P_LIMITS] = 1.0 if (st.price_limits and not crypto) else 0.0
    p[K.P_LIMIT_RATE] = float(LIMIT_RATE)
    p[K.P_KELLY_WIN] = st.kelly_window
    p[K.P_KELLY_MIN] = st.kelly_min_trades
    p[K.P_KELLY_PROBE] = st.kelly_probe
    return p


def run_backtest(cs: CompiledStrategy, bars: BarArrays, costs: CostModel | None = None,
                 settings: Settings | None = None,
                 markets: dict[str, Market] | None = None) -> Result:
    """Simulate ``cs`` over ``bars`` (NaN close = no bar for that symbol at that time)."""
    costs = costs or CostModel()
    st = settings or Settings()
    S, T = bars.close.shape
    if T == 0 or S == 0:
        raise DataError("no bars to backtest")
    p = params_vector(cs, costs, st)
    valid = ~np.isnan(bars.close)
    pdep = cs.position_dependent
    n_regs = cs.program.regs.shape[0]
    entry = np.zeros((S, T), np.bool_)
    exit_ = np.zeros((S, T), np.bool_)
    regs3 = np.zeros((S, n_regs, T) if pdep else (S, 1, 1))
    atr = np.zeros((S, T) if cs.sizing.method == "atr_target" else (S, 1))
    for s in range(S):
        m = valid[s]
        full = bool(m.all())
        cols = [np.ascontiguousarray(getattr(bars, f)[s] if full else getattr(bars, f)[s][m])
                for f in ("open", "high", "low", "close", "volume", "value")]
        sig = evaluate(cs, *cols)
        if pdep:
            regs3[s][:, m] = sig.regs
        else:
            entry[s, m] = sig.entry
            exit_[s, m] = sig.exit
        if cs.sizing.method == "atr_target":
            a = atr_fn(cols[1], cols[2], cols[3], cs.sizing.atr_period)
            atr[s] = a if full else _scatter(m, a)
    day = (bars.ts_ns + KST_NS) // DAY_NS
    days, day_idx = np.unique(day, return_inverse=True)
    mk = [(markets or {}).get(sym) or market_of(sym) or Market.KOSPI for sym in bars.symbols]
    mkt = np.array([list(Market).index(m) for m in mk], np.int64)
    stt, rural = _taxes(costs, st.venue, mk, days)
    lows, ticks = tick_arrays()
    cap = min(S * T, 1024 + (S * T) // 64)
    while True:
        equity, gross, rows, n_tr, acc, held = K.simulate(
            day, bars.open, bars.high, bars.low, bars.close, bars.volume, bars.value, entry,
            exit_, pdep, cs.program.ops, cs.program.tail, regs3, cs.entry_reg, cs.exit_reg,
            atr, mkt, day_idx.astype(np.int64), stt, rural, p, lows, ticks, cap)
        if n_tr <= cap:
            break
        cap = n_tr
    slip = p[K.P_SLIP_BPS]
    return Result(bars.symbols, bars.ts_ns, equity, gross, rows[:n_tr], st.initial_cash,
                  float(acc[K.A_FEES]), float(acc[K.A_SLIP]), float(acc[K.A_TURNOVER]),
                  int(acc[K.A_FILLS]), int(acc[K.A_CAPPED]), held, valid.sum(axis=1), st,
                  timeframe=bars.timeframe, assumptions=assumptions(costs, st, slip))


def assumptions(costs: CostModel, st: Settings, slippage_bps: float) -> dict[str, object]:
    fees = costs.fees(st.venue)
    return {"venue": st.venue, "fee_kind": fees.kind,
            "commission_rate": float(fees.commission_rate),
            "min_commission": float(fees.min_commission), "taker_rate": float(fees.taker_rate),
            "slippage_bps": slippage_bps, "impact_bps": st.impact_bps,
            "participation_cap": st.participation_cap, "tick_rounding": fees.rounds_to_ticks,
            "price_limits": st.price_limits and fees.kind == "krx",
            "sell_tax": f"KRX table by settlement date (T+{costs.settlement_days})"
            if fees.kind == "krx" else "none",
            "fill": st.fill, "direction": st.direction, "initial_cash": st.initial_cash}


def decode_trades(rows: F64, symbols: list[str], ts_ns: npt.NDArray[np.int64],
                  direction: str) -> list[Trade]:
    out: list[Trade] = []
    for r in rows:
        exit_bar = int(r[K.T_EXIT_BAR])
        sig = int(r[K.T_SIGNAL_BAR])
        out.append(Trade(
            symbol=symbols[int(r[K.T_SYM])], side=direction, quantity=float(r[K.T_QTY]),
            signal_ts_ns=int(ts_ns[sig]) if sig >= 0 else -1,
            entry_ts_ns=int(ts_ns[int(r[K.T_ENTRY_BAR])]), entry_price=float(r[K.T_ENTRY_PX]),
            exit_ts_ns=int(ts_ns[exit_bar]) if exit_bar >= 0 else None,
            exit_price=float(r[K.T_EXIT_PX]), fees=float(r[K.T_FEES]),
            slippage=float(r[K.T_SLIP]), pnl=float(r[K.T_PNL]),
            exit_reason=K.REASONS[int(r[K.T_REASON])], bars_held=int(r[K.T_BARS_HELD]),
            entry_bar=int(r[K.T_ENTRY_BAR]), exit_bar=exit_bar))
    return out
