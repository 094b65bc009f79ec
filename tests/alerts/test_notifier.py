"""Rules, routing, de-duplication, throttling, retries, isolation and latency of the
Notifier, driven with in-process recording sinks and a FakeClock."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal

from jts.alerts import Notifier
from jts.alerts.sinks import DeliveryError
from jts.clock import FakeClock

from .conftest import RecordingSink, config, guarded, until


def _notifier(clock: FakeClock, **cfg: object) -> tuple[Notifier, RecordingSink, RecordingSink]:
    tg, hook = RecordingSink("telegram"), RecordingSink("webhook")
    n = Notifier(config(**cfg), clock, sinks={"telegram": tg, "webhook": hook})
    return n, tg, hook


async def test_routes_by_rule_and_fans_out(clock, running) -> None:
    n, tg, hook = _notifier(clock, rules={"fill": {"sinks": ["telegram"]},
                                          "feed_stale": {"enabled": False}})
    await running(n)
    n.notify("fill", "005930 buy 10 @ 71000", price=Decimal("71000"))
    n.notify("feed_stale", "sim stale")
    n.notify("daily_loss", "loss!")                     # default: every sink
    await guarded(n.flush())
    assert tg.messages == ["005930 buy 10 @ 71000", "loss!"]
    assert hook.messages == ["loss!"]
    assert [a.message for a in n.dashboard.recent(10)] == ["loss!"]
    assert n.disabled == 1
    fill = tg.sent[0][0]
    assert fill.fields == {"price": "71000"} and fill.severity == "info"
    assert tg.sent[1][0].severity == "critical"        # the rule's default severity


async def test_surge_defaults_to_dashboard_and_unknown_kinds_to_other(clock, running) -> None:
    n, tg, hook = _notifier(clock)
    await running(n)
    n.notify("surge_candidate", "000660 surging")
    n.notify("my_custom", "hello", severity="warning")
    await guarded(n.flush())
    assert tg.sent == [] and hook.sent == []
    assert [a.kind for a in n.dashboard.recent(5)] == ["surge_candidate", "my_custom"]


async def test_dedup_same_key_within_window_only(clock, running) -> None:
    n, tg, _ = _notifier(clock, telegram={"dedup_window": 60})
    await running(n)
    n.notify("risk_limit", "blocked", key="k1")
    n.notify("risk_limit", "blocked again", key="k1")
    n.notify("risk_limit", "other", key="k2")
    clock.advance(61)
    n.notify("risk_limit", "blocked later", key="k1")
    await guarded(n.flush())
    assert tg.messages == ["blocked", "other", "blocked later"]
    assert n.workers["telegram"].stats.deduplicated == 1
    # without a key, identical kind+message is the duplicate
    n.notify("fill", "same")
    n.notify("fill", "same")
    await guarded(n.flush())
    assert tg.messages.count("same") == 1


async def test_throttle_counts_and_mentions_suppressed(clock, running) -> None:
    n, tg, hook = _notifier(clock, telegram={"max_per_minute": 2, "dedup_window": 0},
                            webhook={"max_per_minute": 0, "dedup_window": 0})
    await running(n)
    for i in range(5):
        n.notify("fill", f"f{i}")
    await guarded(n.flush())
    assert tg.messages == ["f0", "f1"]
    assert hook.messages == [f"f{i}" for i in range(5)]      # other sinks unaffected
    assert n.workers["telegram"].stats.throttled == 3
    clock.advance(60)
    n.notify("fill", "f5")
    await guarded(n.flush())
    assert tg.sent[-1][0].message == "f5" and tg.sent[-1][1] == 3


async def test_critical_waits_for_the_throttle_window(clock, running) -> None:
    n, tg, _ = _notifier(clock, telegram={"max_per_minute": 1, "dedup_window": 0})
    await running(n)
    n.notify("fill", "first")
    n.notify("broker_disconnected", "kis down")          # critical by rule
    await until(n, "telegram", lambda s: s.delivered == 1)
    for _ in range(5):
        await asyncio.sleep(0)
    assert tg.messages == ["first"] and clock.pending == 1
    clock.advance(60)
    await until(n, "telegram", lambda s: s.delivered == 2)
    assert tg.messages == ["first", "kis down"]
    assert n.workers["telegram"].stats.throttled == 0


async def test_retry_with_exponential_backoff_then_success(clock, running) -> None:
    n, tg, hook = _notifier(clock, telegram={"retries": 3, "backoff_initial": 2,
                                             "backoff_max": 30})
    tg.failures.extend([DeliveryError("503", retryable=True)] * 2)
    await running(n)
    n.notify("order_rejected", "rejected")
    await until(n, "telegram", lambda s: s.retried == 1)
    clock.advance(1.999)
    for _ in range(5):
        await asyncio.sleep(0)
    assert tg.attempts == 1                       # first backoff is 2 s
    clock.advance(0.001)
    await until(n, "telegram", lambda s: s.retried == 2)
    assert tg.attempts == 2
    clock.advance(4)                               # second backoff is 4 s
    await until(n, "telegram", lambda s: s.delivered == 1)
    st = n.workers["telegram"].stats
    assert (tg.attempts, st.failed, tg.messages) == (3, 0, ["rejected"])
    assert hook.messages == ["rejected"]          # delivered at once, not behind telegram
    assert n.status()["sinks"]["telegram"]["latency_ms"]["p50"] == 6000.0


async def test_retry_after_hint_and_giving_up(clock, running) -> None:
    n, tg, _ = _notifier(clock, telegram={"retries": 1, "backoff_initial": 1})
    tg.failures.extend([DeliveryError("429", retryable=True, retry_after=7),
                        DeliveryError("429", retryable=True, retry_after=7)])
    await running(n)
    n.notify("fill", "x")
    await until(n, "telegram", lambda s: s.retried == 1)
    clock.advance(6.9)
    for _ in range(5):
        await asyncio.sleep(0)
    assert tg.attempts == 1
    clock.advance(0.1)
    await until(n, "telegram", lambda s: s.failed == 1)
    assert tg.attempts == 2 and tg.sent == []
    assert "429" in n.status()["sinks"]["telegram"]["last_error"]


async def test_permanent_error_and_crashing_sink_are_not_retried(clock, running) -> None:
    n, tg, hook = _notifier(clock)
    tg.failures.append(DeliveryError("401 Unauthorized", retryable=False))
    hook.failures.append(RuntimeError("bug in a sink"))
    await running(n)
    n.notify("fill", "a")
    n.notify("fill", "b")
    await guarded(n.flush())
    assert tg.attempts == 2 and tg.messages == ["b"]
    assert hook.attempts == 2 and hook.messages == ["b"]
    assert n.workers["webhook"].stats.failed == 1
    assert "RuntimeError: bug in a sink" in n.workers["webhook"].stats.last_error


async def test_a_hanging_sink_does_not_delay_the_others(clock, running) -> None:
    n, tg, hook = _notifier(clock)
    tg.gate = asyncio.Event()                      # telegram never answers until released
    await running(n)
    for i in range(3):
        n.notify("fill", f"f{i}")
    await guarded(n.workers["webhook"].wait_idle())
    await guarded(n.workers["dashboard"].wait_idle())
    assert hook.messages == ["f0", "f1", "f2"] and len(n.dashboard.recent(9)) == 3
    assert tg.sent == [] and n.workers["telegram"].queued == 2
    tg.gate.set()
    await guarded(n.flush())
    assert tg.messages == ["f0", "f1", "f2"]


async def test_bounded_queue_drops_oldest_and_counts(clock) -> None:
    n, _tg, _ = _notifier(clock, telegram={"queue_size": 3, "dedup_window": 0})
    for i in range(5):                              # not running: nothing is consumed
        n.notify("fill", f"f{i}")
    w = n.workers["telegram"]
    assert (w.queued, w.stats.dropped) == (3, 2)
    assert n.status()["sinks"]["telegram"]["dropped"] == 2


async def test_min_severity_per_sink(clock, running) -> None:
    n, tg, hook = _notifier(clock, telegram={"min_severity": "critical"})
    await running(n)
    n.notify("fill", "info one")
    n.notify("fill", "crit one", severity="critical")
    await guarded(n.flush())
    assert tg.messages == ["crit one"] and hook.messages == ["info one", "crit one"]


async def test_notify_never_raises(clock) -> None:
    class Evil:
        def __str__(self) -> str:
            raise ValueError("no str for you")

    n, _, _ = _notifier(clock)
    n.notify("fill", "ok", weird=Evil())           # plain() calls str() → fails inside
    n.notify("fill", "bad severity", severity="loud")
    assert n.errors == 1
    assert n.workers["telegram"].queued == 1
    assert n.workers["telegram"]._queue[0].severity == "warning"


async def test_notify_from_another_thread(clock, running) -> None:
    n, tg, _ = _notifier(clock)
    await running(n)
    t = threading.Thread(target=n.notify, args=("fill", "from a thread"))
    t.start()
    t.join()
    await until(n, "telegram", lambda s: s.delivered == 1)
    assert tg.messages == ["from a thread"]


async def test_disabled_alerts_do_nothing(clock) -> None:
    n, _tg, _ = _notifier(clock, enabled=False)
    n.notify("fill", "x")
    assert n.workers == {} and n.status()["sinks"]["telegram"] == {"enabled": False}


async def test_latency_percentiles(clock, running) -> None:
    n, tg, _ = _notifier(clock, telegram={"dedup_window": 0, "max_per_minute": 0})
    tg.gate = asyncio.Event()
    await running(n)
    for i in range(50):
        n.notify("fill", f"early{i}")
    await until(n, "telegram", lambda s: tg.attempts == 1)
    clock.advance(1)
    for i in range(50):
        n.notify("fill", f"late{i}")
    clock.advance(0.5)
    tg.gate.set()
    await guarded(n.flush())
    lat = n.status()["sinks"]["telegram"]["latency_ms"]
    assert lat == {"n": 100, "p50": 500.0, "p99": 1500.0, "max": 1500.0}


async def test_dashboard_subscribe_recent_and_unsubscribe(clock, running) -> None:
    n, _, _ = _notifier(clock, dashboard={"history": 3, "subscriber_queue": 2})
    a, b = n.dashboard.subscribe(), n.dashboard.subscribe()
    await running(n)
    for i in range(4):
        n.notify("surge_candidate", f"s{i}")
    await guarded(n.flush())
    assert [x.message for x in n.dashboard.recent(10)] == ["s1", "s2", "s3"]
    assert [x.message for x in n.dashboard.recent(1)] == ["s3"]
    assert [x.message for x in a.drain()] == ["s2", "s3"]      # slow page drops its oldest
    assert a.stats.dropped == 2
    n.dashboard.unsubscribe(b)
    assert n.dashboard.subscribers == 1 and b.closed
    assert n.status()["dashboard_subscribers"] == 1
    d = n.dashboard.recent(1)[0].to_dict()
    assert d["kind"] == "surge_candidate" and d["ts"].startswith("2026-01-01T00:00:00")


async def test_run_opens_and_closes_sinks(clock) -> None:
    n, tg, _ = _notifier(clock)
    task = asyncio.create_task(n.run())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert tg.opened and n.status()["running"]
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    assert tg.closed and not n.running


async def test_drain_reports_what_could_not_go_out(clock, running) -> None:
    n, tg, hook = _notifier(clock)
    tg.gate = asyncio.Event()                      # never released: telegram stays busy
    await running(n)
    n.notify("daemon_started", "stopping soon")
    await until(n, "webhook", lambda s: s.delivered == 1)
    assert await n.drain(0.01) is False            # bounded wait, result does not depend on it
    tg.gate.set()
    assert await n.drain(10) is True
    assert tg.messages == hook.messages == ["stopping soon"]
