"""The daemon configuration: ``jts.toml`` → frozen, typed :class:`Config`.

Decoding is strict: unknown keys, wrong types, out-of-range values and missing files each
raise :class:`jts.errors.ConfigError` naming the file, the key path and (where it can be
found) the line. Secrets are never inline: a ``*_env`` key names the environment variable
that holds the secret, and :func:`resolve_secret` reads it and registers the value with the
log redactor.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from brokers.kis.config import KisConfig
from jts.alerts.config import AlertsConfig
from jts.calendar import CalendarConfig
from jts.costs import CostModel, _default_venues
from jts.dashboard.config import DashboardConfig
from jts.errors import ConfigError
from jts.surge import SurgeConfig

Pos = Annotated[float, msgspec.Meta(gt=0)]
NonNeg = Annotated[float, msgspec.Meta(ge=0)]
PosInt = Annotated[int, msgspec.Meta(ge=1)]
Pct = Annotated[float, msgspec.Meta(ge=0, le=100)]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    pass


class DaemonConfig(_Section, frozen=True):
    mode: Literal["paper", "live"] = "paper"
    state_dir: str = "state"            # pid file, control socket, logs, embedded stores
    stop_timeout: Annotated[float, msgspec.Meta(gt=0, le=600)] = 15.0
    reconcile: Literal["halt", "adopt"] = "halt"   # broker/ledger mismatch at start
    watchdog: bool = True


class LogConfig(_Section, frozen=True):
    level: Literal["debug", "info", "warning", "error"] = "info"
    dir: str = ""                       # default: <state_dir>/logs
    max_bytes: Annotated[int, msgspec.Meta(ge=10_000)] = 20_000_000
    backups: Annotated[int, msgspec.Meta(ge=0, le=100)] = 5


class MarketConfig(_Section, frozen=True):
    feed: Literal["sim", "kis"] = "sim"
    watchlist: list[str] = []           # symbols a real feed streams (sim: generated)
    symbols: Annotated[int, msgspec.Meta(ge=1, le=2000)] = 60
    seed: int = 42
    # market seconds per wall second
    speed: Annotated[float, msgspec.Meta(gt=0, le=100_000)] = 60.0
    tick_interval: Annotated[float, msgspec.Meta(ge=0.01, le=60)] = 0.25  # wall s between batches
    follow_session: bool = False
    history_bars: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 120
    stale_after: Pos = 30.0             # wall seconds without ticks → feed stale
    record_ticks: bool = True           # write ticks to the time-series store
    # ticks per insert and wall seconds between inserts: fewer, larger inserts cost the
    # embedded ClickHouse engine less (parts, merges) and the event loop fewer stalls
    record_batch: Annotated[int, msgspec.Meta(ge=1_000, le=5_000_000)] = 250_000
    record_flush_s: Annotated[float, msgspec.Meta(ge=0.1, le=60)] = 5.0


class PaperConfig(_Section, frozen=True):
    account: str = "paper-1"
    initial_cash: Pos = 100_000_000
    allow_short: bool = False


class StrategiesConfig(_Section, frozen=True):
    dir: str = "strategies"
    enabled: list[str] = []             # names or file stems; empty = every *.toml in dir


class RiskConfig(_Section, frozen=True):
    max_position_notional: Pos = 10_000_000
    max_total_exposure: Pos = 80_000_000
    max_open_positions: PosInt = 20
    max_orders_per_minute: PosInt = 120
    max_daily_loss: Pos = 3_000_000
    price_band_pct: Annotated[float, msgspec.Meta(gt=0, le=30)] = 5.0


class OrdersConfig(_Section, frozen=True):
    unknown_deadline: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 60.0  # s, then HALT
    limit_ttl: Annotated[float, msgspec.Meta(ge=0)] = 0.0   # s a resting order lives; 0 = day
    housekeeping_interval: Annotated[float, msgspec.Meta(gt=0, le=60)] = 1.0
    # the order journal's directory (relative: under state_dir); every order is written
    # there, durably, before it is sent (docs/architecture.md "Order journal")
    journal: Annotated[str, msgspec.Meta(min_length=1)] = "orders.wal"
    journal_sync: bool = True           # fdatasync each append; false: survives a process
                                        # crash but not a power cut


class StorageConfig(_Section, frozen=True):
    # file URLs with a relative path (sqlite:///x, chdb:///x) live under state_dir
    ledger: str = "sqlite:///ledger.sqlite3"
    timeseries: str = "chdb:///timeseries"
    documents: str = "sqlite:///documents.sqlite3"
    cache: str = "memory://"


class ControlConfig(_Section, frozen=True):
    socket: str = ""                    # default: <state_dir>/jts.sock


class BrokersConfig(_Section, frozen=True):
    kis: KisConfig | None = None        # [brokers.kis.accounts.NAME] — see config/kis.example.toml


class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    daemon: DaemonConfig = DaemonConfig()
    log: LogConfig = LogConfig()
    market: MarketConfig = MarketConfig()
    paper: PaperConfig = PaperConfig()
    costs: CostModel = msgspec.field(default_factory=CostModel)
    strategies: StrategiesConfig = StrategiesConfig()
    risk: RiskConfig = RiskConfig()
    orders: OrdersConfig = OrdersConfig()
    storage: StorageConfig = StorageConfig()
    calendar: CalendarConfig = msgspec.field(default_factory=CalendarConfig)
    control: ControlConfig = ControlConfig()
    dashboard: DashboardConfig = msgspec.field(default_factory=DashboardConfig)
    alerts: AlertsConfig = msgspec.field(default_factory=AlertsConfig)
    brokers: BrokersConfig = BrokersConfig()
    surge: SurgeConfig = msgspec.field(default_factory=SurgeConfig)
    # where the file was read from; relative paths in the file resolve against its directory
    source: str = ""

    @property
    def base_dir(self) -> Path:
        return Path(self.source).resolve().parent if self.source else Path.cwd()

    def path(self, value: str) -> Path:
        p = Path(os.path.expanduser(value))
        return p if p.is_absolute() else self.base_dir / p

    @property
    def state_dir(self) -> Path:
        return self.path(self.daemon.state_dir)

    @property
    def log_dir(self) -> Path:
        return self.path(self.log.dir) if self.log.dir else self.state_dir / "logs"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "jts.log"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "jts.pid"

    @property
    def socket_path(self) -> Path:
        if self.control.socket:
            return self.path(self.control.socket)
        return self.state_dir / "jts.sock"

    def storage_url(self, key: str) -> str:
        """The store URL for ``key`` with a relative file path made absolute under state_dir."""
        url: str = getattr(self.storage, key)
        scheme, _, rest = url.partition("://")
        if scheme in ("sqlite", "chdb") and rest.startswith("/") and not rest.startswith("//"):
            path = rest[1:]
            if path and path != ":memory:":
                return f"{scheme}:///{self.state_dir / path}"
        return url

    @property
    def journal_path(self) -> Path:
        """The order journal's directory: ``[orders] journal``, relative to state_dir."""
        p = Path(os.path.expanduser(self.orders.journal))
        return p if p.is_absolute() else self.state_dir / p

    @property
    def strategies_dir(self) -> Path:
        return self.path(self.strategies.dir)


