"""Suite-wide pytest hooks.

The embedded ClickHouse engine (chdb) can crash in its own teardown at interpreter exit
("ShutdownTablesThreadPool is not initialized", then SIGSEGV) after every test has passed and
every store was closed. When chdb was loaded, the run therefore ends with ``os._exit`` and
pytest's own exit status, after the summary has been printed and the streams flushed — the
daemon does the same after a clean stop (jts/cli.py).
"""

from __future__ import annotations

import os
import sys

import pytest

_status: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _status.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if "chdb" in sys.modules and _status:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_status[-1])
