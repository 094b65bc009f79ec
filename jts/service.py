"""The systemd unit: render ``config/jts.service`` with this installation's paths and
write it to the user or system unit directory."""

from __future__ import annotations

import sys
from pathlib import Path

from jts.config import Config
from jts.errors import ConfigError


def _template() -> str:
    path = Path(__file__).resolve().parent.parent / "config" / "jts.service"
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"unit template not found ({exc.strerror}); install JTS from its "
                          "source tree with `pip install -e .`", file=str(path)) from None


def render_unit(cfg: Config, *, system: bool) -> str:
    config = Path(cfg.source) if cfg.source else Path.cwd() / "jts.toml"
    values = {
        "python": sys.executable,
        "config": str(config.resolve()),
        "workdir": str(cfg.base_dir),
        "state_dir": str(cfg.state_dir),
        "stop_timeout": str(int(cfg.daemon.stop_timeout) + 15),
        "wanted_by": "multi-user.target" if system else "default.target",
    }
    text = _template()
    for k, v in values.items():
        text = text.replace("{" + k + "}", v)
    if not system:
        # user units cannot use every sandboxing option without user namespaces; keep the
        # ones that work unprivileged
        text = text.replace("ProtectHome=read-only\n", "")
    return text


def install_unit(text: str, *, system: bool, dest: Path | None = None) -> Path:
    if dest is None:
        dest = (Path("/etc/systemd/system/jts.service") if system
                else Path.home() / ".config/systemd/user/jts.service")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text, encoding="utf-8")
    return dest
