"""Risk check cost against the size of the book: ``RiskGate.check`` p50/p99 with N open
positions and N orders in flight, while marks keep moving between checks.

Run: .venv/bin/python bench/bench_risk.py

Two ways of calling the gate: as the desk does today (a fresh ``list[InFlight]`` per check,
marks written straight into ``Portfolio.marks``), and the O(1) way (the desk's
:class:`InFlightBook`, marks through ``Portfolio.mark_many`` with ``exclusive_marks``). The
list is built outside the timed call in both (as the bench_pipeline stage measures it).
"""

from __future__ import annotations

import logging
import os
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jts.config import RiskConfig
from jts.portfolio import Portfolio
from jts.risk import InFlight, InFlightBook, RiskGate
from jts.types import Fill, OrderIntent, Side

structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
CFG = RiskConfig(max_position_notional=1e12, max_total_exposure=1e15,
                 max_open_positions=100_000, max_orders_per_minute=10**9, max_daily_loss=1e14)
CHECKS = 2_000


def build(n: int, exclusive: bool) -> tuple[Portfolio, list[InFlight], InFlightBook]:
    pf = Portfolio(cash=Decimal(10**15), exclusive_marks=exclusive)
    for i in range(n):
        s = f"P{i:05d}"
        for k, px in enumerate((1000 + i, 1003 + i, 1001 + i)):   # repeating-fraction averages
            pf.apply(Fill("paper", "a", f"t{i}-{k}", f"c{i}", s, Side.BUY, Decimal(k + 1),
                          Decimal(px), Decimal(0), Decimal(0), 1, "x"))
        pf.mark(s, 1000.5 + i)
    flying = [InFlight("x", f"F{i:05d}", Side.BUY, Decimal(3)) for i in range(n)]
    book = InFlightBook()
    for i, f in enumerate(flying):
        book.set(f"o{i}", f.strategy, f.symbol, f.side, f.quantity)
    return pf, flying, book


def run(n: int, use_book: bool, marks_per_check: int) -> tuple[float, float]:
    pf, flying, book = build(n, exclusive=use_book)
    gate = RiskGate(CFG)
    rng = random.Random(n)
    held = [f"P{i:05d}" for i in range(n)]
    times = []
    for k in range(CHECKS):
        moved = {s: 1000.0 + rng.randrange(2_000)
                 for s in rng.sample(held, min(n, marks_per_check))}
        if use_book:
            pf.mark_many(moved)
        else:
            pf.marks.update(moved)
        arg: InFlightBook | list[InFlight] = book if use_book else list(flying)
        it = OrderIntent("s", f"N{k:05d}", Side.BUY, Decimal(5), 10**18 + k)
        t0 = time.perf_counter_ns()
        d = gate.check(it, pf, arg, 1234.0, 10**18 + k)
        times.append(time.perf_counter_ns() - t0)
        assert d.approved, d
    a = np.array(times[CHECKS // 10:]) / 1e3
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def main() -> None:
    load = os.getloadavg()[0]
    print(f"RiskGate.check, {CHECKS:,} checks per row; load average {load:.1f} on "
          f"{os.cpu_count()} cores\n")
    print("| open positions | orders in flight | marks moved between checks "
          "| list + direct marks p50 µs | p99 µs | book + mark_many p50 µs | p99 µs |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in (0, 20, 100, 1_000):
        for moved in (0, 5, 20):
            a50, a99 = run(n, False, moved)
            b50, b99 = run(n, True, moved)
            print(f"| {n:,} | {n:,} | {moved} | {a50:.1f} | {a99:.1f} | {b50:.1f} | {b99:.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
