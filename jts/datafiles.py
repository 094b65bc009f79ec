"""Reading the TOML data files JTS ships in ``jts/data/`` (holidays, tax rates, symbols) or
that a user substitutes for them, with errors that name the file."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any

from jts.errors import ConfigError


def load_data_toml(bundled: str, path: str | None = None, *,
                   what: str) -> tuple[dict[str, Any], str]:
    """Parse ``path`` (or the bundled ``jts/data/<bundled>``); returns the document and the
    name to use in error messages."""
    name = path or f"jts/data/{bundled}"
    try:
        if path is None:
            raw = resources.files("jts").joinpath(f"data/{bundled}").read_text("utf-8")
        else:
            with open(path, encoding="utf-8") as fh:
                raw = fh.read()
        return tomllib.loads(raw), name
    except OSError as exc:
        raise ConfigError(f"cannot read {what} file: {exc.strerror}", file=name) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(exc), file=name) from exc
