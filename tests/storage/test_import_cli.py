"""OHLCV import validation (row numbers, nothing imported unless --skip-bad) and the
``jts db`` / ``jts data`` sub-apps, run in-process with Typer's runner."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from jts.errors import DataError
from jts.storage.cli import build_data_app, build_db_app
from jts.storage.importer import load_ohlcv

runner = CliRunner()
HEADER = "timestamp,open,high,low,close,volume\n"


def write(tmp_path: Path, name: str, body: str, header: str = HEADER) -> Path:
    p = tmp_path / name
    p.write_text(header + body)
    return p


def test_naive_timestamps_are_kst_and_offsets_respected(tmp_path: Path) -> None:
    p = write(tmp_path, "005930.csv", "2024-01-02 09:00:00,1,2,0.5,1.5,10\n"
                                      "2024-01-02T00:01:00Z,1,2,0.5,1.5,10\n"
                                      "2024-01-02T09:02:00+09:00,1,2,0.5,1.5,10\n")
    r = load_ohlcv(p)
    t0 = 1_704_153_600 * 10**9
    assert r.frame["ts_ns"].tolist() == [t0, t0 + 60 * 10**9, t0 + 120 * 10**9]
    assert set(r.frame["symbol"]) == {"005930"}
    assert r.frame["value"].tolist() == [15.0] * 3


def test_bad_rows_are_reported_with_line_numbers(tmp_path: Path) -> None:
    p = write(tmp_path, "x.csv", "2024-01-02 09:00:00,1,2,0.5,1.5,10\n"       # line 2 ok
                                 "yesterday,1,2,0.5,1.5,10\n"                  # 3
                                 "2024-01-02 09:01:00,-1,2,0.5,1.5,10\n"       # 4
                                 "2024-01-02 09:02:00,1,2,0.5,1.5,-3\n"        # 5
                                 "2024-01-02 09:00:00,1,2,0.5,1.5,10\n"        # 6 duplicate
                                 "2024-01-02 09:05:00,1,2,0.5,1.5,10\n"        # 7 ok
                                 "2024-01-02 09:04:00,1,2,0.5,1.5,10\n"        # 8 out of order
                                 "2024-01-02 09:06:00,1,abc,0.5,1.5,10\n")     # 9
    with pytest.raises(DataError) as info:
        load_ohlcv(p)
    msg = str(info.value)
    assert "6 bad row(s), nothing imported" in msg
    for line, why in [(3, "timestamp: cannot parse 'yesterday'"), (4, "open: negative"),
                      (5, "volume: negative"), (6, "duplicated timestamp"),
                      (8, "out of order"), (9, "high: not a number 'abc'")]:
        assert f"x.csv:{line}: {why}" in msg
    r = load_ohlcv(p, skip_bad=True)
    assert r.rows == 2 and len(r.bad) == 6


def test_missing_columns(tmp_path: Path) -> None:
    p = write(tmp_path, "x.csv", "2024-01-02,1,2\n", header="timestamp,open,close\n")
    with pytest.raises(DataError, match=r"missing column.*high, low, volume"):
        load_ohlcv(p)


def test_cli_import_list_export(tmp_path: Path, chdb_url: str, sym: str) -> None:
    p = write(tmp_path, f"{sym}.csv", "".join(
        f"2024-01-02 09:{m:02d}:00,{m},{m + 1},{m},{m + 0.5},10\n" for m in range(30)))
    app = build_data_app()
    res = runner.invoke(app, ["import", str(p), "--timeseries", chdb_url])
    assert res.exit_code == 0, res.output
    assert "imported 30 1m bars" in res.output
    res = runner.invoke(app, ["list", "--timeseries", chdb_url])
    assert res.exit_code == 0 and sym in res.output and " 30" in res.output
    out = tmp_path / "out.parquet"
    res = runner.invoke(app, ["export", sym, str(out), "--timeframe", "5m",
                              "--timeseries", chdb_url])
    assert res.exit_code == 0, res.output
    frame = pd.read_parquet(out)
    assert len(frame) == 6 and frame["volume"].tolist() == [50.0] * 6


def test_cli_import_bad_file_imports_nothing(tmp_path: Path, chdb_url: str, sym: str) -> None:
    p = write(tmp_path, f"{sym}.csv", "2024-01-02 09:00:00,1,2,0.5,1.5,10\nbad,1,2,1,1,1\n")
    app = build_data_app()
    res = runner.invoke(app, ["import", str(p), "--timeseries", chdb_url])
    assert res.exit_code == 1
    assert f"{sym}.csv:3: timestamp: cannot parse 'bad'" in res.output
    res = runner.invoke(app, ["list", "--timeseries", chdb_url])
    assert sym not in res.output
    res = runner.invoke(app, ["import", str(p), "--skip-bad", "--timeseries", chdb_url])
    assert res.exit_code == 0 and "1 bad rows skipped" in res.output


def test_cli_db_migrate_status_verify(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/l.sqlite3"
    app = build_db_app()
    res = runner.invoke(app, ["migrate", "--ledger", url])
    assert res.exit_code == 0 and "schema version 1" in res.output
    assert runner.invoke(app, ["migrate", "--ledger", url]).exit_code == 0
    res = runner.invoke(app, ["status", "--ledger", url])
    assert res.exit_code == 0 and "open orders: 0" in res.output
    res = runner.invoke(app, ["verify", "--ledger", url])
    assert res.exit_code == 0 and "OK" in res.output


def test_cli_db_bad_url_is_one_line(tmp_path: Path) -> None:
    res = runner.invoke(build_db_app(), ["status", "--ledger", "postgresql://u:pw@127.0.0.1:1/x"])
    assert res.exit_code == 1
    assert "error: ledger store postgresql://u:***@127.0.0.1:1/x: cannot connect" in res.output
    assert "Traceback" not in res.output and "pw@" not in res.output
