"""`make bench`: the figures the project promises, measured on this machine, as one table.

Measured in a fresh clone of the current commit (so nothing of this checkout's data or Airflow
home is reused): install time, demo time and peak memory (RSS), test-suite time, DagBag parse
time. Targets come from the issues; a row says "over" when a target is missed. Timing lives
here, not in unit tests, so a slow CI machine never fails the suite.

Options: --skip-tests (the suite takes minutes), --keep (leave the clone for inspection).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]

PARSE_PROBE = """
import json, sys, time
from returnwatch import airflow_env
airflow_env.configure()
from airflow.dag_processing.dagbag import DagBag
started = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - started, "dags": len(bag.dags)}))
"""


def timed(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> tuple[float, float, int]:
    """Run ``cmd``; return (seconds, peak RSS in MB of its largest process, exit code)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is a running maximum: only a rise belongs to this command.
    return seconds, (peak_kb / 1024 if peak_kb > before else float("nan")), code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="returnwatch-bench-"))
    clone = workdir / "returnwatch"
    logs = PROJECT / "bench" / "out"
    logs.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "clone", "--quiet", str(PROJECT), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "RETURNWATCH", "VIRTUAL_ENV", "UV_"))}
    rows: list[tuple[str, str, str, str]] = []

    seconds, _, code = timed(["make", "install"], clone, env, logs / "install.log")
    rows.append(("install (uv sync from uv.lock, package cache warm)", f"{seconds:.1f} s", "—", _ok(code)))

    seconds, rss, code = timed(["make", "demo"], clone, env, logs / "demo.log")
    rows.append(("demo after install (make demo)", f"{seconds:.1f} s", "≤ 90 s", _verdict(code, seconds <= 90)))
    rows.append(("peak RSS of the demo (all tasks run in its one process)", f"{rss:.0f} MB", "≤ 500 MB",
                 _verdict(code, rss <= 500)))

    seconds, _, code = timed(["make", "demo"], clone, env, logs / "demo-again.log")
    rows.append(("demo again (nothing new to load)", f"{seconds:.1f} s", "—", _ok(code)))

    probe = subprocess.run([str(clone / ".venv/bin/python"), "-c", PARSE_PROBE, str(clone / "dags")],
                           cwd=clone, env=env, capture_output=True, text=True)
    parse = json.loads(probe.stdout.strip().splitlines()[-1]) if probe.returncode == 0 else {"seconds": float("nan"), "dags": 0}
    rows.append((f"DagBag parse ({parse['dags']} DAGs)", f"{parse['seconds']:.2f} s", "≤ 2 s",
                 _verdict(probe.returncode, parse["seconds"] <= 2)))

    if not args.skip_tests:
        seconds, _, code = timed(["make", "test"], clone, env, logs / "test.log")
        rows.append(("test suite (make test)", f"{seconds:.0f} s", "CI ≤ 90 min", _verdict(code, seconds <= 5400)))

    print_table(rows)
    print(f"\nlogs: {logs}   machine: {os.cpu_count()} cores")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if all(r[3] in {"ok", "—"} for r in rows) else 1


def _ok(code: int) -> str:
    return "ok" if code == 0 else f"FAILED (exit {code})"


def _verdict(code: int, within: bool) -> str:
    return _ok(code) if code else ("ok" if within else "over")


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    header = ("measure", "value", "target", "")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    line = "  ".join("-" * w for w in widths)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print(line)
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))


if __name__ == "__main__":
    sys.exit(main())
