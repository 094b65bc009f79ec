"""An offline KIS Open API simulator (REST + WebSocket on loopback); see docs/kis.md."""

from brokers.kis.simulator.market import KisSimMarket, SimMarket
from brokers.kis.simulator.server import KisSimulator
from brokers.kis.simulator.venue import SimSettings

__all__ = ["KisSimMarket", "KisSimulator", "SimMarket", "SimSettings"]
