"""The O(1) risk check against a straightforward recomputation: the portfolio's running
aggregates and the desk's in-flight book give the same decisions as scanning every position
and every order in flight on each check (the gate as it was)."""

from __future__ import annotations

from decimal import Decimal, localcontext

from hypothesis import given, settings
from hypothesis import strategies as st

from jts.clock import NS
from jts.config import RiskConfig
from jts.money import to_decimal
from jts.portfolio import Portfolio
from jts.prices import LastPrices
from jts.risk import InFlight, InFlightBook, RiskDecision, RiskGate, TradingState
from jts.types import Fill, OrderIntent, OrderType, Side

D = Decimal
TS = 1_764_000_000 * NS
SYMS = ["A", "B", "C", "D"]
CFG = RiskConfig(max_position_notional=300_000, max_total_exposure=600_000,
                 max_open_positions=3, max_orders_per_minute=1_000, max_daily_loss=20_000,
                 price_band_pct=5.0)


def plain_sums(pf: Portfolio) -> tuple[Decimal, Decimal, int]:
    """Unrealized P&L, exposure and open positions, position by position."""
    terms = []
    for s, h in pf.holdings.items():
        if h.quantity == 0:
            continue
        px = pf.marks.get(s)
        price = to_decimal(px) if px is not None else None
        terms.append(((price - h.avg_price) * h.quantity if price is not None else D(0),
                      abs(h.quantity) * (price if price is not None else h.avg_price)))
    with localcontext() as ctx:            # the sums exactly, rounded once below
        ctx.prec = 200
        unreal = sum((u for u, _ in terms), D(0))
        expo = sum((e for _, e in terms), D(0))
    return +unreal, +expo, len(terms)


class ScanningGate(RiskGate):
    """The reference: every check walks every position and every order in flight."""

    def check(self, intent: OrderIntent, pf: Portfolio, in_flight: object,
              last_price: float | None, now_ns: int) -> RiskDecision:
        assert isinstance(in_flight, list)
        d = self._scan(intent, pf, in_flight, last_price, now_ns)
        if d.approved:
            self._recent.append(now_ns)
        return d

    def _scan(self, intent: OrderIntent, pf: Portfolio, in_flight: list[InFlight],
              last_price: float | None, now_ns: int) -> RiskDecision:
        cfg = self.cfg
        if intent.quantity <= 0:
            return RiskDecision.reject("quantity", "")
        held = pf.position(intent.symbol)
        reduces = (held > 0 and intent.side is Side.SELL and intent.quantity <= held) or (
            held < 0 and intent.side is Side.BUY and intent.quantity <= -held)
        if intent.closing and not reduces:
            return RiskDecision.reject("closing", "")
        for f in in_flight:
            if f.symbol == intent.symbol and f.side is intent.side and (
                    f.strategy == intent.strategy or intent.closing):
                return RiskDecision.reject("duplicate", "")
        if last_price is None:
            return RiskDecision.reject("price", "")
        while self._recent and self._recent[0] <= now_ns - 60 * NS:
            self._recent.popleft()
        if len(self._recent) >= cfg.max_orders_per_minute:
            return RiskDecision.reject("orders_per_minute", "")
        if reduces:
            return RiskDecision.ok()
        if self.state is not TradingState.ACTIVE:
            return RiskDecision.reject("trading_state", "")
        unreal, expo, n_open = plain_sums(pf)
        if pf.realized_today + unreal <= -to_decimal(cfg.max_daily_loss):
            self.set_state(TradingState.REDUCING, "daily loss limit")
            return RiskDecision.reject("daily_loss", "")
        price = to_decimal(last_price)
        notional = intent.quantity * price
        if abs(held + intent.quantity * intent.side.sign) * price > to_decimal(
                cfg.max_position_notional):
            return RiskDecision.reject("position_notional", "")
        pending = sum((f.quantity * price for f in in_flight), D(0))
        if expo + pending + notional > to_decimal(cfg.max_total_exposure):
            return RiskDecision.reject("total_exposure", "")
        if held == 0 and n_open + len({f.symbol for f in in_flight}) >= cfg.max_open_positions:
            return RiskDecision.reject("open_positions", "")
        if intent.side is Side.BUY and pf.cash - pending < notional:
            return RiskDecision.reject("cash", "")
        return RiskDecision.ok()


