"""The CLI end to end, in subprocesses, as a user runs it: start → status shows fills →
logs → stop → status says stopped; a second start is refused; a stale pid file is
recovered; bad input gives one line and a non-zero exit, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.daemon.conftest import Daemon, poll_until, write_config


def test_start_status_logs_stop(daemon: Daemon) -> None:
    c = str(daemon.config)
    r = daemon.jts("start", "-c", c)
    assert r.returncode == 0, r.stderr
    assert "jts started (pid" in r.stdout

    again = daemon.jts("start", "-c", c)
    assert again.returncode == 1
    assert "already running" in again.stderr and "Traceback" not in again.stderr

    poll_until(lambda: daemon.status().get("fills", 0) >= 1, 60, "a fill in jts status")
    st = daemon.status()
    for key in ("running", "pid", "mode", "ticks", "orders", "fills", "positions", "pnl"):
        assert key in st
    assert st["running"] is True and st["mode"] == "paper"
    assert st["ticks"] > 0 and st["feeds"][0]["last_tick_age_s"] is not None
    assert st["positions"] or st["closed_trades"] >= 1
    assert set(st["pnl"]) >= {"realized", "unrealized", "total"}

    human = daemon.jts("status", "-c", c)
    assert human.returncode == 0 and "jts running" in human.stdout and "P&L today" in human.stdout

    logs = daemon.jts("logs", "-n", "1000", "-c", c)
    assert logs.returncode == 0 and "daemon_started" in logs.stdout
    fills = daemon.jts("logs", "-n", "100000", "--grep", "fill_applied", "-c", c)
    assert fills.stdout and all("fill_applied" in ln for ln in fills.stdout.splitlines())
    warn = daemon.jts("logs", "-n", "100000", "--level", "warning", "-c", c)
    assert " INFO " not in warn.stdout

    stop = daemon.jts("stop", "-c", c)
    assert stop.returncode == 0, stop.stderr
    assert "stopped" in stop.stdout
    after = daemon.jts("status", "--json", "-c", c)
    assert after.returncode == 3 and '"running": false' in after.stdout
    events = [e["event"] for e in daemon.log_events()]
    assert "stop_requested" in events and "stopped" in events and "daemon_exited" in events


def test_stale_pid_file_is_recovered(daemon: Daemon) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    state = daemon.dir / "state"
    state.mkdir()
    (state / "jts.pid").write_text(f"{dead.pid}\n")
    r = daemon.jts("start", "-c", str(daemon.config))
    assert r.returncode == 0, r.stderr
    assert any(e["event"] == "stale_pid_file_recovered" and e["old_pid"] == dead.pid
               for e in daemon.log_events())
    assert daemon.jts("stop", "-c", str(daemon.config)).returncode == 0


def test_stop_and_status_when_not_running(daemon: Daemon) -> None:
    r = daemon.jts("stop", "-c", str(daemon.config))
    assert r.returncode == 3 and "not running" in r.stdout
    s = daemon.jts("status", "-c", str(daemon.config))
    assert s.returncode == 3 and "not running" in s.stdout


def one_line_error(r: subprocess.CompletedProcess[str], code: int, *fragments: str) -> None:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("jts: error: "), r.stderr
    for f in fragments:
        assert f in lines[0]


def test_bad_inputs_give_one_line_errors(tmp_path: Path, daemon: Daemon) -> None:
    one_line_error(daemon.jts("start", "-c", str(tmp_path / "missing.toml")), 2,
                   "missing.toml", "config file not found")
    garbled = tmp_path / "garbled.toml"
    garbled.write_text("[daemon\nmode=1\n")
    one_line_error(daemon.jts("start", "-c", str(garbled)), 2, "garbled.toml:1", "invalid TOML")
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[daemon]\nmood = 'happy'\n")
    one_line_error(daemon.jts("check-config", "-c", str(unknown)), 2, "unknown.toml:2",
                   "daemon.mood", "unknown key")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    d2 = tmp_path / "d2"
    d2.mkdir()
    cfg = write_config(d2, f'[log]\ndir = "{blocker}/logs"\n')
    one_line_error(daemon.jts("start", "--foreground", "-c", str(cfg)), 2,
                   "log directory is not writable")
    one_line_error(daemon.jts("logs", "--level", "loud", "-c", str(daemon.config)), 2,
                   "--level must be one of")


def test_bad_strategy_file_is_reported_by_check_config_and_start(tmp_path: Path,
                                                                 daemon: Daemon) -> None:
    sdir = tmp_path / "strats"
    sdir.mkdir()
    (sdir / "broken.toml").write_text(
        '[strategy]\nname = "broken"\nuniverse = "all"\ntimeframe = "1m"\n\n[rules]\n'
        'entry = "close > smaa(close, 5)"\nexit = "close < 1"\n')
    d3 = tmp_path / "d3"
    d3.mkdir()
    cfg = d3 / "jts.toml"
    cfg.write_text(f'[strategies]\ndir = "{sdir}"\n')
    r = daemon.jts("check-config", "-c", str(cfg))
    assert r.returncode == 2 and "broken.toml:7" in r.stderr and "Traceback" not in r.stderr
    assert daemon.jts("start", "-c", str(cfg)).returncode == 2
    ok = daemon.jts("check-config", "-c", str(daemon.config))
    assert ok.returncode == 0 and ": ok (" in ok.stdout


def test_version_and_service_unit(daemon: Daemon, tmp_path: Path) -> None:
    v = daemon.jts("version")
    assert v.returncode == 0 and v.stdout.startswith("jts ")
    dest = tmp_path / "unit" / "jts.service"
    r = daemon.jts("service", "install", "--user", "--dest", str(dest), "-c", str(daemon.config))
    assert r.returncode == 0, r.stderr
    unit = dest.read_text()
    assert "Type=notify" in unit and "WatchdogSec=" in unit and "Restart=on-failure" in unit
    assert f"-c {daemon.config}" in unit and sys.executable in unit
    assert "NoNewPrivileges=yes" in unit and "{" not in unit
