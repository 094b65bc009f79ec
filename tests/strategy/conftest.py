from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

HEADER = """[strategy]
name = "t"
universe = ["005930"]
timeframe = "1m"

[params]
fast = 3
slow = 8
"""


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    def _write(entry: str = "close > 1", exit_: str = "close < 1", extra: str = "",
               header: str = HEADER, name: str = "s.toml") -> Path:
        p = tmp_path / name
        p.write_text(header + extra + f'\n[rules]\nentry = "{entry}"\nexit = "{exit_}"\n',
                     encoding="utf-8")
        return p
    return _write
