"""What the dbt transform costs under Airflow, per Cosmos option, against a plain ``dbt build``.

``run()`` returns rows {measure, value, target, ok} for ``bench/run.py``'s table. It copies the
warehouse the demo built (``data/warehouse.duckdb``; run ``make demo`` first) into a scratch
folder, then, in one process as the demo runs them:

- a plain ``dbt build`` of the project, as ``dbt build`` on the command line (a fresh process:
  Python and dbt start-up included) and in-process through ``dbtRunner`` once dbt is loaded;
- the same project as a Cosmos ``DbtTaskGroup`` run by ``dag.test()``, for each option: the
  execution mode (watcher: one ``dbt build`` in a producer task, per-node tasks watching it;
  local with the dbt runner: one dbt invocation per task), the test behaviour (tests only in
  the producer's build, a tests task after each model, tests inside each model's ``build``,
  one tests task after all, no tests) and with or without the one-slot ``warehouse`` pool
(``dag.test()`` runs one task at a time, so the pool costs nothing there; in production it
serialises the warehouse's writers). Each variant runs twice; the second (warm) run is
  reported, as the demo's transforms after its first are. (Watcher mode with tests inside
  each model's build does not exist: Cosmos 1.15 refuses ``TestBehavior.BUILD`` there.)

Wall-clock and CPU seconds are both given: on a shared machine the wall clock says more about
the neighbours than about the option; the CPU time of this process (and its children) does not.

The target: the transform as the DAG runs it (``returnwatch.transform.cosmos_configs()``) takes
at most 1.5x the plain command-line build, CPU against CPU. ``make bench-cosmos`` prints the
table; ``make bench`` includes its rows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
RATIO_TARGET = 1.5

# (label, execution mode, test behaviour, pool)
VARIANTS = [
    ("watcher, tests in the producer's build", "watcher", "none", True),
    ("watcher, tests after each model", "watcher", "after_each", True),
    ("watcher, tests after all", "watcher", "after_all", True),
    ("watcher, tests in the producer's build, no pool", "watcher", "none", False),
    ("local + dbt runner, tests in each model's build", "local", "build", True),
    ("local + dbt runner, tests after each model", "local", "after_each", True),
    ("local + dbt runner, tests after all", "local", "after_all", True),
    ("local + dbt runner, no tests", "local", "none", True),
]


DAG_FILE = """
# airflow DAG file (the DagBag's safe mode reads only files that say "airflow" and "dag")
import sys
sys.path.insert(0, {bench!r})
from cosmos_options import VARIANTS, _dag_id, _variant_dag

for _label, _mode, _tests, _pool in VARIANTS:
    globals()[_dag_id(_mode, _tests, _pool)] = _variant_dag(_dag_id(_mode, _tests, _pool), _mode,
                                                             _tests, _pool)
