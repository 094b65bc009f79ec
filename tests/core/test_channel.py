"""Channel overflow policies: market data drops oldest (counted); orders never drop."""

from __future__ import annotations

import asyncio

import pytest

from jts.channel import Channel, ChannelClosed, ChannelFull, Overflow, Topic


async def test_drop_oldest_keeps_newest_and_counts() -> None:
    ch: Channel[int] = Channel("ticks", 3, Overflow.DROP_OLDEST)
    for i in range(10):
        ch.send_nowait(i)
    assert ch.drain() == [7, 8, 9]
    assert ch.stats.dropped == 7
    assert ch.stats.sent == 10
    assert ch.stats.high_water == 3


async def test_drop_oldest_warns_rate_limited(capsys: pytest.CaptureFixture[str]) -> None:
    from jts.log import setup_logging

    setup_logging(level="info", console=True)
    ch: Channel[int] = Channel("ticks", 1, Overflow.DROP_OLDEST, warn_interval=3600)
    for i in range(5):
        ch.send_nowait(i)
    err = capsys.readouterr().err
    assert err.count("channel_overflow") == 1


async def test_block_never_drops_and_send_nowait_refuses() -> None:
    ch: Channel[int] = Channel("fills", 2, Overflow.BLOCK)
    ch.send_nowait(1)
    ch.send_nowait(2)
    with pytest.raises(ChannelFull):
        ch.send_nowait(3)
    assert ch.stats.dropped == 0
    assert ch.drain() == [1, 2]


async def test_block_send_waits_for_room() -> None:
    ch: Channel[int] = Channel("intents", 1, Overflow.BLOCK)
    await ch.send(1)
    sender = asyncio.create_task(ch.send(2))
    await asyncio.sleep(0)
    assert not sender.done()              # back-pressure, not loss
    assert await ch.receive() == 1
    await sender
    assert await ch.receive() == 2
    assert ch.stats.dropped == 0


async def test_receive_batch_takes_everything_pending() -> None:
    ch: Channel[int] = Channel("x", 100, Overflow.BLOCK)
    waiter = asyncio.create_task(ch.receive_batch())
    await asyncio.sleep(0)
    for i in range(5):
        ch.send_nowait(i)
    assert await waiter == [0, 1, 2, 3, 4]


async def test_close_drains_then_raises() -> None:
    ch: Channel[int] = Channel("x", 10, Overflow.BLOCK)
    ch.send_nowait(1)
    ch.close()
    assert await ch.receive() == 1
    with pytest.raises(ChannelClosed):
        await ch.receive()
    with pytest.raises(ChannelClosed):
        ch.send_nowait(2)
    assert [i async for i in ch] == []


async def test_join_waits_until_consumed() -> None:
    ch: Channel[int] = Channel("x", 10, Overflow.BLOCK)
    ch.send_nowait(1)
    joined = asyncio.create_task(ch.join())
    await asyncio.sleep(0)
    assert not joined.done()
    ch.receive_nowait()
    await asyncio.wait_for(joined, 1)


async def test_topic_fans_out_with_per_subscriber_policy() -> None:
    t: Topic[int] = Topic("ticks")
    fast = t.subscribe("strategy", 100, Overflow.DROP_OLDEST)
    slow = t.subscribe("dashboard", 2, Overflow.DROP_OLDEST)
    for i in range(5):
        t.publish_nowait(i)
    assert fast.drain() == [0, 1, 2, 3, 4]
    assert slow.drain() == [3, 4]
    assert slow.stats.dropped == 3 and fast.stats.dropped == 0


async def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Channel("x", 0, Overflow.BLOCK)
