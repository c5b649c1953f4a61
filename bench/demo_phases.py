"""Where ``make demo``'s time goes: wall-clock and CPU seconds by phase.

``run()`` returns rows {measure, value, target} for ``bench/run.py``'s table. It runs the demo
as ``make demo`` does (``returnwatch_replay.demo.run``, same days, same output) in a fresh
data folder and Airflow home, timing each phase from outside: the set-up (the libraries the
runs import, the rest of the wait for the Airflow metadata DB made in a child process
meanwhile, the DagBag), for each replayed day its source runs, its
``transform`` run and its ``monitor`` runs, then the summary. Nothing in the demo is changed;
before the clock starts, dbt's parse state is made for the scratch data folder, as ``make
install`` makes it for the project's (the demo after the install is what is measured).

CPU seconds are user + system of this process and its finished children: on a shared machine
the wall clock measures the neighbours too, so the load average is reported beside it. The
source lane (a second process for a day's source runs) is reaped at the end: its CPU is in
"other", its wall time in each day's "source runs".
Run alone: ``.venv/bin/python bench/demo_phases.py`` (prints the demo, then the table).
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

DEMO_TARGET_SECONDS = 90


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure() -> tuple[list[tuple[str, float, float]], Path]:
    """[(phase, wall seconds, CPU seconds)] in the order they ran, and the scratch folder the
    demo ran in (its data and Airflow home)."""
    scratch = Path(tempfile.mkdtemp(prefix="returnwatch-demo-phases-"))
    os.environ["RETURNWATCH_DATA_DIR"] = str(scratch / "data")
    os.environ["AIRFLOW_HOME"] = str(scratch / "airflow")
    # As `make install` does for the project's data folder: dbt's manifest and partial-parse
    # state for this one (dbt rejects the state made for another warehouse path), in a child
    # process so that this one has imported nothing when the clock starts.
    subprocess.run(
        [sys.executable, "-m", "returnwatch.transform", "parse", "--if-stale"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    began, began_cpu = time.perf_counter(), cpu_seconds()

    from returnwatch_replay import demo

    timings: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    order: list[str] = []

    def add(phase: str | None, wall: float, cpu: float) -> None:
        if phase is None:  # counted in the phase around it
            return
        if phase not in timings:
            order.append(phase)
        timings[phase][0] += wall
        timings[phase][1] += cpu

    def timed(function, phase_of):
        def wrapper(*args, **kwargs):
            wall, cpu = time.perf_counter(), cpu_seconds()
            try:
                return function(*args, **kwargs)
            finally:
                add(phase_of(*args, **kwargs), time.perf_counter() - wall, cpu_seconds() - cpu)

        return wrapper

    def run_phase(scheduler, dag_id, at, reason) -> str | None:
        kind = {demo.TRANSFORM: "transform", demo.MONITOR: "monitor"}.get(dag_id)
        return f"{at:%d %b %Y}: {kind}" if kind else None  # sources: sources_phase

    def sources_phase(scheduler, sources, day) -> str:
        # In both processes (SourceLane): the wall clock until the last one is done.
        return f"{day:%d %b %Y}: source runs"

    def wait_phase(step) -> str:
        what = "dbt manifest" if "manifest" in step.code else "Airflow metadata DB"
        return f"set-up: rest of the wait for the {what} (child process)"

    originals = (
        demo.Aside.wait,
        demo.load_what_the_runs_import,
        demo.load_dags,
        demo.SchedulerStandIn.run,
        demo.SchedulerStandIn._run_sources,
        demo.print_demo_summary,
    )
    # The metadata DB (and a stale manifest) are made in child processes meanwhile: their rows
    # are the rest of the wait for each, and their CPU the child's (counted once it is reaped).
    demo.Aside.wait = timed(demo.Aside.wait, wait_phase)
    demo.load_what_the_runs_import = timed(
        demo.load_what_the_runs_import, lambda: "set-up: libraries the runs import (meanwhile)"
    )
    demo.load_dags = timed(demo.load_dags, lambda **_: "set-up: DagBag")
    demo.SchedulerStandIn.run = timed(demo.SchedulerStandIn.run, run_phase)
    demo.SchedulerStandIn._run_sources = timed(demo.SchedulerStandIn._run_sources, sources_phase)
    demo.print_demo_summary = timed(demo.print_demo_summary, lambda report: "summary")
    try:
        demo.run()
    finally:
        (
            demo.Aside.wait,
            demo.load_what_the_runs_import,
            demo.load_dags,
            demo.SchedulerStandIn.run,
            demo.SchedulerStandIn._run_sources,
            demo.print_demo_summary,
        ) = originals
    total_wall, total_cpu = time.perf_counter() - began, cpu_seconds() - began_cpu
    phases = [(phase, *timings[phase]) for phase in order]
    top_level = [(w, c) for _, w, c in phases]
    accounted, accounted_cpu = sum(w for w, _ in top_level), sum(c for _, c in top_level)
    phases.append(
        ("other (imports, mirror, day lines)", total_wall - accounted, total_cpu - accounted_cpu)
    )
    phases.append(("total", total_wall, total_cpu))
    return phases, scratch


def run() -> list[dict]:
    load = os.getloadavg()
    phases, scratch = measure()
    shutil.rmtree(scratch, ignore_errors=True)
    rows = [
        {
            "measure": f"demo by phase (load average at start {load[0]:.1f} on "
            f"{os.cpu_count()} cores): wall s (CPU s)",
            "value": "",
            "target": "—",
        }
    ]
    for phase, wall, cpu in phases:
        total = phase == "total"
        rows.append(
            {
                "measure": f"  {phase}",
                "value": f"{wall:.1f} s ({cpu:.1f} s CPU)",
                "target": f"≤ {DEMO_TARGET_SECONDS} s" if total else "—",
                "ok": wall <= DEMO_TARGET_SECONDS if total else True,
            }
        )
    return rows


if __name__ == "__main__":
    table = run()
    print()
    for row in table:
        print(f"{row['measure']:<62} {row['value']:>22}  {row['target']}")
