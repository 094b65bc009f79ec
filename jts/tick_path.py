"""What the daemon does with each accepted tick batch, inside the collector's publish step.

In order: last prices and the portfolio's marks (from the batch's columns), the bar close and
the strategies' intents, the batch on the bus for the other consumers (surge detector, paper
broker, dashboard, tick writer), and the ``[stops]`` of held positions on their symbols'
prints. The bar close runs here, synchronously, rather than in a task woken by the batch:
a task would wait behind whatever work is already queued on the loop (a surge call over a
coalesced read, a burst of fills), and the bar close is what the tick → intent latency is
about. Intents go to the never-drop intents channel; when it is full they wait in a spill
queue (in order) that :meth:`TickPath.run` feeds into the channel as it drains.
"""

from __future__ import annotations

import asyncio
import gc
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import structlog

from jts.bars import BarBuilder
from jts.bus import Bus
from jts.channel import Channel, ChannelFull
from jts.portfolio import Portfolio
from jts.prices import LastPrices, SymbolMask
from jts.tick_batch import TickBatch
from jts.types import OrderIntent, Tick

log = structlog.get_logger(__name__)


class TickPath:
    def __init__(self, bus: Bus, engine: Any, portfolio: Portfolio, prices: LastPrices,
                 bar_builder: BarBuilder, candidates: Channel[Any]) -> None:
        self.bus = bus
        self.engine = engine
        self.portfolio = portfolio
        self.prices = prices
        self.bar_builder = bar_builder
        self._candidates = candidates
        self._held = SymbolMask(prices.index)
        self._stopped = SymbolMask(prices.index)
        self._touched = np.zeros(len(prices.index) + 1, np.bool_)   # +1: row -1
        self._any_touched = False
        portfolio.moves = self._moved_held
        self._spill: deque[OrderIntent] = deque()
        self._wake = asyncio.Event()
        self._failure: BaseException | None = None
        self.bars_built = 0
        self.spilled = 0

    def __call__(self, ticks: Sequence[Tick]) -> None:
        """The collector's publish hook: validated, de-duplicated ticks of one batch."""
        cols: Any = getattr(ticks, "columns", None)
        # a batch with columns over our index: the array paths (else: tick by tick)
        batch = (ticks if isinstance(ticks, TickBatch) and cols is not None
                 and cols[0] is self.prices.index else None)
        if batch is not None:
            self._mark_columns(batch, cols[1], cols[3])
        else:
            prices = {t.symbol: t.price for t in ticks}
            self.prices.update(prices)
            self.portfolio.mark_many(prices)
        if self._failure is None:
            try:
                self._close_bars(ticks)
            except Exception as exc:        # a bug: the daemon stops (see run())
                self._failure = exc
                self._wake.set()
        self.bus.ticks.publish_nowait(ticks)
        guards = self.engine.guards
        if guards.watching:                  # [stops] of held positions, on every print
            if batch is not None:
                watched = self._stopped.of(guards.stops.symbols(), guards.stops.version)
                ticks = batch.take(np.flatnonzero(watched[cols[1]]))
            for intent in self.engine.on_ticks(ticks):
                try:
                    self.bus.intents.send_nowait(intent)
                except ChannelFull:
                    log.error("stop_exit_deferred", strategy=intent.strategy,
                              symbol=intent.symbol, reason="intents channel full")
                    self.engine.on_order_done(intent.strategy, intent.symbol)  # re-arm

    def _mark_columns(self, ticks: TickBatch, sym: np.ndarray, px: np.ndarray) -> None:
        """Last prices from the columns; the rows they touched are remembered (one vector
        write) and handed to the portfolio, which reads the same array, when it next
        computes its aggregates (:meth:`_moved_held`)."""
        self.prices.update_columns(sym, px)
        self._touched[sym] = True
        self._any_touched = True
        outside = np.flatnonzero(sym < 0)
        if outside.size:                      # symbols outside the universe: one by one
            for t in ticks.take(outside):
                self.prices[t.symbol] = t.price
                self.portfolio.mark(t.symbol, t.price)

    def _moved_held(self) -> list[str]:
        """The held symbols traded since the last call (the portfolio's ``moves``)."""
        if not self._any_touched:
            return []
        self._any_touched = False
        pf = self.portfolio
        n = len(self.prices.names)
        held = self._held.of_growing(pf.holdings)
        rows = np.flatnonzero(self._touched[:n] & held[:n])
        self._touched[:] = False
        names = self.prices.names
        return [names[i] for i in rows.tolist()]

    def _close_bars(self, ticks: Sequence[Tick]) -> None:
        bars = self.bar_builder.add(ticks)
        if not bars:
            return
        self.bars_built += len(bars)
        for found in self._candidates.drain():
            self.engine.on_candidates(found)
        # no cyclic collection while the strategies allocate a burst of intents: one that
        # is due runs right after, once the intents are out
        collecting = gc.isenabled()
        gc.disable()
        try:
            intents = self.engine.on_bars(bars)
        finally:
            if collecting:
                gc.enable()
        channel = self.bus.intents
        for intent in intents:
            if not self._spill:
                try:
                    channel.send_nowait(intent)
                    continue
                except ChannelFull:
                    log.warning("intents_spilled", channel=channel.name,
                                capacity=channel.capacity)
            self._spill.append(intent)
            self.spilled += 1
            self._wake.set()
        self.bus.bars.publish_nowait(bars)

    @property
    def pending(self) -> int:
        """Intents waiting for room in the intents channel."""
        return len(self._spill)

    async def run(self) -> None:
        """Feed spilled intents into the channel in order (waiting for room); raise what
        broke the bar path so the daemon stops with the reason."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._failure is not None:
                raise self._failure
            while self._spill:
                await self.bus.intents.send(self._spill[0])
                self._spill.popleft()