sym = st.sampled_from(SYMS)
side = st.sampled_from([Side.BUY, Side.SELL])
price = st.integers(900, 1100)
op = st.one_of(
    st.tuples(st.just("fill"), sym, side, st.integers(1, 150), price),
    st.tuples(st.just("mark"), sym, price, st.booleans()),
    st.tuples(st.just("open"), st.integers(0, 5), st.sampled_from(["s1", "s2"]), sym, side,
              st.integers(1, 100)),
    st.tuples(st.just("partial"), st.integers(0, 5), st.integers(1, 50)),
    st.tuples(st.just("close"), st.integers(0, 5)),
    st.tuples(st.just("check"), st.sampled_from(["s1", "s2"]), sym, side, st.integers(0, 400),
              st.booleans(), st.one_of(st.none(), price)),
)


@settings(max_examples=300, deadline=None)
@given(ops=st.lists(op, min_size=1, max_size=60), exclusive=st.booleans(),
       array=st.booleans())
def test_fast_gate_decides_like_a_full_rescan(ops: list[tuple[object, ...]],
                                              exclusive: bool, array: bool) -> None:
    """``array``: the marks are a price array (the daemon's), so the gate decides from the
    float estimate where it is certain (symbol "D" is outside the array: exact only while
    it is held)."""
    marks = LastPrices({"A": 0, "B": 1, "C": 2}) if array else {}
    pf = Portfolio(cash=D(1_000_000), marks=marks, exclusive_marks=exclusive)
    fast, ref, listed = RiskGate(CFG), ScanningGate(CFG), RiskGate(CFG)
    book = InFlightBook()
    flying: dict[str, InFlight] = {}
    now = TS
    for n, o in enumerate(ops):
        kind = o[0]
        if kind == "fill":
            _, s, sd, q, p = o
            pf.apply(Fill("paper", "p", f"t{n}", "c", s, sd, D(q), D(p), D(15), D(0),  # type: ignore[arg-type]
                          now, "s1"))
        elif kind == "mark":
            _, s, p, via_api = o
            if via_api or exclusive:
                pf.mark(s, float(p))                    # type: ignore[arg-type]
            else:
                pf.marks[s] = float(p)                  # type: ignore[index, arg-type]
        elif kind == "open":
            _, i, strat, s, sd, q = o
            flying[f"o{i}"] = InFlight(strat, s, sd, D(q))  # type: ignore[arg-type]
            book.set(f"o{i}", strat, s, sd, D(q))       # type: ignore[arg-type]
        elif kind == "partial" and f"o{o[1]}" in flying:
            f = flying[f"o{o[1]}"]
            left = max(D(0), f.quantity - D(o[2]))      # type: ignore[arg-type]
            flying[f"o{o[1]}"] = InFlight(f.strategy, f.symbol, f.side, left)
            book.set(f"o{o[1]}", f.strategy, f.symbol, f.side, left)
        elif kind == "close":
            flying.pop(f"o{o[1]}", None)
            book.discard(f"o{o[1]}")
        elif kind == "check":
            _, strat, s, sd, q, closing, last = o
            now += NS
            it = OrderIntent(strat, s, sd, D(q), now, OrderType.MARKET, None,  # type: ignore[arg-type]
                             closing)                   # type: ignore[arg-type]
            lp = float(last) if last is not None else None  # type: ignore[arg-type]
            got = fast.check(it, pf, book, lp, now)
            want = ref.check(it, pf, list(flying.values()), lp, now)
            by_list = listed.check(it, pf, list(flying.values()), lp, now)
            assert (got.approved, got.check) == (want.approved, want.check)
            assert (by_list.approved, by_list.check) == (want.approved, want.check)
            assert fast.state is ref.state is listed.state
        unreal, expo, n_open = plain_sums(pf)
        assert (pf.unrealized(), pf.exposure(), pf.open_count()) == (unreal, expo, n_open)
        assert book.quantity == sum((f.quantity for f in flying.values()), D(0))
        assert book.symbol_count == len({f.symbol for f in flying.values()}) == len(
            {f.symbol for f in book.orders()})


