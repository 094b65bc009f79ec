"""The KIS simulator's market: the paper market (:class:`jts.sim.SimMarket`) seen through
KIS's quote fields, so offline KIS runs trade the same prints as paper mode.

:class:`KisSimMarket` keeps a KIS-style :class:`Quote` per symbol (integer won, open /
high / low, cumulative volume and value, ±30 % limits from the engine's base price) and
advances the engine with :meth:`KisSimMarket.step`. Charts come from the engine's history:
synthetic bars before the live start, then the bars of the prints streamed since, exactly
what the paper daemon warms up with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from jts.clock import KST, NS, from_datetime, to_kst
from jts.krx import Market
from jts.krx import tick_size as krx_tick_size
from jts.sim import SimMarket as Engine

DEFAULT_SYMBOLS: tuple[str, ...] = ("005930", "000660", "035420", "035720", "005380",
                                    "068270", "105560", "003550", "088350", "001510")
OHLCV = tuple[int, int, int, int, int]


def tick_size(price: int, market: Market | str | None = None) -> int:
    """KRX tick size of ``price`` (current schedule for ``market``)."""
    return int(krx_tick_size(max(1, price), market))


@dataclass
class Quote:
    code: str
    name: str
    market: Market
    prev_close: int
    price: int
    lower: int
    upper: int
    open: int = 0
    high: int = 0
    low: int = 0
    volume: int = 0
    value: int = 0
    last_ts: int = 0
    prints: list[tuple[int, int, int]] = field(default_factory=list)   # (ts_ns, price, qty)

    def __post_init__(self) -> None:
        self.open = self.high = self.low = self.price

    @property
    def ask(self) -> int:
        return min(self.upper, self.price + tick_size(self.price, self.market))

    @property
    def bid(self) -> int:
        return max(self.lower, self.price - tick_size(self.price, self.market))

    @property
    def change_pct(self) -> float:
        return round((self.price - self.prev_close) * 100 / self.prev_close, 2)


class KisSimMarket:
    """The engine's symbols as KIS quotes; :meth:`step` moves the engine forward."""

    def __init__(self, symbols: Sequence[str] | int | None = DEFAULT_SYMBOLS, seed: int = 7,
                 *, step_s: float = 1.0, start_ns: int | None = None,
                 engine: Engine | None = None) -> None:
        self.engine = engine or Engine(symbols=list(symbols) if isinstance(symbols, Sequence)
                                       else symbols, seed=seed, step_s=step_s)
        self._step_ns = int(self.engine.step_s * NS)
        self.quotes: dict[str, Quote] = {}
        for s in self.engine.universe:
            lo, hi = self.engine.limits(s.code)
            prev = self.engine.prev_close(s.code) or s.start_price
            i = self.engine.symbols.index(s.code)
            self.quotes[s.code] = Quote(s.code, s.name, s.market, int(prev),
                                        int(self.engine.last[i]), int(lo), int(hi))
        self._t: int | None = None
        if start_ns is not None:
            self.start(start_ns)

    def start(self, now_ns: int) -> None:
        """Anchor the engine (the end of synthetic history) at ``now_ns``."""
        if self._t is None:
            self.engine.advance_to(now_ns)
            self._t = now_ns

    def valid_price(self, code: str, price: int) -> str | None:
        """None if ``price`` is a legal limit price for ``code``, else the reason."""
        q = self.quotes[code]
        tick = tick_size(price, q.market)
        if price % tick:
            return f"price {price} is not a multiple of the tick size {tick}"
        if not q.lower <= price <= q.upper:
            return f"price {price} outside the daily limits {q.lower}..{q.upper}"
        return None

    def step(self, now_ns: int) -> dict[str, list[tuple[int, int, int]]]:
        """Advance the engine to ``now_ns`` (at least one engine step past the previous call,
        so explicit steps on a frozen clock still move) and return the prints by symbol."""
        self.start(now_ns)
        assert self._t is not None
        self._t = max(now_ns, self._t + self._step_ns)
        out: dict[str, list[tuple[int, int, int]]] = {}
        for t in self.engine.advance_to(self._t):
            q = self.quotes[t.symbol]
            px, qty = int(t.price), max(1, int(t.volume))
            if q.volume == 0:
                q.open = q.high = q.low = px
            q.price, q.high, q.low = px, max(q.high, px), min(q.low, px)
            q.volume += qty
            q.value += qty * px
            q.last_ts = t.ts_ns
            out.setdefault(t.symbol, []).append((t.ts_ns, px, qty))
        for code, prints in out.items():
            q = self.quotes[code]
            q.prints.extend(prints)
            del q.prints[:-1000]
        return out

    @property
    def now_ns(self) -> int:
        return self._t or 0

    # -- charts (newest first, as KIS returns them) -----------------------------------------

    def daily_bars(self, code: str, start: date, end: date) -> list[tuple[date, OHLCV]]:
        """Daily bars of past sessions in [start, end], newest first."""
        anchor = self.engine.anchor_ns or self.now_ns
        today = to_kst(anchor).date()
        n = max(0, min((today - start).days + 1, 5_000))
        bars = self.engine.history(n, anchor, "1d").get(code, [])
        rows = []
        for b in reversed(bars):
            d = to_kst(b.ts_ns).date()
            if start <= d <= end:
                rows.append((d, _ohlcv(b.open, b.high, b.low, b.close, b.volume)))
        return rows

    def minute_bars(self, code: str, now_ns: int, until_hhmmss: str, n: int
                    ) -> list[tuple[datetime, OHLCV]]:
        """Up to ``n`` completed one-minute bars of today ending at ``until_hhmmss`` (newest
        first), never later than now and never before 09:00."""
        self.start(now_ns)
        today = to_kst(now_ns).date()
        hh, mm = int(until_hhmmss[:2]), int(until_hhmmss[2:4])
        until = datetime(today.year, today.month, today.day, hh, mm, tzinfo=KST)
        latest = max(now_ns, self.now_ns)
        end_ns = min(from_datetime(until) + 60 * NS, latest)
        opening = from_datetime(datetime(today.year, today.month, today.day, 9, 0, tzinfo=KST))
        # the engine counts bars back from its latest; ask for enough to reach end_ns
        want = n + max(0, (latest - end_ns) // (60 * NS)) + 2
        bars = self.engine.history(want, end_ns, "1m").get(code, [])[-n:]
        return [(to_kst(b.ts_ns), _ohlcv(b.open, b.high, b.low, b.close, b.volume))
                for b in reversed(bars) if b.ts_ns >= opening]


def _ohlcv(o: float, h: float, lo: float, c: float, v: float) -> OHLCV:
    return int(o), int(h), int(lo), int(c), int(v)


def kst_hhmmss(ts_ns: int) -> str:
    return to_kst(ts_ns).strftime("%H%M%S")


def kst_yyyymmdd(ts_ns: int) -> str:
    return to_kst(ts_ns).strftime("%Y%m%d")


def kst_midnight_ns(day: date) -> int:
    return from_datetime(datetime(day.year, day.month, day.day, tzinfo=KST))


SimMarket = KisSimMarket        # the name the simulator exported before

__all__ = ["DEFAULT_SYMBOLS", "KisSimMarket", "Quote", "SimMarket", "kst_hhmmss",
           "kst_yyyymmdd", "tick_size"]
