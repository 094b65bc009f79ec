"""Dashboard benchmark on loopback against the real daemon (paper mode, simulated market):

1. API latency under load: C concurrent keep-alive clients calling GET /api/status,
   /api/snapshot and /api/session for a fixed time; p50/p99/max per route.
2. WebSocket fan-out: N clients (spread over P client processes) connected while the daemon
   pushes 10 updates/s; every client checks it got every update in order (seq) and records
   delivery latency = receive wall time − the update's build time (same host clock).

Run: .venv/bin/python bench/bench_dashboard.py [--clients 1000] [--seconds 10]
Prints markdown tables. Targets (issue 8): API p99 ≤ 20 ms; every client gets every update,
delivery p99 ≤ 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import numpy as np

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "bench-password"


class Update(msgspec.Struct):
    t: str
    seq: int = 0
    ts: int = 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_daemon(d: Path, port: int, push: float) -> subprocess.Popen[bytes]:
    (d / "jts.toml").write_text(f"""
[daemon]
state_dir = "state"
stop_timeout = 5
[market]
symbols = 60
speed = 60.0
tick_interval = 0.25
[strategies]
dir = "{REPO / 'strategies'}"
[dashboard]
port = {port}
push_interval = {push}
api_rate = 1000000.0
api_burst = 1000000
max_ws_clients = 10000
""", encoding="utf-8")
    env = {**os.environ, "JTS_DASHBOARD_PASSWORD": PASSWORD}
    env.pop("JTS_CONFIG", None)
    out = open(d / "daemon.out", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "jts", "start", "--foreground", "--quiet",
                             "-c", str(d / "jts.toml")], cwd=d, env=env, stdout=out,
                            stderr=out)
    end = time.monotonic() + 90
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit("daemon exited:\n" + (d / "daemon.out").read_text()[-2000:])
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/manifest.webmanifest",
                                   timeout=1).close()
            return proc
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("dashboard did not come up")


async def login(session: aiohttp.ClientSession, base: str) -> None:
    async with session.post(base + "api/login", json={"password": PASSWORD}) as r:
        r.raise_for_status()


# --- API latency --------------------------------------------------------------------------
ROUTES = ["api/status", "api/snapshot", "api/session"]


async def api_load(base: str, rate: float, seconds: float) -> dict[str, list[float]]:
    """Open loop: request i is due at t0 + i/rate (routes in turn); latency counts from the
    due time, so queueing in the server is not hidden (no coordinated omission)."""
    lat: dict[str, list[float]] = {r: [] for r in ROUTES}
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar,
                                     connector=aiohttp.TCPConnector(limit=64)) as s:
        await login(s, base)
        n = int(rate * seconds)
        t0 = time.perf_counter() + 0.2

        async def one(i: int) -> None:
            due = t0 + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            route = ROUTES[i % len(ROUTES)]
            async with s.get(base + route) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"{route}: HTTP {r.status}")
            lat[route].append((time.perf_counter() - due) * 1000)

        await asyncio.gather(*(one(i) for i in range(n)))
    return lat


# --- WebSocket fan-out ------------------------------------------------------------------------
async def ws_clients(base: str, n: int, seconds: float, start_at: float) -> dict[str, Any]:
    dec = msgspec.json.Decoder(Update)
    jar = aiohttp.CookieJar(unsafe=True)
    conn = aiohttp.TCPConnector(limit=0)
    lat: list[float] = []
    stats = {"clients": 0, "updates": 0, "gaps": 0, "closed_early": 0, "first": [], "last": [],
             "counts": [], "received": []}
    async with aiohttp.ClientSession(cookie_jar=jar, connector=conn) as s:
        await login(s, base)
        socks = []
        for _ in range(n):
            socks.append(await s.ws_connect(base.replace("http", "ws") + "ws", max_msg_size=0))
        stats["clients"] = len(socks)
        await asyncio.sleep(max(0.0, start_at - time.time()))   # all processes start together
        end = time.time() + seconds

        async def reader(ws: aiohttp.ClientWebSocketResponse) -> None:
            seq = -1
            first = None
            got = 0
            while True:
                left = end - time.time()
                if left <= 0:
                    break
                try:
                    msg = await ws.receive(timeout=left)
                except TimeoutError:
                    break
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    stats["closed_early"] += 1
                    break
                now = time.time_ns()
                u = dec.decode(msg.data)
                if u.t != "u":
                    continue
                if seq >= 0 and u.seq != seq + 1:
                    stats["gaps"] += 1
                seq = u.seq
                if first is None:
                    first = seq
                lat.append((now - u.ts) / 1e6)
                stats["updates"] += 1
                got += 1
            stats["first"].append(first)
            stats["last"].append(seq)
            stats["counts"].append(0 if first is None else seq - first + 1)
            stats["received"].append(got)

        await asyncio.gather(*(reader(ws) for ws in socks))
        for ws in socks:
            await ws.close()
    stats["lat"] = lat
    return stats


def _ws_proc(base: str, n: int, seconds: float, start_at: float, q: Any) -> None:
    q.put(asyncio.run(ws_clients(base, n, seconds, start_at)))


def pct(xs: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(xs), p)) if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--api-rates", default="50,200")
    ap.add_argument("--api-seconds", type=float, default=5.0)
    a = ap.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_daemon(Path(tmp), port, 0.1)
        base = f"http://127.0.0.1:{port}/"
        try:
            time.sleep(2)        # let the market warm up and strategies trade a little
            print("### API latency under load (open loop; daemon trading in paper mode)\n")
            print("| load req/s | route | requests | p50 ms | p99 ms | max ms |")
            print("|---:|---|---:|---:|---:|---:|")
            for rate in (float(x) for x in a.api_rates.split(",")):
                lat = asyncio.run(api_load(base, rate, a.api_seconds))
                allv: list[float] = []
                for route, xs in lat.items():
                    allv += xs
                    print(f"| {rate:.0f} | GET /{route} | {len(xs)} | {pct(xs, 50):.2f} | "
                          f"{pct(xs, 99):.2f} | {max(xs):.2f} |")
                print(f"| {rate:.0f} | all | {len(allv)} | {pct(allv, 50):.2f} | "
                      f"{pct(allv, 99):.2f} | {max(allv):.2f} |")
            print()

            ctx = mp.get_context("spawn")
            q = ctx.Queue()
            per = [a.clients // a.procs + (1 if i < a.clients % a.procs else 0)
                   for i in range(a.procs)]
            start_at = time.time() + 8 + a.clients / 200
            ps = [ctx.Process(target=_ws_proc, args=(base, n, a.seconds, start_at, q))
                  for n in per]
            for p in ps:
                p.start()
            results = [q.get(timeout=a.seconds + 180) for _ in ps]
            for p in ps:
                p.join(30)
            lat_ws = [x for r in results for x in r["lat"]]
            clients = sum(r["clients"] for r in results)
            gaps = sum(r["gaps"] for r in results)
            early = sum(r["closed_early"] for r in results)
            received = [x for r in results for x in r["received"]]
            spans = [x for r in results for x in r["counts"]]
            missing = sum(sp - rc for sp, rc in zip(spans, received, strict=True))
            print(f"### WebSocket fan-out: {clients} clients × 10 updates/s, {a.seconds:.0f} s, "
                  f"{a.procs} client processes\n")
            print("| clients | updates per client (min–max) | messages received | missing | "
                  "sequence gaps | closed early | p50 ms | p99 ms | max ms |")
            print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            print(f"| {clients} | {min(received)}–{max(received)} | {len(lat_ws)} | {missing} | "
                  f"{gaps} | {early} | {pct(lat_ws, 50):.1f} | {pct(lat_ws, 99):.1f} | "
                  f"{max(lat_ws or [0]):.1f} |")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