def test_list_and_book_give_the_same_decision() -> None:
    pf = Portfolio(cash=D(10_000_000))
    orders = [InFlight("s1", "A", Side.BUY, D(100)), InFlight("s2", "B", Side.SELL, D(5))]
    book = InFlightBook()
    for i, f in enumerate(orders):
        book.set(f"c{i}", f.strategy, f.symbol, f.side, f.quantity)
    for it in (OrderIntent("s1", "A", Side.BUY, D(1), TS),
               OrderIntent("s2", "A", Side.BUY, D(1), TS),
               OrderIntent("s2", "C", Side.BUY, D(1), TS)):
        a = RiskGate(CFG).check(it, pf, orders, 1000.0, TS)
        b = RiskGate(CFG).check(it, pf, book, 1000.0, TS)
        assert (a.approved, a.check) == (b.approved, b.check)
    assert RiskGate(CFG).check(OrderIntent("s1", "A", Side.BUY, D(1), TS), pf, book, 1000.0,
                               TS).check == "duplicate"
    book.discard("c0")
    book.discard("c0")                                  # idempotent
    assert len(book) == 1 and book.quantity == D(5)
    assert RiskGate(CFG).check(OrderIntent("s1", "A", Side.BUY, D(1), TS), pf, book, 1000.0,
                               TS).approved


def test_the_estimate_bounds_the_exact_sums() -> None:
    """Awkward averages (repeating decimals), fractional quantities, far-apart magnitudes:
    the exact unrealized P&L and exposure lie within the estimate's bounds."""
    import random

    rng = random.Random(7)
    syms = [f"S{i}" for i in range(40)]
    marks = LastPrices({s: i for i, s in enumerate(syms)})
    pf = Portfolio(cash=D(10**12), marks=marks, exclusive_marks=True)
    for n in range(400):
        s = rng.choice(syms)
        q = D(rng.choice([1, 3, 7, 1234567])) / D(rng.choice([1, 3, 1000]))
        p = D(rng.randint(1, 10**7)) / D(rng.choice([1, 7, 100]))
        pf.apply(Fill("x", "a", f"t{n}", "c", s, rng.choice([Side.BUY, Side.SELL]), q, p,
                      D(0), D(0), TS, "s"))
        pf.mark(rng.choice(syms), rng.uniform(0.01, 1e7))
        est = pf.estimate()
        assert est is not None
        u, ub, e, eb, n_open = est
        with localcontext() as ctx:
            ctx.prec = 200
            unreal, expo, count = plain_sums(pf)
            assert abs(D(u) - unreal) <= D(ub) and abs(D(e) - expo) <= D(eb)
        assert n_open == count


def test_at_the_limits_the_estimate_defers_to_the_exact_sums() -> None:
    """Exactly at a limit the float estimate cannot be certain: the exact sums decide."""
    marks = LastPrices({"A": 0, "B": 1})
    pf = Portfolio(cash=D(10**7), marks=marks, exclusive_marks=True)
    pf.apply(Fill("x", "a", "t1", "c", "A", Side.BUY, D(100), D(1000), D(0), D(0), TS, "s"))
    pf.mark("A", 800.0)                       # unrealized -20,000 = -max_daily_loss
    gate = RiskGate(CFG)
    d = gate.check(OrderIntent("s", "B", Side.BUY, D(1), TS), pf, InFlightBook(), 1000.0, TS)
    assert (d.approved, d.check) == (False, "daily_loss")
    pf2 = Portfolio(cash=D(10**7), marks=LastPrices({"A": 0, "B": 1}), exclusive_marks=True)
    pf2.apply(Fill("x", "a", "t1", "c", "A", Side.BUY, D(300), D(1000), D(0), D(0), TS, "s"))
    pf2.mark("A", 1000.0)                     # exposure 300,000 of 600,000
    cfg = RiskConfig(max_position_notional=10**9, max_total_exposure=600_000,
                     max_open_positions=10, max_orders_per_minute=1_000,
                     max_daily_loss=10**9, price_band_pct=5.0)
    book = InFlightBook()
    book.set("o1", "s", "A", Side.BUY, D(200))     # 200,000 in flight
    at = RiskGate(cfg).check(OrderIntent("s", "B", Side.BUY, D(100), TS), pf2, book, 1000.0, TS)
    over = RiskGate(cfg).check(OrderIntent("s", "B", Side.BUY, D(101), TS), pf2, book, 1000.0,
                               TS)
    assert at.approved and (over.approved, over.check) == (False, "total_exposure")
    pf2.mark("A", 1000.000000000001)          # exposure 300,000.0000000003: just over
    assert pf2.exposure() > D(300_000)
    just = RiskGate(cfg).check(OrderIntent("s", "B", Side.BUY, D(100), TS), pf2, book, 1000.0,
                               TS)
    assert (just.approved, just.check) == (False, "total_exposure")
