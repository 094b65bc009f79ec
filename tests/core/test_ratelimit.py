"""jts.ratelimit on a FakeClock: never over the budget, saturating, priorities honoured."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jts.clock import NS, FakeClock
from jts.ratelimit import Lane, RateLimiter


async def drive(clock: FakeClock, seconds: float, step: float = 0.01) -> None:
    """Let fake time pass in small steps, giving woken tasks room to run."""
    end = clock.now_ns() + int(seconds * NS)
    while clock.now_ns() < end:
        clock.set(min(end, clock.now_ns() + int(step * NS)))
        for _ in range(50):
            await asyncio.sleep(0)


def start_workers(rl: RateLimiter, clock: FakeClock, n: int, lane: Lane,
                  log: list[tuple[int, Lane]]) -> list[asyncio.Task[None]]:
    async def worker() -> None:
        while True:
            await rl.acquire(lane)
            log.append((clock.now_ns(), lane))

    return [asyncio.get_running_loop().create_task(worker()) for _ in range(n)]


async def stop(tasks: list[asyncio.Task[None]]) -> None:
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def max_in_any_window(times: list[int], window_ns: int) -> int:
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window_ns:
            j += 1
        best = max(best, i - j + 1)
    return best


@pytest.mark.parametrize("aligned", [True, False])
async def test_never_over_and_saturating(aligned: bool) -> None:
    clock = FakeClock(start_ns=1_000 * NS + 123_456_789)
    rl = RateLimiter(20, clock=clock, aligned=aligned, margin=0.05)
    log: list[tuple[int, Lane]] = []
    tasks = start_workers(rl, clock, 50, Lane.BACKGROUND, log)
    await drive(clock, 10.0)
    await stop(tasks)
    times = [t for t, _ in log]
    if aligned:
        per_window: dict[int, int] = {}
        for t in times:
            per_window[t // NS] = per_window.get(t // NS, 0) + 1
        assert max(per_window.values()) <= 20
    # sliding semantics hold against ANY phase of the venue's window; aligned only its own
    window = int(1.05 * NS) if not aligned else NS
    if not aligned:
        assert max_in_any_window(times, window) <= 20
    assert len(times) >= 0.9 * 20 * 10, len(times)


async def test_lanes_served_by_priority() -> None:
    clock = FakeClock(start_ns=0)
    rl = RateLimiter(2, clock=clock, aligned=True)
    order: list[str] = []

    async def req(tag: str, lane: Lane) -> None:
        await rl.acquire(lane)
        order.append(tag)

    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(req(f"bg{i}", Lane.BACKGROUND)) for i in range(4)]
    await drive(clock, 0.001)          # bg0, bg1 take this window's two permits
    tasks += [loop.create_task(req("rt", Lane.REALTIME)),
              loop.create_task(req("ord", Lane.ORDER))]
    await drive(clock, 3.0)
    await asyncio.gather(*tasks)
    assert order[:2] == ["bg0", "bg1"]
    assert order[2:4] == ["ord", "rt"]
    assert order[4:] == ["bg2", "bg3"]
    s = rl.stats()
    assert s.lanes["order"].granted == 1 and s.lanes["background"].granted == 4


async def test_try_acquire_respects_waiters_and_budget() -> None:
    clock = FakeClock(start_ns=0)
    rl = RateLimiter(1, clock=clock, aligned=True)
    assert rl.try_acquire(Lane.ORDER)
    assert not rl.try_acquire(Lane.ORDER)
    clock.advance(1.0)
    assert rl.try_acquire(Lane.BACKGROUND)


async def test_penalize_pauses_all_lanes_and_counts() -> None:
    clock = FakeClock(start_ns=0)
    rl = RateLimiter(5, clock=clock, aligned=True, backoff_initial=2.0, backoff_max=8.0)
    assert rl.penalize() == 2.0
    assert rl.penalize() == 4.0
    assert not rl.try_acquire(Lane.ORDER)
    done: list[int] = []

    async def one() -> None:
        await rl.acquire(Lane.ORDER)
        done.append(clock.now_ns())

    t = asyncio.get_running_loop().create_task(one())
    await drive(clock, 3.9, step=0.1)
    assert not done
    await drive(clock, 0.2, step=0.1)
    await t
    assert done and done[0] >= 4 * NS
    s = rl.stats()
    assert s.venue_limited == 2 and s.blocked_for == 0
    rl.succeeded()
    assert rl.penalize() == 2.0


async def test_cancelled_waiter_does_not_wedge() -> None:
    clock = FakeClock(start_ns=0)
    rl = RateLimiter(1, clock=clock, aligned=True)
    assert rl.try_acquire()
    loop = asyncio.get_running_loop()
    a = loop.create_task(rl.acquire(Lane.ORDER))
    b = loop.create_task(rl.acquire(Lane.BACKGROUND))
    await drive(clock, 0.1)
    a.cancel()
    await drive(clock, 1.0)
    await b
    assert rl.stats().lanes["background"].granted == 2


def test_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0, clock=FakeClock())
    with pytest.raises(ValueError):
        RateLimiter(1, window=0, clock=FakeClock())


@settings(max_examples=25, deadline=None)
@given(limit=st.integers(1, 6), gaps=st.lists(st.integers(0, 700), min_size=1, max_size=40),
       lanes=st.lists(st.sampled_from(list(Lane)), min_size=40, max_size=40))
def test_any_arrival_pattern_stays_within_budget(limit: int, gaps: list[int],
                                                 lanes: list[Lane]) -> None:
    async def scenario() -> list[int]:
        clock = FakeClock(start_ns=777_000_000)
        rl = RateLimiter(limit, clock=clock, margin=0.0)
        grants: list[int] = []

        async def req(lane: Lane) -> None:
            await rl.acquire(lane)
            grants.append(clock.now_ns())

        tasks = []
        for gap, lane in zip(gaps, lanes, strict=False):
            await drive(clock, gap / 1000, step=0.05)
            tasks.append(asyncio.get_running_loop().create_task(req(lane)))
        await drive(clock, len(gaps) / limit + 2, step=0.05)
        await asyncio.gather(*tasks)
        return grants

    grants = asyncio.run(scenario())
    assert len(grants) == len(gaps)
    assert max_in_any_window(sorted(grants), NS) <= limit


async def test_adaptive_budget_shrinks_once_per_window_and_recovers() -> None:
    clock = FakeClock(start_ns=100 * NS)
    rl = RateLimiter(6, clock=clock, aligned=True, backoff_initial=0.5, recover_after=30.0)
    rl.penalize()
    rl.penalize()                          # same window: one complaint
    assert rl.effective_limit == 5
    clock.advance(1.0)
    rl.penalize()
    assert rl.stats().effective_limit == 4
    clock.advance(10.0)
    rl.succeeded()
    assert rl.effective_limit == 4         # too soon
    clock.advance(30.0)
    rl.succeeded()
    assert rl.effective_limit == 5
    fixed = RateLimiter(6, clock=clock, adaptive=False)
    clock.advance(5.0)
    fixed.penalize()
    assert fixed.effective_limit == 6
