"""The local control endpoint: HTTP over a Unix socket in the state directory.

The socket file is created with mode 0600 inside a 0700 state directory, so only the
daemon's own user can reach it; that is the authentication. ``jts status`` and ``jts stop``
(and later ``jts kill``) are clients of this endpoint, never readers of files alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from jts.errors import DaemonError, JTSError

StatusFn = Callable[[], dict[str, Any]]
ActionFn = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class ControlServer:
    def __init__(self, path: Path, status: StatusFn, actions: dict[str, ActionFn]) -> None:
        self.path = path
        self._status = status
        self._actions = actions
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/status", self._get_status)
        app.router.add_post("/{action}", self._post)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        if len(str(self.path)) > 100:
            raise DaemonError(f"control socket path is too long for a Unix socket: {self.path} "
                              "(set control.socket to a shorter path)")
        if self.path.exists():
            self.path.unlink()          # stale: we hold the pid lock, so nobody else owns it
        old = os.umask(0o177)
        try:
            await web.UnixSite(self._runner, str(self.path)).start()
        except OSError as exc:
            raise DaemonError(f"cannot listen on control socket {self.path}: {exc}") from None
        finally:
            os.umask(old)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self.path.unlink(missing_ok=True)

    async def _get_status(self, _: web.Request) -> web.Response:
        return web.json_response(self._status(), dumps=_dumps)

    async def _post(self, request: web.Request) -> web.Response:
        name = request.match_info["action"]
        fn = self._actions.get(name)
        if fn is None:
            return web.json_response({"error": f"unknown action {name!r}"}, status=404)
        try:
            body = await request.json() if request.can_read_body else {}
        except json.JSONDecodeError:
            return web.json_response({"error": "body is not JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "body must be a JSON object"}, status=400)
        try:
            result = await fn(body)
        except JTSError as exc:
            return web.json_response({"error": str(exc)}, status=409)
        return web.json_response(result, dumps=_dumps)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


async def call(path: Path, method: str, route: str, body: dict[str, Any] | None = None,
               timeout_s: float = 5.0) -> dict[str, Any]:
    """One request to the daemon's control socket; DaemonError if it is not reachable."""
    if not path.exists():  # noqa: ASYNC240 (one stat before connecting)
        raise DaemonError("not running (no control socket)")
    try:
        conn = aiohttp.UnixConnector(path=str(path))
        async with aiohttp.ClientSession(connector=conn,
                                         timeout=aiohttp.ClientTimeout(total=timeout_s)) as s:
            async with s.request(method, f"http://jts{route}", json=body) as r:
                data: dict[str, Any] = await r.json()
                if r.status >= 400:
                    raise DaemonError(str(data.get("error", f"HTTP {r.status}")))
                return data
    except (aiohttp.ClientConnectionError, TimeoutError, ConnectionRefusedError) as exc:
        raise DaemonError(f"control socket {path} does not answer: {exc or type(exc).__name__}"
                          ) from None
