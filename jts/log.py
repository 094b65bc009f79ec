"""Logging: structlog events → one JSON object per line in a size-rotated file, readable
console output in the foreground, secrets redacted everywhere.

The stdlib loggers of aiohttp, asyncpg, ccxt and rpyc go through the same processor chain
(structlog's ``ProcessorFormatter``), so their lines are JSON and redacted too.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import structlog

from jts.errors import ConfigError

_secrets: set[str] = set()
_SECRET_KEY = re.compile(r"(secret|password|passwd|token|app_?key|api_?key|authorization|"
                         r"approval_?key|private)", re.I)
_URL_PW = re.compile(r"(://[^:/@\s]+):[^@\s]*@")
REDACTED = "***"
FOREIGN = ("aiohttp", "asyncpg", "ccxt", "rpyc", "asyncio", "redis", "pymongo",
           "clickhouse_connect")


def register_secret(value: str) -> None:
    """Make ``value`` redacted wherever it appears in any later log line."""
    if value and len(value) >= 4:
        _secrets.add(value)


def redact_text(text: str) -> str:
    for s in _secrets:
        if s in text:
            text = text.replace(s, REDACTED)
    return _URL_PW.sub(r"\1:" + REDACTED + "@", text)


def _redact_value(key: str, value: Any) -> Any:
    if _SECRET_KEY.search(key) and not key.endswith("_env") and value not in (None, ""):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(key, v) for v in value]
    return value


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask secret-named fields and any registered secret value."""
    for k in list(event_dict):
        if k == "_record" or k == "_from_structlog":
            continue
        event_dict[k] = _redact_value(k, event_dict[k])
    return event_dict


_shared: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
    structlog.processors.StackInfoRenderer(),
    structlog.processors.format_exc_info,
    redact,
]


def setup_logging(*, level: str = "info", log_file: Path | None = None,
                  max_bytes: int = 20_000_000, backups: int = 5, console: bool = True) -> None:
    """Configure structlog and the stdlib root logger. Raises ConfigError when the log
    directory cannot be created or written."""
    handlers: list[logging.Handler] = []
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            fh = logging.handlers.RotatingFileHandler(log_file, maxBytes=max_bytes,
                                                      backupCount=backups, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"log directory is not writable: {exc.strerror or exc}",
                              file=str(log_file.parent)) from None
        fh.setFormatter(structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        structlog.processors.JSONRenderer(ensure_ascii=False)]))
        handlers.append(fh)
    if console:
        ch = logging.StreamHandler(sys.stderr)
        ch.setFormatter(structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]))
        handlers.append(ch)
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level.upper())
    for name in FOREIGN:
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))
    structlog.configure(
        processors=[*_shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,   # loggers bound at import must follow reconfiguration
    )


def flush_logging() -> None:
    for h in logging.getLogger().handlers:
        h.flush()
