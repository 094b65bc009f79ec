"""The numba simulation kernel: one time-major pass over a (symbols × bars) portfolio that
shares one cash balance.

Per bar ``t``, for every symbol with a bar: (A) fill the order left by the previous bar's
signal at this bar's open (or VWAP), capped by volume participation, clamped into the KRX
daily price limits; then intrabar stops (stop-loss, take-profit, trailing) against the
bar's range, gaps filled at the open. Then equity is marked at the closes and (B) the
strategy's signals at this bar's close (position state in force at the close, the
position-dependent ops evaluated here by ``eval_bar``) create the next orders, sized with
this bar's close; with ``fill_mode=close`` they fill at once at the close.

Costs are the CostModel's numbers as floats (see :mod:`jts.backtest.engine`): commission
truncated to whole won with a minimum (KRX) or maker/taker (crypto), sell tax per market
and settlement day, slippage in bps plus square-root impact, adverse tick rounding.

Trades go into ``float64[cap, NT]`` rows (columns ``T_*``); when ``cap`` is too small the
kernel returns ``n_trades > cap`` and the caller re-runs with room.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from jts.strategy.kernel import eval_bar

# parameter vector slots
(P_CASH, P_COMM, P_MIN_COMM, P_TAKER, P_CRYPTO, P_TICKS, P_SLIP_BPS, P_IMPACT_BPS, P_CAP,
 P_FILL, P_DIR, P_SIZING, P_SIZE, P_MAX_FRAC, P_SL, P_TP, P_TRAIL, P_MAX_POS, P_LOT,
 P_LIMITS, P_LIMIT_RATE, P_KELLY_WIN, P_KELLY_MIN, P_KELLY_PROBE) = range(24)
N_PARAMS = 24
FILL_NEXT_OPEN, FILL_CLOSE, FILL_NEXT_VWAP = 0, 1, 2
SZ_QTY, SZ_NOTIONAL, SZ_PCT, SZ_ATR, SZ_KELLY = 0, 1, 2, 3, 4
# trade row columns
(T_SYM, T_SIGNAL_BAR, T_ENTRY_BAR, T_EXIT_BAR, T_QTY, T_ENTRY_PX, T_EXIT_PX, T_FEES,
 T_SLIP, T_PNL, T_REASON, T_BARS_HELD, T_ENTRY_VALUE) = range(13)
NT = 13
R_SIGNAL, R_STOP_LOSS, R_TAKE_PROFIT, R_TRAILING, R_OPEN = 0, 1, 2, 3, 4
REASONS = ("signal", "stop_loss", "take_profit", "trailing_stop", "open")
# accumulator slots
A_FEES, A_SLIP, A_TURNOVER, A_FILLS, A_CAPPED = range(5)


@nb.njit(cache=True, inline="always")
def _tick(px, lows, ticks):  # type: ignore[no-untyped-def]
    return ticks[np.searchsorted(lows, px, side="right") - 1]


@nb.njit(cache=True)
def _round(px, up, lows, ticks):  # type: ignore[no-untyped-def]
    """Onto the KRX tick grid; ``up`` rounds up (buys), else down (sells)."""
    if px <= 0.0:
        return px
    t = _tick(px, lows, ticks)
    q = px / t
    r = math.ceil(q - 1e-9) if up else math.floor(q + 1e-9)
    out = r * t
    if out <= 0.0:
        out = t
    return out


@nb.njit(cache=True)
def fill_price(ref, buy, qty, bar_vol, base, p, lows, ticks):  # type: ignore[no-untyped-def]
    """Reference price moved against the trader by slippage (+ impact), tick-rounded
    adversely, clamped into the daily limits around ``base`` (NaN: no limits)."""
    bps = p[P_SLIP_BPS]
    if p[P_IMPACT_BPS] > 0.0 and bar_vol > 0.0:
        bps += p[P_IMPACT_BPS] * math.sqrt(qty / bar_vol)
    sign = 1.0 if buy else -1.0
    raw = ref * (1.0 + sign * bps / 10_000.0)
    if p[P_CRYPTO] != 0.0:
        px = math.floor(raw * 1e8 + 0.5) / 1e8 if buy else math.floor(raw * 1e8 + 1e-6) / 1e8
        return px
    px = _round(raw, buy, lows, ticks) if p[P_TICKS] != 0.0 else raw
    if p[P_LIMITS] != 0.0 and base > 0.0:
        hi = _round(base * (1.0 + p[P_LIMIT_RATE]), False, lows, ticks)
        lo = _round(base * (1.0 - p[P_LIMIT_RATE]), True, lows, ticks)
        if buy and px > hi:
            px = hi
        if not buy and px < lo:
            px = lo
    return px


@nb.njit(cache=True)
def fees(notional, buy, stt, rural, p):  # type: ignore[no-untyped-def]
    """Commission plus sell tax, exactly as CostModel.commission/tax on whole-won amounts."""
    if notional <= 0.0:
        return 0.0
    if p[P_CRYPTO] != 0.0:
        return math.floor(notional * p[P_TAKER] * 1e8 + 0.5) / 1e8
    comm = math.floor(notional * p[P_COMM] + 1e-6)
    if comm < p[P_MIN_COMM]:
        comm = p[P_MIN_COMM]
    tax = 0.0
    if not buy:
        tax = math.floor(notional * stt + 1e-6) + math.floor(notional * rural + 1e-6)
    return comm + tax


@nb.njit(cache=True)
def _kelly(ring, n_ring, p):  # type: ignore[no-untyped-def]
    win = int(p[P_KELLY_WIN])
    k = min(n_ring, win)
    if k < int(p[P_KELLY_MIN]):
        return p[P_KELLY_PROBE]
    wins = 0
    sw = 0.0
    sl = 0.0
    for i in range(k):
        r = ring[(n_ring - 1 - i) % win]
        if r > 0.0:
            wins += 1
            sw += r
        else:
            sl -= r
    w = wins / k
    if wins == k or sl <= 0.0:
        f = 1.0
    elif wins == 0:
        f = 0.0
    else:
        f = w - (1.0 - w) / ((sw / wins) / (sl / (k - wins)))
    f *= p[P_SIZE]
    if f <= 0.0:
        return p[P_KELLY_PROBE]
    return min(f, p[P_MAX_FRAC])


@nb.njit(cache=True, nogil=True)
def simulate(day, o, h, lo_, c, v, val, entry_sig, exit_sig, pdep, ops, tail, regs3,  # type: ignore[no-untyped-def]
             entry_reg, exit_reg, atr, mkt, day_idx, stt, rural, p, lows, ticks, cap):
    """Run the portfolio; returns (equity[T], gross[T], trades[cap, NT], n_trades, acc[5],
    held_bars[S])."""
    S, T = c.shape
    direction = p[P_DIR]
    buy_in = direction > 0.0
    equity = np.empty(T)
    gross = np.empty(T)
    trades = np.zeros((cap, NT))
    acc = np.zeros(5)
    held_bars = np.zeros(S, np.int64)
    cash = p[P_CASH]
    pos = np.zeros(S)            # signed quantity
    pend = np.zeros(S)           # signed quantity still to fill
    pend_sig = np.full(S, -1, np.int64)
    pend_ref = np.zeros(S)       # close of the signal bar (for capped remainders)
    avg = np.full(S, np.nan)     # average entry price
    bars_held = np.zeros(S, np.int64)
    peak = np.zeros(S)           # best price since entry (trailing stop)
    last = np.full(S, np.nan)    # last close
    last_day = np.full(S, -1, np.int64)
    base = np.full(S, np.nan)    # previous day's close (limit base)
    open_row = np.full(S, -1, np.int64)
    exit_qty = np.zeros(S)
    exit_val = np.zeros(S)
    ring = np.zeros(max(int(p[P_KELLY_WIN]), 1))
    n_ring = 0
    n_tr = 0
    n_open = 0
    lot = p[P_LOT]
    has_stops = not (math.isnan(p[P_SL]) and math.isnan(p[P_TP]) and math.isnan(p[P_TRAIL]))

    for t in range(T):
        d = day_idx[t]
        # ---- (A) fills at the open and intrabar stops -----------------------------------
        for s in range(S):
            cs_ = c[s, t]
            if math.isnan(cs_):
                continue
            if day[t] != last_day[s]:
                base[s] = last[s]
                last_day[s] = day[t]
            m = mkt[s]
            if pend[s] != 0.0 and p[P_FILL] != FILL_CLOSE:
                ref = o[s, t]
                if p[P_FILL] == FILL_NEXT_VWAP and v[s, t] > 0.0:
                    ref = val[s, t] / v[s, t]
                want = abs(pend[s])
                qty = want
                px = 0.0
                if p[P_CAP] > 0.0:
                    room = math.floor(p[P_CAP] * v[s, t] / lot) * lot
                    if room < qty:
                        qty = room
                        acc[A_CAPPED] += 1.0
                buy = pend[s] > 0.0
                if qty > 0.0:
                    px = fill_price(ref, buy, qty, v[s, t], base[s], p, lows, ticks)
                    if buy:
                        rate = p[P_COMM] if p[P_CRYPTO] == 0.0 else p[P_TAKER]
                        cost = qty * px + fees(qty * px, True, 0.0, 0.0, p)
                        if cost > cash:
                            qty = math.floor(cash / (px * (1.0 + rate)) / lot) * lot
                            while qty > 0.0 and qty * px + fees(qty * px, True, 0.0, 0.0, p) > cash:
                                qty -= lot
                            want = qty       # the unaffordable rest is cancelled
                if qty > 0.0:
                    n_tr, n_open, cash, n_ring = _fill(
                        s, t, buy, qty, px, ref, pend_sig[s], pos, avg, bars_held, peak,
                        open_row, exit_qty, exit_val, trades, n_tr, n_open, cash, acc, ring,
                        n_ring, stt[m, d], rural[m, d], p, R_SIGNAL, cap)
                rest = want - qty
                pend[s] = (rest if buy else -rest) if rest > 0.0 else 0.0
            if has_stops and pos[s] != 0.0:
                n_tr, n_open, cash, n_ring = _stops(
                    s, t, o[s, t], h[s, t], lo_[s, t], v[s, t], base[s], pos, avg, bars_held,
                    peak, open_row, exit_qty, exit_val, trades, n_tr, n_open, cash, acc, ring,
                    n_ring, stt[m, d], rural[m, d], p, lows, ticks, cap)
                if pos[s] == 0.0 and pend[s] != 0.0 and (pend[s] > 0.0) != buy_in:
                    pend[s] = 0.0        # a stop closed what a capped exit was selling
                if pos[s] != 0.0:
                    if buy_in:
                        peak[s] = max(peak[s], h[s, t])
                    else:
                        peak[s] = min(peak[s], lo_[s, t])
            last[s] = cs_
        eq = cash
        for s in range(S):
            if pos[s] != 0.0:
                eq += pos[s] * last[s]
        # ---- (B) signals at the close ---------------------------------------------------
        for s in range(S):
            if math.isnan(c[s, t]):
                continue
            if pos[s] != 0.0:
                bars_held[s] += 1
            if pdep:
                en, ex = eval_bar(ops, tail, regs3[s], t, pos[s], bars_held[s], avg[s],
                                  entry_reg, exit_reg)
            else:
                en, ex = entry_sig[s, t], exit_sig[s, t]
            if pos[s] != 0.0:
                if ex:
                    pend[s] = -pos[s]
                    pend_sig[s] = t
            elif en and pend[s] == 0.0:
                if n_open >= p[P_MAX_POS]:
                    continue
                q = _size(s, t, c[s, t], eq, atr, ring, n_ring, p)
                if q > 0.0:
                    pend[s] = q * direction
                    pend_sig[s] = t
                    pend_ref[s] = c[s, t]
                    n_open += 1          # reserve the slot until filled or cancelled
                    if p[P_FILL] != FILL_CLOSE:
                        continue
            if p[P_FILL] == FILL_CLOSE and pend[s] != 0.0:
                buy = pend[s] > 0.0
                qty = abs(pend[s])
                m = mkt[s]
                px = fill_price(c[s, t], buy, qty, v[s, t], base[s], p, lows, ticks)
                if buy and qty * px + fees(qty * px, True, 0.0, 0.0, p) > cash:
                    while qty > 0.0 and qty * px + fees(qty * px, True, 0.0, 0.0, p) > cash:
                        qty -= lot
                if qty > 0.0:
                    n_tr, n_open, cash, n_ring = _fill(
                        s, t, buy, qty, px, c[s, t], pend_sig[s], pos, avg, bars_held, peak,
                        open_row, exit_qty, exit_val, trades, n_tr, n_open, cash, acc, ring,
                        n_ring, stt[m, d], rural[m, d], p, R_SIGNAL, cap)
                pend[s] = 0.0
        # ---- release slots of entries that could not fill, mark equity ------------------
        n_open = 0
        g = 0.0
        eq = cash
        for s in range(S):
            if pos[s] != 0.0:
                held_bars[s] += 1
                eq += pos[s] * last[s]
                g += abs(pos[s] * last[s])
            if pos[s] != 0.0 or (pend[s] != 0.0 and (pend[s] > 0.0) == buy_in):
                n_open += 1
        equity[t] = eq
        gross[t] = g
    # open positions: unrealized rows
    for s in range(S):
        r = open_row[s]
        if r >= 0 and r < cap:
            q = trades[r, T_QTY]
            trades[r, T_EXIT_PX] = last[s]
            trades[r, T_PNL] = direction * (q * last[s] - trades[r, T_ENTRY_VALUE]) \
                - trades[r, T_FEES]
            trades[r, T_REASON] = R_OPEN
            trades[r, T_BARS_HELD] = bars_held[s]
    return equity, gross, trades, n_tr, acc, held_bars


@nb.njit(cache=True)
def _size(s, t, price, eq, atr, ring, n_ring, p):  # type: ignore[no-untyped-def]
    lot = p[P_LOT]
    meth = int(p[P_SIZING])
    if not price > 0.0:
        return 0.0
    if meth == SZ_QTY:
        q = p[P_SIZE]
    elif meth == SZ_NOTIONAL:
        q = p[P_SIZE] / price
    elif meth == SZ_PCT:
        q = eq * p[P_SIZE] / 100.0 / price
    elif meth == SZ_ATR:
        a = atr[s, t]
        if not a > 0.0:
            return 0.0
        q = eq * p[P_SIZE] / 100.0 / a
    else:
        q = eq * _kelly(ring, n_ring, p) / price
    return math.floor(q / lot) * lot


@nb.njit(cache=True)
def _fill(s, t, buy, qty, px, ref, sig_bar, pos, avg, bars_held, peak, open_row, exit_qty,  # type: ignore[no-untyped-def]
          exit_val, trades, n_tr, n_open, cash, acc, ring, n_ring, stt, rural, p, reason, cap):
    notional = qty * px
    fee = fees(notional, buy, stt, rural, p)
    cash += -notional - fee if buy else notional - fee
    acc[A_FEES] += fee
    acc[A_SLIP] += abs(px - ref) * qty
    acc[A_TURNOVER] += notional
    acc[A_FILLS] += 1.0
    signed = qty if buy else -qty
    if pos[s] == 0.0:                     # opening
        r = n_tr
        n_tr += 1
        open_row[s] = r
        exit_qty[s] = 0.0
        exit_val[s] = 0.0
        pos[s] = signed
        avg[s] = px
        bars_held[s] = 0
        peak[s] = px
        if r < cap:
            trades[r, T_SYM] = s
            trades[r, T_SIGNAL_BAR] = sig_bar
            trades[r, T_ENTRY_BAR] = t
            trades[r, T_EXIT_BAR] = -1
            trades[r, T_QTY] = qty
            trades[r, T_ENTRY_VALUE] = notional
            trades[r, T_ENTRY_PX] = px
            trades[r, T_FEES] = fee
            trades[r, T_SLIP] = abs(px - ref) * qty
        return n_tr, n_open, cash, n_ring
    r = open_row[s]
    if (pos[s] > 0.0) == buy:             # adding (a capped entry's remainder)
        new = abs(pos[s]) + qty
        avg[s] = (avg[s] * abs(pos[s]) + notional) / new
        pos[s] += signed
        if r < cap:
            trades[r, T_QTY] = new
            trades[r, T_ENTRY_VALUE] += notional
            trades[r, T_ENTRY_PX] = trades[r, T_ENTRY_VALUE] / new
            trades[r, T_FEES] += fee
            trades[r, T_SLIP] += abs(px - ref) * qty
        return n_tr, n_open, cash, n_ring
    pos[s] += signed                      # reducing (never flips: exits sell the position)
    exit_qty[s] += qty
    exit_val[s] += notional
    if r < cap:
        trades[r, T_FEES] += fee
        trades[r, T_SLIP] += abs(px - ref) * qty
    if abs(pos[s]) < 1e-12:
        pos[s] = 0.0
        n_open -= 1                       # the slot is free from this bar on (as live)
        if r < cap:
            d = -1.0 if buy else 1.0
            trades[r, T_EXIT_BAR] = t
            trades[r, T_EXIT_PX] = exit_val[s] / exit_qty[s]
            pnl = d * (exit_val[s] - trades[r, T_ENTRY_VALUE]) - trades[r, T_FEES]
            trades[r, T_PNL] = pnl
            trades[r, T_REASON] = reason
            trades[r, T_BARS_HELD] = bars_held[s]
            win = int(p[P_KELLY_WIN])
            if win > 0:
                ring[n_ring % win] = pnl / trades[r, T_ENTRY_VALUE]
                n_ring += 1
        open_row[s] = -1
        avg[s] = math.nan
        bars_held[s] = 0
    return n_tr, n_open, cash, n_ring


@nb.njit(cache=True)
def _stops(s, t, op, hi, lo, vol, base, pos, avg, bars_held, peak, open_row, exit_qty,  # type: ignore[no-untyped-def]
           exit_val, trades, n_tr, n_open, cash, acc, ring, n_ring, stt, rural, p, lows, ticks,
           cap):
    long = pos[s] > 0.0
    e = avg[s]
    level = math.nan
    reason = R_SIGNAL
    if long:
        if not math.isnan(p[P_SL]):
            level = e * (1.0 - p[P_SL] / 100.0)
            reason = R_STOP_LOSS
        if not math.isnan(p[P_TRAIL]):
            tl = peak[s] * (1.0 - p[P_TRAIL] / 100.0)
            if math.isnan(level) or tl > level:
                level = tl
                reason = R_TRAILING
        hit = not math.isnan(level) and lo <= level
        ref = min(op, level) if hit else math.nan
        if not hit and not math.isnan(p[P_TP]):
            tp = e * (1.0 + p[P_TP] / 100.0)
            if hi >= tp:
                hit = True
                reason = R_TAKE_PROFIT
                ref = max(op, tp)
    else:
        if not math.isnan(p[P_SL]):
            level = e * (1.0 + p[P_SL] / 100.0)
            reason = R_STOP_LOSS
        if not math.isnan(p[P_TRAIL]):
            tl = peak[s] * (1.0 + p[P_TRAIL] / 100.0)
            if math.isnan(level) or tl < level:
                level = tl
                reason = R_TRAILING
        hit = not math.isnan(level) and hi >= level
        ref = max(op, level) if hit else math.nan
        if not hit and not math.isnan(p[P_TP]):
            tp = e * (1.0 - p[P_TP] / 100.0)
            if lo <= tp:
                hit = True
                reason = R_TAKE_PROFIT
                ref = min(op, tp)
    if not hit:
        return n_tr, n_open, cash, n_ring
    buy = not long
    qty = abs(pos[s])
    px = fill_price(ref, buy, qty, vol, base, p, lows, ticks)
    return _fill(s, t, buy, qty, px, ref, -1, pos, avg, bars_held, peak, open_row, exit_qty,
                 exit_val, trades, n_tr, n_open, cash, acc, ring, n_ring, stt, rural, p, reason,
                 cap)
