"""The in-process bus: every channel between components, as named, typed attributes.

Market data (ticks, bars) is delivered to each consumer through its own drop-oldest
channel; intents, order events and fills never drop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from jts.channel import Channel, Overflow, Topic
from jts.surge import SurgeCandidate
from jts.types import Bar, Fill, OrderEvent, OrderIntent, Tick


@dataclass
class Bus:
    ticks: Topic[Sequence[Tick]] = field(default_factory=lambda: Topic("ticks"))
    bars: Topic[Sequence[Bar]] = field(default_factory=lambda: Topic("bars"))
    intents: Channel[OrderIntent] = field(
        default_factory=lambda: Channel("intents", 10_000, Overflow.BLOCK))
    order_events: Topic[OrderEvent] = field(default_factory=lambda: Topic("order_events"))
    fills: Topic[Fill] = field(default_factory=lambda: Topic("fills"))
    candidates: Topic[list[SurgeCandidate]] = field(default_factory=lambda: Topic("candidates"))

    def channel_stats(self) -> dict[str, dict[str, int]]:
        chans: list[Channel[object]] = [self.intents]  # type: ignore[list-item]
        for topic in (self.ticks, self.bars, self.order_events, self.fills, self.candidates):
            chans.extend(topic.subscribers)  # type: ignore[arg-type]
        return {c.name: {"depth": len(c), "sent": c.stats.sent, "dropped": c.stats.dropped,
                         "high_water": c.stats.high_water, "capacity": c.capacity}
                for c in chans}


DROP = Overflow.DROP_OLDEST
BLOCK = Overflow.BLOCK
