"""The ready-made notify calls for daemon events: wording, keys, fields, once-a-day loss."""

from __future__ import annotations

from decimal import Decimal

from jts.alerts import Notifier
from jts.clock import FakeClock
from jts.risk import RiskDecision
from jts.types import Fill, OrderIntent, Side

from .conftest import RecordingSink, config


def _n(clock: FakeClock, **cfg: object) -> tuple[Notifier, RecordingSink]:
    sink = RecordingSink("webhook")
    return Notifier(config(**cfg), clock, sinks={"webhook": sink}), sink


def _queued(n: Notifier) -> list[tuple[str, str, str, str]]:
    return [(a.kind, a.severity, a.key, a.message) for a in n.workers["webhook"]._queue]


def test_fill_and_rejections(clock: FakeClock) -> None:
    n, _ = _n(clock)
    fill = Fill("paper", "p-1", "t-9", "c-1", "005930", Side.BUY, Decimal("10"),
                Decimal("71000"), Decimal("10"), Decimal("0"), clock.now_ns(), strategy="s1")
    n.on_fill(fill)
    n.on_order_rejected("c-2", "insufficient cash", symbol="000660")
    intent = OrderIntent("s1", "035420", Side.SELL, Decimal("3"), clock.now_ns())
    n.on_risk_rejection(intent, RiskDecision.reject("max_open_positions", "20 open"))
    n.on_risk_rejection(intent, RiskDecision.reject("max_open_positions", "20 open"))
    q = _queued(n)
    assert q[0] == ("fill", "info", "fill:paper:p-1:t-9", "005930 매수 10 @ 71000")
    assert q[1][:3] == ("order_rejected", "warning", "order_rejected:c-2")
    assert "insufficient cash" in q[1][3]
    assert q[2][2] == "risk_limit:max_open_positions:s1:035420"
    assert len(q) == 3                                     # the repeat was de-duplicated
    fields = n.workers["webhook"]._queue[0].fields
    assert fields["price"] == "71000" and fields["side"] == "buy"


def test_daily_loss_fires_once_per_day(clock: FakeClock) -> None:
    n, _ = _n(clock)
    assert not n.check_daily_loss(Decimal("-2000000"), day="2026-01-02", limit=3_000_000)
    assert n.check_daily_loss(Decimal("-2400000"), day="2026-01-02", limit=3_000_000)
    assert not n.check_daily_loss(Decimal("-2900000"), day="2026-01-02", limit=3_000_000)
    assert n.check_daily_loss(-2_500_000.0, day="2026-01-03", limit=3_000_000)
    kinds = [(k, s) for k, s, _, _ in _queued(n)]
    assert kinds == [("daily_loss", "critical")] * 2
    m, _ = _n(clock, daily_loss_threshold=100)
    assert m.check_daily_loss(Decimal("-100"), day="d", limit=3_000_000)


def test_feed_broker_surge_started(clock: FakeClock) -> None:
    n, _ = _n(clock, rules={"surge_candidate": {"sinks": ["webhook"]}})
    n.on_feed_stale("sim", stale=True, age_s=31.2)
    n.on_feed_stale("sim", stale=False)
    n.on_broker_connection("kis", connected=False, error="ws closed")
    n.on_broker_connection("kis", connected=True)
    n.on_surge("005930", 3.14159, change_pct=4.2)
    n.on_daemon_started(mode="paper", pid=42)
    n.on_daemon_started(mode="paper", pid=43, restarted=True)
    got = [(k, s, m) for k, s, _, m in _queued(n)]
    assert got == [
        ("feed_stale", "warning", "feed sim has sent no ticks for 31 s"),
        ("feed_stale", "info", "feed sim recovered"),
        ("broker_disconnected", "critical", "broker kis disconnected: ws closed"),
        ("broker_disconnected", "info", "broker kis reconnected"),
        ("surge_candidate", "info", "surge candidate 005930 (score 3.14)"),
        ("daemon_started", "info", "JTS daemon started (paper mode, pid 42)"),
        ("daemon_started", "warning", "JTS daemon restarted (paper mode, pid 43)"),
    ]
