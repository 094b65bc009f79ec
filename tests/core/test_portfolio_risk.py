"""Portfolio accounting from fills, and the pure pre-trade risk gate."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jts.clock import NS
from jts.config import RiskConfig
from jts.portfolio import Portfolio
from jts.risk import InFlight, RiskGate, TradingState
from jts.types import Fill, OrderIntent, OrderType, Side

D = Decimal
TS = 1_764_000_000 * NS
_n = iter(range(1_000_000))


def fill(side: Side, qty: int, price: str, sym: str = "005930", fee: str = "0") -> Fill:
    return Fill("paper", "p1", f"t{next(_n)}", "c1", sym, side, D(qty), D(price), D(fee), D(0),
                TS, "s")


def test_round_trip_realizes_pnl_net_of_fees() -> None:
    pf = Portfolio(cash=D(1_000_000))
    pf.apply(fill(Side.BUY, 10, "1000", fee="15"))
    pf.apply(fill(Side.BUY, 10, "1100"))
    assert pf.holdings["005930"].avg_price == D(1050)
    pnl = pf.apply(fill(Side.SELL, 20, "1200", fee="30"))
    assert pnl == D(150 * 20 - 30)
    assert pf.realized_today == D(150 * 20 - 45)
    assert pf.cash == D(1_000_000) + D(150 * 20 - 45)
    assert pf.open_positions() == {}
    assert len(pf.trades) == 1 and pf.trades[0].pnl == D(3000)


def test_unrealized_and_exposure_use_marks() -> None:
    pf = Portfolio(cash=D(1_000_000))
    pf.apply(fill(Side.BUY, 10, "1000"))
    pf.mark("005930", 1100.0)
    assert pf.unrealized() == D(1000)
    assert pf.exposure() == D(11000)
    assert pf.equity() == D(1_000_000) + D(1000)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 50),
                          st.integers(900, 1100)), min_size=1, max_size=30))
def test_cash_plus_holdings_conserve_value(trades: list[tuple[Side, int, int]]) -> None:
    """With no fees, equity marked at the last trade price equals cash0 + realized +
    unrealized, whatever the sequence (including flips through zero) — up to Decimal's
    28-digit precision in the average price (a repeating fraction such as 1000/3)."""
    pf = Portfolio(cash=D(10_000_000))
    for side, q, p in trades:
        pf.apply(fill(side, q, str(p)))
        pf.mark("005930", float(p))
    diff = pf.equity() - (D(10_000_000) + pf.realized_today + pf.unrealized())
    assert abs(diff) <= D("1e-15")


CFG = RiskConfig(max_position_notional=1_000_000, max_total_exposure=2_000_000,
                 max_open_positions=2, max_orders_per_minute=3, max_daily_loss=50_000,
                 price_band_pct=5.0)


def intent(side: Side = Side.BUY, qty: int = 10, sym: str = "005930", closing: bool = False,
           limit: str | None = None, strategy: str = "s") -> OrderIntent:
    return OrderIntent(strategy, sym, side, D(qty), TS, OrderType.LIMIT if limit else
                       OrderType.MARKET, D(limit) if limit else None, closing)


@pytest.fixture
def pf() -> Portfolio:
    return Portfolio(cash=D(10_000_000))


def test_approves_within_limits(pf: Portfolio) -> None:
    assert RiskGate(CFG).check(intent(), pf, [], 1000.0, TS).approved


@pytest.mark.parametrize(("make", "price", "check"), [
    (lambda: intent(qty=2000), 1000.0, "position_notional"),
    (lambda: intent(qty=0), 1000.0, "quantity"),
    (lambda: intent(limit="1100"), 1000.0, "price_band"),
    (lambda: intent(), None, "price"),
    (lambda: intent(side=Side.SELL, closing=True), 1000.0, "closing"),
])
def test_rejections_are_values_with_reasons(pf: Portfolio, make, price, check) -> None:  # type: ignore[no-untyped-def]
    gate = RiskGate(CFG)
    d = gate.check(make(), pf, [], price, TS)
    assert not d.approved and d.check == check and d.reason
    assert gate.rejections[check] == 1


def test_duplicate_in_flight(pf: Portfolio) -> None:
    d = RiskGate(CFG).check(intent(), pf, [InFlight("s", "005930", Side.BUY, D(10))], 1000.0, TS)
    assert d.check == "duplicate"


def test_max_open_positions(pf: Portfolio) -> None:
    for s in ("A", "B"):
        pf.apply(fill(Side.BUY, 1, "1000", sym=s))
    d = RiskGate(CFG).check(intent(sym="C"), pf, [], 1000.0, TS)
    assert d.check == "open_positions"


def test_orders_per_minute_window(pf: Portfolio) -> None:
    gate = RiskGate(CFG)
    for i in range(3):
        assert gate.check(intent(sym=f"S{i}", qty=1), pf, [], 1000.0, TS + i).approved
    assert gate.check(intent(sym="X", qty=1), pf, [], 1000.0, TS + 10).check == \
        "orders_per_minute"
    assert gate.check(intent(sym="X", qty=1), pf, [], 1000.0, TS + 61 * NS).approved


def test_daily_loss_stops_entries_but_allows_closing(pf: Portfolio) -> None:
    gate = RiskGate(CFG)
    pf.apply(fill(Side.BUY, 100, "1000"))
    pf.mark("005930", 400.0)                       # -60,000 unrealized
    d = gate.check(intent(sym="B"), pf, [], 1000.0, TS)
    assert d.check == "daily_loss"
    assert gate.state is TradingState.REDUCING
    assert gate.check(intent(Side.SELL, 100, closing=True), pf, [], 400.0, TS).approved


def test_halted_refuses_entries_allows_reducing(pf: Portfolio) -> None:
    gate = RiskGate(CFG)
    pf.apply(fill(Side.BUY, 10, "1000"))
    gate.set_state(TradingState.HALTED, "operator")
    assert gate.check(intent(sym="B"), pf, [], 1000.0, TS).check == "trading_state"
    assert gate.check(intent(Side.SELL, 10, closing=True), pf, [], 1000.0, TS).approved


def test_cash_check(pf: Portfolio) -> None:
    poor = Portfolio(cash=D(5_000))
    assert RiskGate(CFG).check(intent(), poor, [], 1000.0, TS).check == "cash"


def test_krx_limit_price_must_be_on_tick_grid_and_within_limits(pf: Portfolio) -> None:
    gate = RiskGate(CFG, prev_close=lambda s: 10_000.0)
    off_grid = gate.check(intent(limit="10003"), pf, [], 10_000.0, TS)
    assert off_grid.check == "krx_price" and "tick grid" in off_grid.reason
    wide = RiskGate(RiskConfig(price_band_pct=30.0), prev_close=lambda s: 10_000.0)
    beyond = wide.check(intent(limit="13050"), pf, [], 12_000.0, TS)
    assert beyond.check == "krx_price" and "outside today's limits" in beyond.reason
    assert gate.check(intent(limit="10010"), pf, [], 10_000.0, TS).approved
