"""The bundled simulated KRX market (paper trading out of the box)."""

from jts.sim.market import SimMarket, timeframe_minutes
from jts.sim.profile import intraday_weight
from jts.sim.universe import SimSymbol, make_universe

__all__ = ["SimMarket", "SimSymbol", "intraday_weight", "make_universe", "timeframe_minutes"]
