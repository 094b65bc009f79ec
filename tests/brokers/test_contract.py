"""The broker contract: what every adapter behind ``brokers.base.Broker`` must do, run
against the paper broker and against the KIS adapter talking to the KIS simulator over
loopback. A new adapter joins by adding a harness."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from decimal import Decimal as D

import pytest

from brokers.base import Broker, BrokerEvent
from brokers.kis.broker import KisBroker
from brokers.kis.simulator import SimSettings
from brokers.paper import PaperBroker
from jts.clock import KST, FakeClock, from_datetime
from jts.errors import OrderRejected
from jts.types import Fill, OrderEvent, OrderRequest, OrderStatus, OrderType, Side, Tick
from tests.brokers.kis.conftest import Env, make_env

SYMBOL = "005930"
RESTING_BUY = D(60_000)        # legal (tick grid, inside ±30 %) but far below the market
CASH = 10_000_000


class Harness:
    """A connected broker, the events it reported, and a way to move its market."""

    def __init__(self, broker: Broker, step: Callable[[], None]) -> None:
        self.broker = broker
        self._step = step
        self.seen: list[BrokerEvent] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.broker.connect()

        async def collect() -> None:
            async for ev in self.broker.events():
                self.seen.append(ev)
        self._task = asyncio.get_running_loop().create_task(collect())

    async def stop(self) -> None:
        await self.broker.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def until(self, pred: Callable[[], bool], steps: int = 30) -> None:
        """Move the market a step at a time (letting loopback I/O run) until ``pred``."""
        for _ in range(steps):
            for _ in range(300):
                if pred():
                    return
                await asyncio.sleep(0)
            self._step()
        raise AssertionError("the broker never reported what was expected")

    def fills(self, coid: str) -> list[Fill]:
        return [e for e in self.seen if isinstance(e, Fill) and e.client_order_id == coid]

    def last_status(self, coid: str) -> OrderStatus | None:
        evs = [e for e in self.seen if isinstance(e, OrderEvent) and e.client_order_id == coid]
        return evs[-1].status if evs else None


async def _paper() -> AsyncIterator[Harness]:
    t0 = from_datetime(datetime(2026, 3, 10, 10, 0, tzinfo=KST))
    clock = FakeClock(t0)
    b = PaperBroker(name="paper", account="paper-1", initial_cash=D(CASH), clock=clock)
    price = [72_000.0]

    def step() -> None:
        clock.advance(1.0)
        price[0] += 100.0
        b.on_tick(Tick("krx", SYMBOL, clock.now_ns(), clock.now_ns(), price[0], 100.0))

    h = Harness(b, step)
    await h.start()
    step()                                   # the paper broker needs a first price
    yield h
    await h.stop()


async def _kis() -> AsyncIterator[Harness]:
    env: Env = await make_env(SimSettings(domain="virtual", rate_limit=1000, auto_step=False,
                                          ping_interval=0), cash=CASH)
    b: KisBroker = env.broker()
    h = Harness(b, env.sim.step)
    await h.start()
    assert b.stream is not None
    await asyncio.wait_for(b.stream.connected.wait(), 5)
    await h.until(lambda: bool(b.stream and b.stream.active))      # notice registration
    yield h
    await h.stop()
    await env.server.close()


HARNESSES = {"paper": _paper, "kis": _kis}


@pytest.fixture(params=sorted(HARNESSES))
async def h(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    async for harness in HARNESSES[request.param]():
        yield harness


def req(h: Harness, coid: str, side: Side, qty: int, limit: D | None = None) -> OrderRequest:
    return OrderRequest(coid, h.broker.name, h.broker.account, SYMBOL, side, D(qty),
                        OrderType.LIMIT if limit is not None else OrderType.MARKET, limit,
                        strategy="contract")


async def test_implements_the_protocol(h: Harness) -> None:
    assert isinstance(h.broker, Broker)
    assert h.broker.name and h.broker.account


async def test_market_buy_fills_moves_position_and_cash(h: Harness) -> None:
    cash0 = (await h.broker.balance()).cash
    ack = await h.broker.submit(req(h, "m1", Side.BUY, 10))
    assert ack.status is OrderStatus.ACCEPTED and ack.broker_order_id
    await h.until(lambda: h.last_status("m1") is OrderStatus.FILLED)
    fills = h.fills("m1")
    assert sum(f.quantity for f in fills) == 10
    assert all((f.broker, f.account, f.symbol, f.side) ==
               (h.broker.name, h.broker.account, SYMBOL, Side.BUY) for f in fills)
    assert len({f.trade_id for f in fills}) == len(fills)
    [pos] = [p for p in await h.broker.positions() if p.symbol == SYMBOL]
    assert pos.quantity == 10
    spent = sum((f.notional + f.fees for f in fills), D(0))
    assert cash0 - (await h.broker.balance()).cash == spent
    ev = await h.broker.query_order("m1")
    assert ev is not None and ev.status is OrderStatus.FILLED and ev.filled_quantity == 10


async def test_round_trip_closes_the_position(h: Harness) -> None:
    await h.broker.submit(req(h, "b1", Side.BUY, 5))
    await h.until(lambda: h.last_status("b1") is OrderStatus.FILLED)
    await h.broker.submit(req(h, "s1", Side.SELL, 5))
    await h.until(lambda: h.last_status("s1") is OrderStatus.FILLED)
    assert [p for p in await h.broker.positions() if p.symbol == SYMBOL] == []
    ids = [f.trade_id for f in h.seen if isinstance(f, Fill)]
    assert len(ids) == len(set(ids)) >= 2


async def test_resting_limit_is_open_until_cancelled(h: Harness) -> None:
    ack = await h.broker.submit(req(h, "l1", Side.BUY, 3, RESTING_BUY))
    assert ack.status is OrderStatus.ACCEPTED
    assert "l1" in [o.client_order_id for o in await h.broker.open_orders()]
    done = await h.broker.cancel("l1")
    assert done.status is OrderStatus.CANCELLED
    assert "l1" not in [o.client_order_id for o in await h.broker.open_orders()]
    ev = await h.broker.query_order("l1")
    assert ev is not None and ev.status is OrderStatus.CANCELLED and ev.filled_quantity == 0
    assert h.fills("l1") == []


@pytest.mark.parametrize(("coid", "side", "qty", "limit"), [
    ("cash", Side.BUY, 10_000, None),                  # ~720 M won on a 10 M account
    ("grid", Side.BUY, 1, D(70_001)),                  # not on the tick grid
    ("band", Side.BUY, 1, D(10_000)),                  # beyond the daily limit
    ("short", Side.SELL, 1, None),                     # nothing held: no shorting
])
async def test_refusals_are_values(h: Harness, coid: str, side: Side, qty: int,
                                   limit: D | None) -> None:
    ev = await h.broker.submit(req(h, coid, side, qty, limit))
    assert ev.status is OrderStatus.REJECTED and ev.reason
    assert coid not in [o.client_order_id for o in await h.broker.open_orders()]
    assert await h.broker.positions() == []


async def test_unknown_orders(h: Harness) -> None:
    assert await h.broker.query_order("never-sent") is None
    with pytest.raises(OrderRejected):
        await h.broker.cancel("never-sent")
