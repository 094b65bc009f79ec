"""The tick path inside the collector's publish step: the bar close and its intents happen
in the same step (before any other task runs), intents that find the channel full wait in
order, and a broken bar path stops the daemon with its reason."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from jts.bus import BLOCK, DROP, Bus
from jts.channel import Channel
from jts.portfolio import Portfolio
from jts.prices import LastPrices
from jts.tick_batch import TickBatch
from jts.tick_path import TickPath
from jts.types import Bar, OrderIntent, Side, Tick

T0 = 1_750_000_000 * 10**9
INDEX = {"A": 0, "B": 1}


class Guards:
    watching = False


class Engine:
    """Every bar becomes ``per_bar`` buy intents."""

    def __init__(self, per_bar: int = 1) -> None:
        self.per_bar = per_bar
        self.guards = Guards()
        self.candidates: list[Any] = []

    def on_candidates(self, found: Any) -> None:
        self.candidates.append(found)

    def on_bars(self, bars: list[Bar]) -> list[OrderIntent]:
        return [OrderIntent("s", b.symbol, Side.BUY, Decimal(k + 1), b.ts_ns)
                for b in bars for k in range(self.per_bar)]


class Bars:
    """Closes one bar per tick of symbol A; raises on a tick of symbol B when told to."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def add(self, ticks: Any) -> list[Bar]:
        if self.fail and any(t.symbol == "B" for t in ticks):
            raise RuntimeError("bar kernel out of bounds")
        return [Bar(t.symbol, "1m", t.ts_ns, t.price, t.price, t.price, t.price, t.volume,
                    t.price * t.volume) for t in ticks if t.symbol == "A"]


def make(engine: Engine, bars: Bars, capacity: int = 10_000) -> tuple[TickPath, Bus]:
    bus = Bus()
    bus.intents = Channel("intents", capacity, BLOCK)
    path = TickPath(bus, engine, Portfolio(cash=Decimal(10**9)), LastPrices(INDEX),
                    bars, bus.candidates.subscribe("strategies", 10, DROP))
    return path, bus


def batch(*syms: str) -> TickBatch:
    return TickBatch.of([Tick("krx", s, T0 + i, T0, 100.0 + i, 1.0, i + 1)
                         for i, s in enumerate(syms)], INDEX)


async def test_the_bar_close_and_its_intents_happen_in_the_publish_step() -> None:
    path, bus = make(Engine(), Bars())
    ticks_seen = bus.ticks.subscribe("probe", 10, DROP)
    path(batch("A", "B", "A"))
    # no task has run yet: the intents are already queued for the desk, the batch published
    assert [i.symbol for i in bus.intents.drain()] == ["A", "A"]
    assert len(ticks_seen) == 1 and path.bars_built == 2
    assert path.prices.get("B") == 101.0


async def test_intents_past_a_full_channel_wait_in_order() -> None:
    path, bus = make(Engine(per_bar=3), Bars(), capacity=4)
    runner = asyncio.create_task(path.run())
    path(batch("A", "A"))                      # 6 intents, room for 4
    assert len(bus.intents) == 4 and path.pending == 2
    got = bus.intents.drain()
    path(batch("A"))                           # 3 more: behind the 2 that wait
    for _ in range(5):
        await asyncio.sleep(0)
    got += bus.intents.drain()
    for _ in range(5):
        await asyncio.sleep(0)
    got += bus.intents.drain()
    assert [(i.ts_ns, i.quantity) for i in got] == [
        (T0, Decimal(1)), (T0, Decimal(2)), (T0, Decimal(3)),
        (T0 + 1, Decimal(1)), (T0 + 1, Decimal(2)), (T0 + 1, Decimal(3)),
        (T0, Decimal(1)), (T0, Decimal(2)), (T0, Decimal(3))]
    assert path.pending == 0 and path.spilled == 5
    runner.cancel()


async def test_a_broken_bar_path_stops_the_daemon_with_its_reason() -> None:
    path, bus = make(Engine(), Bars(fail=True))
    ticks_seen = bus.ticks.subscribe("probe", 10, DROP)
    runner = asyncio.create_task(path.run())
    path(batch("A", "B"))                      # raises inside: the step itself goes on
    assert len(ticks_seen) == 1
    with pytest.raises(RuntimeError, match="out of bounds"):
        await asyncio.wait_for(runner, 1.0)
