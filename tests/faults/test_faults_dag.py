"""Loaded means loaded, through the real ``hhs_uc_daily`` DAG: a worker SIGKILLed right after
its fetch stored a new file leaves the archive saying "already received"; the next scheduled
DAG run must still parse, validate and load it, once, and the run after that skip it."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from returnwatch import settings, warehouse
from returnwatch.archive import Archive
from returnwatch_replay.mirror import ReplayMirror
from tests.e2e.conftest import dags  # noqa: F401 - the fixture

pytestmark = pytest.mark.e2e

SOURCE = "hhs_uc_daily"
DAY_1, DAY_2 = dt.date(2025, 12, 11), dt.date(2025, 12, 15)

FETCH_THEN_DIE = textwrap.dedent("""
    import datetime as dt, os, signal, sys
    from returnwatch import ingest
    ingest.fetch("hhs_uc_daily", run_at=dt.datetime.fromisoformat(sys.argv[1]))
    os.kill(os.getpid(), signal.SIGKILL)  # the worker dies before file.parse_file starts
""")


@pytest.fixture
def mirror(data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    with ReplayMirror(as_of=DAY_1) as running:
        monkeypatch.setenv("RETURNWATCH_HHS_UC_DAILY_BASE_URL", running.base_url(SOURCE))
        yield running


def run(dag_bag: dict, day: dt.date) -> tuple[str, dict[str, str]]:
    from returnwatch_replay.demo import run_dag

    at = dt.datetime.combine(day, dt.time(15), tzinfo=dt.UTC)
    state = run_dag(dag_bag[SOURCE], at)
    return state, task_states(at)


def task_states(at: dt.datetime) -> dict[str, str]:
    from airflow.models import DagRun

    [dag_run] = [r for r in DagRun.find(dag_id=SOURCE) if r.logical_date == at]
    return {
        ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()
    }


def loaded_files() -> list[str]:
    with warehouse.session(read_only=True) as con:
        return [
            row[0]
            for row in con.execute("select sha256 from raw.files order by loaded_at").fetchall()
        ]


def test_the_next_dag_run_loads_a_file_whose_worker_died_after_the_fetch(dags, mirror) -> None:  # noqa: F811
    assert run(dags, DAY_1)[0] == "success"
    mirror.set_as_of(DAY_2)
    at = dt.datetime.combine(DAY_2, dt.time(15), tzinfo=dt.UTC)
    killed = subprocess.run(
        [sys.executable, "-c", FETCH_THEN_DIE, at.isoformat()],
        cwd=settings.PROJECT_DIR,
        capture_output=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    [*_, stranded] = Archive().entries(SOURCE)
    assert stranded.outcome == "new" and stranded.sha256 not in loaded_files()

    # The publisher posts nothing more; the next run's fetch hears "not modified".
    state, tasks = run(dags, DAY_2 + dt.timedelta(days=1))
    assert state == "success" and tasks["file.load_file"] == "success", tasks
    assert Archive().entries(SOURCE)[-1].outcome == "not_modified"
    assert loaded_files()[-1] == stranded.sha256 and len(loaded_files()) == 2

    state, tasks = run(dags, DAY_2 + dt.timedelta(days=2))
    assert state == "success" and tasks["file.parse_file"] == "skipped", tasks
    assert len(loaded_files()) == 2
