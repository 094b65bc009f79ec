"""The KIS simulator's market is the paper market: same prints, same warm-up bars."""

from __future__ import annotations

from brokers.kis.simulator.market import KisSimMarket
from jts.clock import NS, from_datetime
from jts.sim import SimMarket
from tests.brokers.kis.conftest import START

SYMS = ["005930", "000660", "035420"]


def test_prints_and_history_match_the_paper_market() -> None:
    kis = KisSimMarket(SYMS, seed=11, start_ns=START)
    paper = SimMarket(symbols=SYMS, seed=11, step_s=1.0)
    paper.advance_to(START)
    got: list[tuple[str, int, int, int]] = []
    for k in range(1, 121):
        for code, prints in kis.step(START + k * NS).items():
            got += [(code, ts, px, qty) for ts, px, qty in prints]
    want = [(t.symbol, t.ts_ns, int(t.price), max(1, int(t.volume)))
            for t in paper.advance_to(START + 120 * NS)]
    assert sorted(got) == sorted(want) and len(got) > 10
    q = kis.quotes["005930"]
    assert q.price == int(paper.last[paper.symbols.index("005930")])
    assert (q.lower, q.upper) == tuple(int(x) for x in paper.limits("005930"))
    bars = kis.minute_bars("005930", START, "095900", 30)          # newest first
    ref = paper.history(30, START, "1m")["005930"]
    assert [(from_datetime(t), *ohlcv) for t, ohlcv in reversed(bars)] == \
        [(b.ts_ns, int(b.open), int(b.high), int(b.low), int(b.close), int(b.volume))
         for b in ref]


def test_explicit_steps_move_a_frozen_clock_forward() -> None:
    kis = KisSimMarket(SYMS, seed=3, start_ns=START)
    for _ in range(300):
        kis.step(START)                                  # the clock never moves
    assert kis.now_ns == START + 300 * NS
    assert sum(q.volume for q in kis.quotes.values()) > 0
