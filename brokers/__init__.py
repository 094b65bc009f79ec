"""Broker adapters and their registry.

Adapters are imported lazily by name so that a daemon trading only on paper never imports
ccxt or the KIS client. Vendor payloads live only inside ``brokers/*/parse.py``.
"""

from __future__ import annotations

from brokers.base import Broker, BrokerEvent

__all__ = ["Broker", "BrokerEvent"]