"""


def _dag_id(mode: str, tests: str, pool: bool) -> str:
    return f"cosmos_{mode}_{tests}_{'pool' if pool else 'nopool'}"


def _variant_dag(dag_id: str, mode: str, tests: str, pool: bool):
    from airflow.sdk import DAG
    from cosmos import DbtTaskGroup
    from cosmos.constants import ExecutionMode, TestBehavior

    from returnwatch import transform
    from returnwatch.airflow_support import WAREHOUSE_POOL

    configs = transform.cosmos_configs()._asdict()
    configs["execution_config"].execution_mode = ExecutionMode(mode)
    configs["render_config"].test_behavior = TestBehavior(tests)
    args = dict(configs["operator_args"])
    if mode != "watcher":
        for key in ("deferrable", "mode", "poke_interval"):
            args.pop(key, None)
    configs["operator_args"] = args
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        default_args={"pool": WAREHOUSE_POOL} if pool else {},
    ) as dag:
        DbtTaskGroup(group_id="dbt", **configs)
    return dag


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children so far."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed_test(dag, day: int) -> tuple[float, float, str, int]:
    at = dt.datetime(2025, 6, day, 15, tzinfo=dt.UTC)
    began, cpu = time.perf_counter(), cpu_seconds()
    run = dag.test(logical_date=at, run_after=at)
    seconds, cpu = time.perf_counter() - began, cpu_seconds() - cpu
    return seconds, cpu, str(getattr(run.state, "value", run.state)), len(dag.task_dict)


def measure(variants=VARIANTS) -> dict:
    source = PROJECT / "data" / "warehouse.duckdb"
    if not source.is_file():
        raise SystemExit(f"no warehouse at {source}: run `make demo` first")
    scratch = Path(tempfile.mkdtemp(prefix="returnwatch-cosmos-"))
    try:
        data = scratch / "data"
        data.mkdir()
        shutil.copyfile(source, data / "warehouse.duckdb")
        os.environ["RETURNWATCH_DATA_DIR"] = str(data)
        os.environ["AIRFLOW_HOME"] = str(scratch / "airflow")
        # dag.test() runs only DAGs the dag-processor can find: one file draws every variant.
        dags = scratch / "dags"
        dags.mkdir()
        (dags / "cosmos_variants.py").write_text(DAG_FILE.format(bench=str(Path(__file__).parent)))
        os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags)
        from returnwatch import airflow_env

        airflow_env.configure()
        os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
        out: dict = {"variants": {}}
        began, cpu = time.perf_counter(), cpu_seconds()
        dbt = PROJECT / ".venv" / "bin" / "dbt"
        cli = subprocess.run(
            [
                str(dbt),
                "build",
                "--project-dir",
                str(PROJECT / "dbt_project"),
                "--profiles-dir",
                str(PROJECT / "dbt_project"),
                "--target-path",
                str(scratch / "cli-target"),
                "--log-path",
                str(scratch / "cli-logs"),
            ],
            env={**os.environ, "RETURNWATCH_WAREHOUSE": str(data / "warehouse.duckdb")},
            capture_output=True,
            text=True,
        )
        out["cli"], out["cli_cpu"] = time.perf_counter() - began, cpu_seconds() - cpu
        if cli.returncode:
            raise SystemExit(f"dbt build failed:\n{cli.stdout[-2000:]}")

        from returnwatch import transform

        transform.dbt_build(quiet=True)
        began, cpu = time.perf_counter(), cpu_seconds()
        transform.dbt_build(quiet=True).raise_for_status()
        out["in_process"], out["in_process_cpu"] = time.perf_counter() - began, cpu_seconds() - cpu
        print(
            f"dbt build: command line {out['cli']:.1f} s ({out['cli_cpu']:.1f} s CPU), "
            f"in-process {out['in_process']:.1f} s ({out['in_process_cpu']:.1f} s CPU)",
            file=sys.stderr,
            flush=True,
        )

        airflow_env.prepare_metadata_db()
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(dags))
        if bag.import_errors:
            raise SystemExit(f"variant DAGs: {bag.import_errors}")
        from returnwatch_replay.demo import dag_files_parsed_once

        # As in the demo: dag.test() stores the DAG files once, not on every call.
        stack = contextlib.ExitStack()
        stack.enter_context(dag_files_parsed_once())
        for number, (label, mode, tests, pool) in enumerate(variants):
            dag = bag.dags[_dag_id(mode, tests, pool)]
            first = _timed_test(dag, 1 + 2 * number)
            warm = _timed_test(dag, 2 + 2 * number)
            out["variants"][label] = {
                "first": first[0],
                "warm": warm[0],
                "cpu": warm[1],
                "state": warm[2],
                "tasks": warm[3],
            }
            print(
                f"{label}: {warm[3]} tasks, first {first[0]:.1f} s, warm {warm[0]:.1f} s "
                f"({warm[1]:.1f} s CPU; {warm[2]})",
                file=sys.stderr,
                flush=True,
            )
        return out
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run() -> list[dict]:
    m = measure()
    rows = [
        {
            "measure": "dbt build on the command line (demo's warehouse; start-up included)",
            "value": f"{m['cli']:.1f} s ({m['cli_cpu']:.1f} s CPU)",
            "target": "—",
            "ok": True,
        },
        {
            "measure": "dbt build in-process (dbtRunner, dbt already loaded)",
            "value": f"{m['in_process']:.1f} s ({m['in_process_cpu']:.1f} s CPU)",
            "target": "—",
            "ok": True,
        },
    ]
    for label, v in m["variants"].items():
        # CPU against CPU: the wall clock of a shared machine measures its other users.
        ratio = v["cpu"] / m["cli_cpu"]
        chosen = label == CHOSEN
        rows.append(
            {
                "measure": f"transform under Airflow: {label} ({v['tasks']} tasks"
                f"{', the DAG' if chosen else ''}; {v['state']})",
                "value": f"{v['warm']:.1f} s ({v['cpu']:.1f} s CPU, {ratio:.1f}x); "
                f"first run {v['first']:.1f} s",
                "target": f"≤ {RATIO_TARGET}x" if chosen else "—",
                "ok": (ratio <= RATIO_TARGET and v["state"] == "success") if chosen else True,
            }
        )
    return rows


# The option the transform DAG uses (returnwatch.transform.cosmos_configs()).
CHOSEN = "watcher, tests in the producer's build"


def print_table(rows: list[dict]) -> None:
    """The rows as an aligned table (``make bench-cosmos``)."""
    header = {"measure": "option", "value": "warm run: wall (CPU, CPU vs command line)"}
    width = max(len(r["measure"]) for r in [header, *rows])
    value = max(len(r["value"]) for r in [header, *rows])
    print(f"{header['measure']:<{width}}  {header['value']:<{value}}  target")
    print(f"{'-' * width}  {'-' * value}  ------")
    for row in rows:
        verdict = "" if row["target"] == "—" else ("ok" if row["ok"] else "over")
        print(f"{row['measure']:<{width}}  {row['value']:<{value}}  {row['target']} {verdict}")


if __name__ == "__main__":
    print_table(run())
