"""``python -m brokers.kis.simulator [--port N] [--speed X] …``: the same as ``jts sim kis``.

App key, secret, account and HTS id default to the KIS_* environment variables (else
simulator defaults), so the adapter can be pointed at it with
``rest_url = "http://127.0.0.1:N"`` and ``ws_url = "ws://127.0.0.1:N/tryitout"``.
"""

from __future__ import annotations

from brokers.kis.cli import sim_app
from jts.log import setup_logging


def main() -> None:
    setup_logging(level="info", console=True)
    sim_app()


if __name__ == "__main__":
    main()
