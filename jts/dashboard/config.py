"""The ``[dashboard]`` table of jts.toml."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec


class DashboardConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    enabled: bool = True
    host: str = "127.0.0.1"            # loopback by default; see docs/dashboard.md for TLS
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8765
    password_hash: str = ""            # set by `jts dashboard passwd` (or JTS_DASHBOARD_PASSWORD)
    username: str = "admin"
    session_ttl: Annotated[float, msgspec.Meta(gt=0)] = 43_200.0   # seconds
    language: Literal["ko", "en"] = "ko"
    tls_cert: str = ""
    tls_key: str = ""
    # "auto": Secure cookies when TLS is on here; true when a TLS proxy sits in front
    secure_cookies: Literal["auto", "true", "false"] = "auto"
    push_interval: Annotated[float, msgspec.Meta(ge=0.02, le=10)] = 0.25   # s between updates
    login_attempts_per_minute: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 5
    api_rate: Annotated[float, msgspec.Meta(gt=0)] = 50.0        # requests/s per user and IP
    api_burst: Annotated[int, msgspec.Meta(ge=1)] = 200
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024, le=16_777_216)] = 262_144
    # unsent bytes a WebSocket client may fall behind before it is closed (it reconnects)
    ws_backlog_bytes: Annotated[int, msgspec.Meta(ge=65_536)] = 4_000_000
    # unsent bytes after which a client gets no more deltas, then one resync snapshot once
    # it has drained; closed (it reconnects) if still behind after ws_behind_timeout seconds
    ws_behind_bytes: Annotated[int, msgspec.Meta(ge=4096)] = 262_144
    ws_behind_timeout: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    max_ws_clients: Annotated[int, msgspec.Meta(ge=1)] = 5000
