"""Fixtures for daemon tests: an isolated config + state directory per test, and a CLI
runner that executes ``python -m jts`` in a subprocess like a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Daemon:
    dir: Path
    config: Path

    def jts(self, *args: str, timeout: float = 120, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
        e = {**os.environ, **(env or {})}
        e.pop("JTS_CONFIG", None)
        return subprocess.run([sys.executable, "-m", "jts", *args], cwd=self.dir, env=e,
                              capture_output=True, text=True, timeout=timeout)

    def status(self) -> dict[str, Any]:
        r = self.jts("status", "--json", "-c", str(self.config))
        return dict(json.loads(r.stdout))

    @property
    def log_file(self) -> Path:
        return self.dir / "state" / "logs" / "jts.log"

    def log_events(self) -> list[dict[str, Any]]:
        if not self.log_file.exists():
            return []
        return [json.loads(x) for x in self.log_file.read_text().splitlines() if x.strip()]


def write_config(d: Path, extra: str = "") -> Path:
    cfg = d / "jts.toml"
    cfg.write_text(f"""
[daemon]
state_dir = "state"
stop_timeout = 10
[market]
symbols = 60
speed = 120.0
tick_interval = 0.1
history_bars = 60
[strategies]
dir = "{REPO / 'strategies'}"
[dashboard]
enabled = false
{extra}
""", encoding="utf-8")
    return cfg


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(tmp_path, write_config(tmp_path))
    yield d
    # never leave a daemon behind, whatever the test did
    pid_file = tmp_path / "state" / "jts.pid"
    if pid_file.exists():
        d.jts("stop", "--force", "--timeout", "15", "-c", str(d.config))


def poll_until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait for a real subprocess to reach a state (end-to-end tests only; a deadline, not a
    timed assertion: the failure message says what never happened)."""
    end = time.monotonic() + timeout
    pause = threading.Event()
    while time.monotonic() < end:
        if pred():
            return
        pause.wait(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
