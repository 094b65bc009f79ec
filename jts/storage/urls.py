"""Storage URLs: parsing, scheme checks and password redaction for error messages.

Every store is chosen by one URL (``sqlite:///path``, ``postgresql://…``, ``chdb:///dir``,
``clickhouse://host:8123/db``, ``mongodb://…``, ``redis://…``, ``memory://``). Errors name the
store and the URL with any password replaced by ``***``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import SplitResult, urlsplit, urlunsplit

import msgspec

from jts.errors import StorageError


class StorageUrls(msgspec.Struct, frozen=True):
    """The ``[storage]`` table of ``jts.toml``; defaults are the embedded stores."""

    ledger: str = "sqlite:///var/ledger.sqlite3"
    timeseries: str = "chdb:///var/timeseries"
    documents: str = "sqlite:///var/documents.sqlite3"
    cache: str = "memory://"


def redact(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{user}:***@{host}"
    return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def scheme_of(url: str, store: str, allowed: tuple[str, ...]) -> str:
    """The URL's scheme, checked against ``allowed`` (else a StorageError naming the store)."""
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError as exc:
        raise StorageError(f"{store} store: invalid URL {redact(url)!r}: {exc}") from None
    if scheme == "postgres":
        scheme = "postgresql"
    if scheme not in allowed:
        raise StorageError(
            f"{store} store: unsupported URL {redact(url)!r} "
            f"(expected one of: {', '.join(s + '://' for s in allowed)})")
    return scheme


def file_path(url: str, store: str) -> Path:
    """The filesystem path of a ``sqlite:///path`` or ``chdb:///dir`` URL.

    ``sqlite:///rel/path`` is relative to the working directory and ``sqlite:////abs/path``
    absolute (SQLAlchemy's convention); ``sqlite:///:memory:`` is an in-memory database.
    """
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise StorageError(f"{store} store: {redact(url)!r}: a file URL takes no host "
                           f"(write {parts.scheme}:///relative or {parts.scheme}:////absolute)")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if not path:
        raise StorageError(f"{store} store: {redact(url)!r} names no file")
    return Path(path)
