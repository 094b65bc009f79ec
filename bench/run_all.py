"""Run every benchmark in bench/ and write bench/RESULTS.md.

    .venv/bin/python bench/run_all.py [--only NAME ...] [--timeout SECONDS]

Each bench script prints markdown tables; this runner records them under one heading per
script, after a description of the machine (CPU model, cores, memory, load, versions), so
every figure in RESULTS.md was measured in the same run on the machine it names.
Benchmarks are never part of the test suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["bench_indicators", "bench_backtest", "bench_storage", "bench_surge", "bench_pipeline",
         "bench_ratelimit", "bench_alerts", "bench_dashboard", "sim_market"]


def machine() -> str:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"- date: {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}\n"
            f"- CPU: {cpu}, {os.cpu_count()} cores; memory {mem}\n"
            f"- load average before the run: {load}\n"
            f"- Python {platform.python_version()} on {platform.platform()}\n")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = ap.parse_args()
    names = [n for n in ORDER if (HERE / f"{n}.py").exists()]
    names += sorted(p.stem for p in HERE.glob("bench_*.py") if p.stem not in names)
    if args.only:
        names = [n for n in names if n in args.only]
    parts = ["# Benchmark results\n", "Produced by `.venv/bin/python bench/run_all.py`.\n",
             "## Machine\n", machine()]
    for name in names:
        print(f"== {name}", flush=True)
        t0 = time.monotonic()
        try:
            r = subprocess.run([sys.executable, str(HERE / f"{name}.py")], cwd=HERE.parent,
                               capture_output=True, text=True, timeout=args.timeout)
            body, code = r.stdout.strip(), r.returncode
            if code:
                body += f"\n\n(exit {code})\n```\n{r.stderr.strip()[-2000:]}\n```"
        except subprocess.TimeoutExpired:
            body, code = f"(timed out after {args.timeout:.0f} s)", -1
        parts.append(f"\n## {name} ({time.monotonic() - t0:.0f} s)\n\n{body}\n")
        print(body, flush=True)
    args.out.write_text("\n".join(parts), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
