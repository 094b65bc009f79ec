"""OHLCV file import/export for the time-series store: strict validation with row numbers.

Accepted input: CSV (header ``timestamp,open,high,low,close,volume`` plus optional ``value``
and ``symbol``) or Parquet with the same columns. Timestamps are ISO 8601 or
``YYYY-MM-DD HH:MM:SS``; without an offset they are KST. Rejected rows: unparseable
timestamps or numbers, negative prices or volumes, high below low, duplicated timestamps,
rows out of time order. Unless ``skip_bad``, one bad row means nothing is imported. CSV row
numbers are file line numbers (the header is line 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from jts.errors import DataError

REQUIRED = ("timestamp", "open", "high", "low", "close", "volume")
PRICES = ("open", "high", "low", "close")
_OFFSET = r"(?:Z|[+-]\d{2}:?\d{2})$"


@dataclass
class ImportResult:
    frame: pd.DataFrame                       # symbol, timeframe, ts_ns, open..value
    rows: int
    bad: list[str] = field(default_factory=list)


def _read(path: Path) -> tuple[pd.DataFrame, int]:
    """The raw table (all text for CSV) and the line number of its first data row."""
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path), 1
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True), 2
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except Exception as exc:
        raise DataError(f"{path}: cannot read: {type(exc).__name__}: {exc}") from None


def _timestamps(col: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(col):
        ts = col if getattr(col.dt, "tz", None) is not None else col.dt.tz_localize("Asia/Seoul")
        return ts.dt.tz_convert("UTC")
    text = col.astype(str).str.strip()
    aware = text.str.contains(_OFFSET, regex=True)
    out = pd.Series(pd.NaT, index=col.index, dtype="datetime64[ns, UTC]")
    if aware.any():
        out[aware] = pd.to_datetime(text[aware], utc=True, errors="coerce", format="ISO8601")
    if (~aware).any():
        naive = pd.to_datetime(text[~aware], errors="coerce", format="ISO8601")
        out[~aware] = naive.dt.tz_localize("Asia/Seoul").dt.tz_convert("UTC")
    return out


def load_ohlcv(path: Path, *, symbol: str | None = None, timeframe: str = "1m",
               skip_bad: bool = False, max_report: int = 50) -> ImportResult:
    """Read and validate ``path``; raise DataError listing bad rows unless ``skip_bad``."""
    if timeframe not in ("1m", "1d"):
        raise DataError(f"{path}: timeframe must be 1m or 1d, got {timeframe!r}")
    raw, first_line = _read(path)
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        raise DataError(f"{path}: missing column(s): {', '.join(missing)} "
                        f"(header must include {','.join(REQUIRED)})")
    if "symbol" not in raw.columns and not symbol:
        symbol = path.stem
    lines = np.arange(len(raw)) + first_line
    problems: dict[int, str] = {}

    def flag(mask: np.ndarray | pd.Series, why: pd.Series | str) -> None:
        for i in np.flatnonzero(np.asarray(mask)):
            if i not in problems:
                problems[int(i)] = why if isinstance(why, str) else str(why.iloc[i])

    ts = _timestamps(raw["timestamp"])
    flag(ts.isna(), raw["timestamp"].astype(str).map(lambda v: f"timestamp: cannot parse {v!r}"))
    nums: dict[str, pd.Series] = {}
    for c in (*PRICES, "volume", "value"):
        if c not in raw.columns:
            continue
        nums[c] = pd.to_numeric(raw[c], errors="coerce").astype(np.float64)
        flag(nums[c].isna(), raw[c].astype(str).map(lambda v, c=c: f"{c}: not a number {v!r}"))
        flag(nums[c] < 0, nums[c].map(lambda v, c=c: f"{c}: negative value {v}"))
    flag(nums["high"] < nums["low"], "high is below low")
    sym = raw["symbol"].astype(str).str.strip() if "symbol" in raw.columns \
        else pd.Series(symbol, index=raw.index)
    ts_ns = ts.astype("int64").where(ts.notna(), np.iinfo(np.int64).min)
    key = pd.DataFrame({"s": sym, "t": ts_ns})
    dup = key.duplicated(keep="first") & ts.notna()
    flag(dup, "duplicated timestamp")
    prev_max = key.groupby("s")["t"].cummax().groupby(key["s"]).shift(1)
    flag((ts_ns < prev_max) & ts.notna() & ~dup, "out of order (earlier than a previous row)")
    bad = [f"{path}:{lines[i]}: {why}" for i, why in sorted(problems.items())]
    if bad and not skip_bad:
        shown = "\n  ".join(bad[:max_report])
        more = f"\n  … and {len(bad) - max_report} more" if len(bad) > max_report else ""
        raise DataError(f"{path}: {len(bad)} bad row(s), nothing imported "
                        f"(use --skip-bad to import the good rows):\n  {shown}{more}")
    good = np.ones(len(raw), bool)
    good[list(problems)] = False
    close = nums["close"][good]
    frame = pd.DataFrame({
        "symbol": sym[good].to_numpy(), "timeframe": timeframe,
        "ts_ns": ts_ns[good].to_numpy(np.int64),
        **{c: nums[c][good].to_numpy() for c in (*PRICES, "volume")},
        "value": (nums["value"][good] if "value" in nums else close * nums["volume"][good])
        .to_numpy()})
    return ImportResult(frame, int(good.sum()), bad)


def export_frame(frame: pd.DataFrame, path: Path) -> int:
    """Write a long bar frame as CSV (KST ISO timestamps) or Parquet, by suffix."""
    out = frame.copy()
    out.insert(0, "timestamp", pd.to_datetime(out.pop("ts_ns"), unit="ns", utc=True)
               .dt.tz_convert("Asia/Seoul"))
    if path.suffix.lower() in (".parquet", ".pq"):
        out.to_parquet(path, index=False)
    else:
        out["timestamp"] = out["timestamp"].map(lambda t: t.isoformat())
        out.to_csv(path, index=False)
    return len(out)
