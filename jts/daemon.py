"""Daemon lifecycle: the pid lock, foreground run with signals and systemd notifications,
and the background start used by ``jts start``.

The pid file is held with an exclusive ``flock`` for the daemon's whole life, so a second
instance on the same state directory is refused, and a pid file left by a dead process
(whose lock the kernel released) is recovered automatically.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import structlog

from jts.config import Config
from jts.errors import ConfigError, DaemonError, JTSError

log = structlog.get_logger(__name__)

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_NOT_RUNNING = 0, 1, 2, 3


def ensure_state_dir(cfg: Config) -> Path:
    d = cfg.state_dir
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        probe = d / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"state directory is not writable: {exc.strerror or exc}",
                          file=str(d), key="daemon.state_dir") from None
    return d


class PidLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[str] | None = None
        self.stale_pid: int | None = None

    def acquire(self) -> None:
        fh = open(self.path, "a+", encoding="ascii")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIO:
            fh.seek(0)
            pid = fh.read().strip()
            fh.close()
            raise DaemonError(f"already running (pid {pid or '?'}) on state directory "
                              f"{self.path.parent}") from None
        fh.seek(0)
        old = fh.read().strip()
        if old.isdigit() and int(old) != os.getpid():
            self.stale_pid = int(old)
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self._fh.close()
            self._fh = None


BlockingIO = BlockingIOError


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def lock_is_held(path: Path) -> bool:
    """True when a live process holds the pid lock."""
    if not path.exists():
        return False
    with open(path, "a+", encoding="ascii") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def sd_notify(message: str) -> bool:
    """Send a systemd notification if we run under Type=notify; no-op otherwise."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            s.connect(addr)
            s.sendall(message.encode())
        except OSError:
            return False
    return True


def watchdog_interval() -> float | None:
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec or not usec.isdigit():
        return None
    pid = os.environ.get("WATCHDOG_PID")
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 1e6 / 2


async def serve(app: Any, cfg: Config) -> int:
    """Run ``app`` with its control endpoint and signal handlers; returns the exit code."""
    from jts.app import ComponentCrashed
    from jts.control import ControlServer

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, app.request_stop, signal.Signals(sig).name)

    async def stop_action(body: dict[str, Any]) -> dict[str, Any]:
        app.request_stop("jts stop" + (" --force" if body.get("force") else ""))
        return {"stopping": True, "pid": os.getpid()}

    async def kill_action(body: dict[str, Any]) -> dict[str, Any]:
        return dict(await app.kill(flatten=bool(body.get("flatten")), reason="jts kill"))

    async def resume_action(body: dict[str, Any]) -> dict[str, Any]:
        return dict(await app.resume())

    async def cancel_action(body: dict[str, Any]) -> dict[str, Any]:
        return dict(await app.cancel(str(body.get("client_order_id", ""))))

    async def replace_action(body: dict[str, Any]) -> dict[str, Any]:
        q, px = body.get("quantity"), body.get("limit_price")
        return dict(await app.replace(str(body.get("client_order_id", "")),
                                      None if q is None else str(q),
                                      None if px is None else str(px)))

    control = ControlServer(cfg.socket_path, app.status,
                            {"stop": stop_action, "kill": kill_action, "resume": resume_action,
                             "cancel": cancel_action, "replace": replace_action})

    async def ready() -> None:
        await control.start()
        sd_notify(f"READY=1\nSTATUS=trading ({cfg.daemon.mode})\nMAINPID={os.getpid()}")
        log.info("control_listening", socket=str(cfg.socket_path))

    async def watchdog() -> None:
        interval = watchdog_interval()
        if interval is None or not cfg.daemon.watchdog:
            await app.stopping.wait()
            return
        while not app.stopping.is_set():
            sd_notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    if cfg.dashboard.enabled:
        from jts.dashboard.server import run_dashboard

        app.add_component("dashboard", lambda: run_dashboard(app, cfg))
    app.on_ready = ready
    app.add_component("watchdog", watchdog)
    try:
        await app.run()
    except ComponentCrashed as exc:
        log.critical("daemon_failed", reason=str(exc))
        return EXIT_FAILURE
    except JTSError as exc:
        # a store that cannot be opened, a corrupt order journal: one line for `jts start`
        log.critical("daemon_failed", reason=str(exc))
        print(f"jts: error: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_FAILURE
    finally:
        sd_notify("STOPPING=1")
        await control.stop()
    log.info("daemon_exited", clean=app.stopped_cleanly)
    return EXIT_OK


def run_foreground(cfg: Config, *, console: bool = True) -> int:
    """``jts start --foreground``: lock, log, build the app, serve. Returns an exit code."""
    from jts.log import flush_logging, setup_logging

    ensure_state_dir(cfg)
    setup_logging(level=cfg.log.level, log_file=cfg.log_file, max_bytes=cfg.log.max_bytes,
                  backups=cfg.log.backups, console=console)
    lock = PidLock(cfg.pid_file)
    lock.acquire()
    try:
        if lock.stale_pid is not None:
            log.warning("stale_pid_file_recovered", old_pid=lock.stale_pid)
        from jts.app import App

        async def main() -> int:
            return await serve(App(cfg), cfg)

        try:
            return asyncio.run(main())
        except JTSError as exc:
            log.critical("daemon_failed", reason=str(exc))
            print(f"jts: error: {exc}", file=sys.stderr)
            return EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_FAILURE
    finally:
        flush_logging()
        lock.release()


def start_background(cfg: Config, config_path: Path | None, wait: float = 120.0) -> int:
    """Spawn the daemon detached and wait until its control socket answers; returns its pid."""
    from jts.control import call

    ensure_state_dir(cfg)
    if lock_is_held(cfg.pid_file):
        raise DaemonError(f"already running (pid {read_pid(cfg.pid_file)}) on state directory "
                          f"{cfg.state_dir}")
    cfg.log_dir.mkdir(parents=True, exist_ok=True)
    out_path = cfg.log_dir / "daemon.out"
    cmd = [sys.executable, "-m", "jts", "start", "--foreground", "--quiet"]
    if config_path is not None:
        cmd += ["-c", str(config_path.resolve())]
    with open(out_path, "ab") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True, cwd=os.getcwd(), env=os.environ.copy())
    t_end = time.monotonic() + wait
    while time.monotonic() < t_end:
        code = proc.poll()
        if code is not None:
            tail = _tail(out_path)
            raise DaemonError(f"daemon exited during start (code {code})"
                              + (f": {tail}" if tail else f"; see {out_path}"))
        if cfg.socket_path.exists():
            try:
                asyncio.run(call(cfg.socket_path, "GET", "/status", timeout_s=2))
                return proc.pid
            except DaemonError:
                pass
        time.sleep(0.1)
    raise DaemonError(f"daemon did not become ready within {wait:.0f} s; see {cfg.log_file}")


def _tail(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    errs = [ln for ln in lines if ln.startswith("jts: error:")]
    return (errs[-1][len("jts: error: "):] if errs else (lines[-1] if lines else ""))[:500]