_SECRET_WORDS = re.compile(r"(secret|password|passwd|token|app_?key|api_?key|private)", re.I)
_MSG = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$")
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<field>[^`]+)`")


def default_config_path() -> Path:
    env = os.environ.get("JTS_CONFIG")
    return Path(env) if env else Path("jts.toml")


def key_line(text: str, dotted: str) -> int | None:
    """Best-effort line number of ``dotted`` (``risk.max_open_positions``) in TOML ``text``."""
    parts = [p for p in re.split(r"\.|\[\d+\]", dotted) if p]
    if not parts:
        return None
    table: list[str] = []
    lines = text.splitlines()
    for i, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        m = re.match(r"^\[\[?\s*([^\]]+?)\s*\]\]?$", line)
        if m:
            table = [s.strip().strip('"') for s in m.group(1).split(".")]
            if table == parts:
                return i
            continue
        m = re.match(r'^("?)([A-Za-z0-9_\-.]+)\1\s*=', line)
        if m:
            full = table + [s.strip('"') for s in m.group(2).split(".")]
            if full == parts:
                return i
    return None


def decode_toml(text: str, type_: type[Any], *, file: str) -> Any:
    """Parse TOML ``text`` and convert it to ``type_`` with errors naming file, key and line."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line = int(m.group(1)) if m else None
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        col = f", column {m.group(2)}" if m else ""
        raise ConfigError(f"invalid TOML: {msg}{col}", file=file, line=line) from None
    return convert(raw, type_, file=file, text=text)


def convert(raw: dict[str, Any], type_: type[Any], *, file: str, text: str = "") -> Any:
    try:
        return msgspec.convert(raw, type_, strict=True)
    except msgspec.ValidationError as exc:
        raise _config_error(str(exc), file=file, text=text, type_=type_) from None


def _literal_values(type_: Any, dotted: str) -> tuple[Any, ...]:
    """The allowed values of the Literal field at ``dotted`` in struct ``type_``."""
    import typing

    t = type_
    for part in dotted.split("."):
        try:
            hints = typing.get_type_hints(t, include_extras=True)
        except TypeError:
            return ()
        t = hints.get(part)
        if t is None:
            return ()
        while typing.get_origin(t) is Annotated:
            t = typing.get_args(t)[0]
    return typing.get_args(t) if typing.get_origin(t) is Literal else ()


def _config_error(message: str, *, file: str, text: str,
                  type_: Any = None) -> ConfigError:
    m = _MSG.match(message)
    msg = m.group("msg") if m else message
    path = (m.group("path") or "").lstrip(".") if m else ""
    u = _UNKNOWN.match(msg)
    if u:
        field = u.group("field")
        path = f"{path}.{field}" if path else field
        if _SECRET_WORDS.search(field):
            msg = (f"unknown key; secrets are never written inline — name the environment "
                   f"variable instead ({field}_env = \"MY_VAR\")")
        else:
            msg = "unknown key"
    else:
        msg = msg[0].lower() + msg[1:] if msg else msg
        msg = msg.replace("`", "")
        msg = re.sub(r"invalid RFC3339 encoded (date|datetime|time)",
                     r"not a valid \1 (use YYYY-MM-DD)", msg)
        if msg.startswith("invalid enum value") and type_ is not None:
            allowed = _literal_values(type_, path)
            if allowed:
                msg += f" (expected one of {', '.join(repr(a) for a in allowed)})"
    line = key_line(text, path) if (text and path) else None
    return ConfigError(msg, file=file, key=path or None, line=line)


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate ``jts.toml``; a missing default file gives the built-in defaults."""
    explicit = path is not None or "JTS_CONFIG" in os.environ
    p = Path(path) if path is not None else default_config_path()
    if not p.exists():
        if explicit:
            raise ConfigError("config file not found", file=str(p))
        return Config()
    if p.is_dir():
        raise ConfigError("is a directory, expected a TOML file", file=str(p))
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", file=str(p)) from None
    cfg: Config = decode_toml(text, Config, file=str(p))
    if "source" in tomllib.loads(text):
        raise ConfigError("unknown key", file=str(p), key="source", line=key_line(text, "source"))
    _check_semantics(cfg, str(p), text)
    return msgspec.structs.replace(cfg, source=str(p.resolve()),
                                   costs=msgspec.structs.replace(
                                       cfg.costs, venues={**_default_venues(), **cfg.costs.venues}))


def _check_semantics(cfg: Config, file: str, text: str) -> None:
    for key in ("ledger", "timeseries", "documents", "cache"):
        url = getattr(cfg.storage, key)
        if "://" not in url:
            raise ConfigError(f"not a store URL (scheme://…): {redact_url(url)!r}", file=file,
                              key=f"storage.{key}", line=key_line(text, f"storage.{key}"))
    if cfg.daemon.mode == "live" and cfg.brokers.kis is None:
        raise ConfigError("live mode needs a broker: add [brokers.kis.accounts.NAME] "
                          "(see config/kis.example.toml)", file=file, key="daemon.mode",
                          line=key_line(text, "daemon.mode"))
    if cfg.risk.max_position_notional > cfg.risk.max_total_exposure:
        raise ConfigError("must not exceed risk.max_total_exposure", file=file,
                          key="risk.max_position_notional",
                          line=key_line(text, "risk.max_position_notional"))


def redact_url(url: str) -> str:
    """``postgresql://u:secret@h/db`` → ``postgresql://u:***@h/db``."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def resolve_secret(env_name: str, *, key: str, file: str = "") -> str:
    """The secret held in environment variable ``env_name``; registered for redaction."""
    value = os.environ.get(env_name)
    if not value:
        raise ConfigError(f"environment variable {env_name} is not set (it holds this secret)",
                          file=file or None, key=key)
    from jts.log import register_secret

    register_secret(value)
    return value
