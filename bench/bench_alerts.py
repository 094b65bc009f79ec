"""Alert delivery latency per sink over loopback, and the cost of ``notify()``.

Run: .venv/bin/python bench/bench_alerts.py [n_alerts] [rate_per_s]
Every sink is live against a local fake (Telegram Bot API and webhook on aiohttp, SMTP on
asyncio streams); de-duplication and throttling are off so every alert is delivered.
Latency is notify() → the sink's delivery confirmed (HTTP 200 / SMTP 250), wall clock.
The fakes run on their own event loop in a second thread. Scenario 2 holds the webhook
receiver (it never answers) to show the other sinks unaffected.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jts.alerts import AlertsConfig, Notifier
from jts.log import setup_logging
from tests.alerts.fakes import FakeSMTP, FakeTelegram, FakeWebhook

OPEN = {"enabled": True, "dedup_window": 0, "max_per_minute": 0, "queue_size": 100_000}


class Remote:
    """The fake servers on their own event loop in another thread, like a remote host."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


async def scenario(n_alerts: int, rate: float, hold_webhook: bool) -> dict[str, Any]:
    os.environ["BENCH_TG_TOKEN"] = "42:bench-token"
    os.environ["BENCH_SMTP_PW"] = "bench-pw"
    remote = Remote()
    tg, hook, smtp = FakeTelegram("42:bench-token"), FakeWebhook(), FakeSMTP("u", "bench-pw")
    tg_base, hook_base = remote.call(tg.start()), remote.call(hook.start())
    smtp_port = remote.call(smtp.start())
    if hold_webhook:
        async def make_hold() -> asyncio.Event:
            return asyncio.Event()
        hook.hold = remote.call(make_hold())
    cfg = msgspec.convert({
        "rules": {"surge_candidate": {"sinks": None}},
        "dashboard": {**OPEN, "history": 100_000},
        "telegram": {**OPEN, "bot_token_env": "BENCH_TG_TOKEN", "chat_id": "1",
                     "base_url": tg_base},
        "webhook": {**OPEN, "url": f"{hook_base}/hook", "timeout": 300},
        "email": {**OPEN, "host": "127.0.0.1", "port": smtp_port, "security": "none",
                  "username": "u", "password_env": "BENCH_SMTP_PW",
                  "from_addr": "jts@bench.local", "to": ["me@bench.local"]},
    }, AlertsConfig)
    n = Notifier(cfg)
    sub = n.dashboard.subscribe(capacity=n_alerts)
    task = asyncio.create_task(n.run())
    await asyncio.sleep(0.05)
    t0 = time.perf_counter()
    for i in range(n_alerts):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        n.notify("fill", f"005930 buy {i} @ 71000", quantity=i, price="71000")
    live = ("dashboard", "telegram", "email") if hold_webhook else tuple(n.workers)
    for name in live:
        await asyncio.wait_for(n.workers[name].wait_until(lambda s: s.delivered >= n_alerts),
                               120)
    elapsed = time.perf_counter() - t0
    status = n.status()
    assert len(sub.drain()) == n_alerts
    if hook.hold is not None:
        remote.loop.call_soon_threadsafe(hook.hold.set)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    for fake in (tg, hook, smtp):
        remote.call(fake.stop())
    remote.stop()
    return {"elapsed": elapsed, "sinks": status["sinks"], "live": live}


def notify_cost(n: int = 100_000) -> float:
    cfg = msgspec.convert({"dashboard": OPEN, "webhook": {**OPEN, "url": "http://127.0.0.1:9/x",
                                                           "queue_size": 1000}},
                          AlertsConfig)
    notifier = Notifier(cfg)
    t = time.perf_counter()
    for i in range(n):
        notifier.notify("fill", "005930 buy", key=str(i), quantity=i)
    return (time.perf_counter() - t) / n * 1e6


def main() -> None:
    setup_logging(level="error")
    n_alerts = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    rate = float(sys.argv[2]) if len(sys.argv) > 2 else 100.0
    print(f"alerts: {n_alerts} at {rate:g}/s, every sink live on loopback\n")
    print("| scenario | sink | delivered | p50 ms | p99 ms | max ms |")
    print("|---|---|---:|---:|---:|---:|")
    for hold in (False, True):
        r = asyncio.run(scenario(n_alerts, rate, hold))
        label = "webhook hung" if hold else "all healthy"
        for name, st in r["sinks"].items():
            if name not in r["live"]:
                print(f"| {label} | {name} | {st['delivered']} (hung, {st['queued']} queued) "
                      "| – | – | – |")
                continue
            lat = st["latency_ms"]
            print(f"| {label} | {name} | {st['delivered']} | {lat['p50']:.2f} | "
                  f"{lat['p99']:.2f} | {lat['max']:.2f} |")
    print()
    print("| measure | value |")
    print("|---|---:|")
    print(f"| notify() cost, 2 sinks routed (µs/call) | {notify_cost():.2f} |")


if __name__ == "__main__":
    main()
