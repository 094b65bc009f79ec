"""Human-readable rendering for the CLI: ``jts status`` tables and ``jts logs`` lines."""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LEVELS = ("debug", "info", "warning", "error", "critical")
_FIRST = ("ts", "level", "event", "logger")


def render_status(st: dict[str, Any]) -> str:
    pnl = st.get("pnl", {})
    orders = st.get("orders", {})
    out = [
        f"jts running  pid {st['pid']}  up {_dur(st.get('uptime_s', 0))}  mode {st['mode']}  "
        f"state {st.get('trading_state', '?')}",
        f"market time  {st.get('market_time', '')}",
        f"ticks {st['ticks']}  bars {st.get('bars', 0)}  fills {st['fills']}  "
        f"closed trades {st.get('closed_trades', 0)}",
        f"P&L today    realized {pnl.get('realized')}  unrealized {pnl.get('unrealized')}  "
        f"total {pnl.get('total')}  fees {pnl.get('fees')}  equity {pnl.get('equity')}",
        f"orders       open {orders.get('open')}  submitted {orders.get('submitted')}  "
        f"risk-rejected {orders.get('risk_rejected')}  broker-rejected "
        f"{orders.get('broker_rejected')}",
        "feeds:",
    ]
    for f in st.get("feeds", []):
        age = f.get("last_tick_age_s")
        out.append(f"  {f['name']:<10} ticks {f['ticks']:<10} last tick "
                   f"{'-' if age is None else f'{age:.1f}s ago'}"
                   f"{'  STALE' if f.get('stale') else ''}")
    out.append("brokers:")
    for b in st.get("brokers", []):
        out.append(f"  {b['name']:<10} account {b['account']}  "
                   f"{'connected' if b.get('connected') else 'DISCONNECTED'}")
    out.append("strategies:")
    for s in st.get("strategies", []):
        flag = "on " if s.get("enabled") else "OFF"
        err = f"  error: {s['error']}" if s.get("error") else ""
        out.append(f"  [{flag}] {s['name']:<20} {s.get('timeframe', '')} symbols "
                   f"{s.get('symbols')}  entries {s.get('entries')}  exits {s.get('exits')}{err}")
    positions = st.get("positions", [])
    out.append(f"positions ({len(positions)}):")
    for p in positions[:30]:
        out.append(f"  {p['symbol']:<8} qty {p['quantity']:>8}  avg {p['avg_price']:>10}  "
                   f"last {p.get('last')}  unrealized {p.get('unrealized')}")
    if len(positions) > 30:
        out.append(f"  … {len(positions) - 30} more (jts status --json)")
    return "\n".join(out)


def _dur(seconds: float) -> str:
    s = int(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def render_log_line(line: str, *, min_level: str | None = None, grep: str | None = None,
                    raw: bool = False) -> str | None:
    line = line.rstrip("\n")
    if not line:
        return None
    if grep and grep not in line:
        return None
    try:
        ev = json.loads(line)
    except json.JSONDecodeError:
        return None if min_level else line
    if not isinstance(ev, dict):
        return line
    lvl = str(ev.get("level", "info")).lower()
    if min_level and LEVELS.index(lvl if lvl in LEVELS else "info") < LEVELS.index(
            min_level.lower()):
        return None
    if raw:
        return line
    ts = str(ev.get("ts", ""))[:23].replace("T", " ")
    rest = " ".join(f"{k}={_fmt(v)}" for k, v in ev.items() if k not in _FIRST)
    return f"{ts} {lvl.upper():<8} {ev.get('event', '')} {rest}".rstrip()


def _fmt(v: Any) -> str:
    if isinstance(v, str):
        return v if v and " " not in v else json.dumps(v, ensure_ascii=False)
    return json.dumps(v, ensure_ascii=False)


def follow_log(path: Path, last: int, follow: bool, poll: float = 0.25) -> Iterator[str]:
    """The last ``last`` lines of ``path``, then (with ``follow``) new lines as they come,
    surviving rotation (the file replaced or truncated)."""
    pos = 0
    inode = None
    if path.exists():
        with open(path, encoding="utf-8", errors="replace") as fh:
            yield from deque(fh, maxlen=last) if last else ()
            pos = fh.tell()
            inode = os.fstat(fh.fileno()).st_ino
    if not follow:
        return
    while True:
        try:
            st = path.stat()
        except FileNotFoundError:
            time.sleep(poll)
            continue
        if st.st_ino != inode or st.st_size < pos:
            inode, pos = st.st_ino, 0
        if st.st_size > pos:
            with open(path, encoding="utf-8", errors="replace") as fh:
                fh.seek(pos)
                for line in fh:
                    if not line.endswith("\n"):
                        break
                    pos += len(line.encode("utf-8"))
                    yield line
        time.sleep(poll)
