"""Smoke test of the live-pipeline benchmark harness (bench/bench_pipeline.py) on a tiny
universe, so the harness cannot rot as the App changes. No timing is asserted: only that
every stage was reached and that the accounting adds up."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.bench_pipeline import Result, latency_rows, pct, run_pipeline

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _check(r: Result, *, batch: int) -> None:
    s = r.samples
    assert r.ticks > 0 and r.ticks % batch == 0
    # every measured tick was scored by the surge detector exactly once
    assert sum(s.scored_w) == r.ticks
    assert r.stats["bars"] > 0 and s.bars_done
    # orders went all the way through risk to the paper broker's submit
    assert s.intent and s.risk and s.to_submit
    assert len(s.to_submit) == len(s.desk) == len(s.tick_to_submit) <= r.stats["submitted"]
    assert r.stats["dropped"] == 0
    assert len(s.intent_cpu) == len(s.intent)
    for xs in (s.scored, s.candidate, s.bars_done, s.intent, s.intent_cpu, s.risk, s.desk,
               s.to_submit):
        assert all(x >= 0 for x in xs)
    # a tick cannot become an intent before its bar was evaluated
    assert min(s.tick_to_submit) >= min(s.intent) >= 0
    rows = latency_rows(r)
    assert len(rows) == 13 and all(row.count("|") == 8 for row in rows)
    assert r.pipeline_tps > 0 and r.cpu_tps > 0


async def test_saturate_run_reaches_every_stage(tmp_path: Path) -> None:
    r = await run_pipeline(n_symbols=30, seconds=240, batch=200, rate=200, warmup_s=60,
                           ledger="sqlite:///ledger.sqlite3?synchronous=normal",
                           record_ticks=False, state_dir=tmp_path, log_level="warning")
    assert r.mode == "saturate"
    _check(r, batch=200)


async def test_paced_run_counts_from_scheduled_arrival(tmp_path: Path) -> None:
    # an offered rate no machine reaches: the feed never waits (no sleeping in tests)
    r = await run_pipeline(n_symbols=30, seconds=240, batch=200, rate=200, warmup_s=60,
                           paced_tps=1e15, ledger="sqlite:///ledger.sqlite3?synchronous=normal",
                           record_ticks=True, state_dir=tmp_path, log_level="warning")
    assert r.mode == "paced"
    _check(r, batch=200)


def test_weighted_percentile() -> None:
    ms = 1_000_000
    assert pct([1 * ms, 2 * ms, 3 * ms], 50) == 2.0
    # weights: the 3 ms sample carries 98 of 100 ticks
    assert pct([1 * ms, 2 * ms, 3 * ms], 50, [1, 1, 98]) == 3.0
    assert pct([1 * ms, 2 * ms, 3 * ms], 1, [1, 1, 98]) == 1.0
    assert pct([], 99) != pct([], 99)        # NaN without samples
