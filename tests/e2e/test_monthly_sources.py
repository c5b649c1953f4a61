"""End to end through Airflow for the sources whose files are found on their pages: discovery,
one mapped chain per file, every vintage kept, revisions, re-runs and a broken file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from returnwatch import warehouse
from returnwatch_replay.mirror import ReplayMirror

pytestmark = pytest.mark.e2e

CBP = "cbp_encounters_monthly"


@pytest.fixture
def mirror(data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    with ReplayMirror(as_of=dt.date(2021, 3, 20)) as running:
        for name, value in running.env().items():
            monkeypatch.setenv(name, value)
        yield running


def run(dags: dict, dag_id: str, day: dt.date) -> tuple[str, dict[str, list[str]]]:
    """Run ``dag_id`` for ``day``; return its state and each task's states by map index."""
    from returnwatch_replay.demo import run_dag

    at = dt.datetime.combine(day, dt.time(14), tzinfo=dt.UTC)
    state = run_dag(dags[dag_id], at)
    from airflow.models.dagrun import DagRun

    [dag_run] = DagRun.find(dag_id=dag_id, logical_date=at)
    tasks: dict[str, list[str]] = {}
    for ti in sorted(dag_run.get_task_instances(), key=lambda t: (t.task_id, t.map_index)):
        tasks.setdefault(ti.task_id, []).append(str(getattr(ti.state, "value", ti.state)))
    return state, tasks


def query(sql: str) -> list[tuple]:
    with warehouse.session(read_only=True) as con:
        return con.execute(sql).fetchall()


def test_cbp_vintages_revisions_and_a_rerun(dags, mirror) -> None:
    state, tasks = run(dags, CBP, dt.date(2021, 3, 20))
    assert state == "success" and tasks["file.load_file"] == ["success"]
    # USBP Southwest-border unaccompanied children, January 2021, as published in March 2021.
    jan21 = """select sum(encounters) from raw.cbp_encounters_aor a join raw.files f
               on f.sha256 = a.source_file
               where month = '2021-01-01' and component = 'U.S. Border Patrol'
                 and demographic = 'UC / Single Minors' and f.vintage = '{v}'"""
    assert query(jan21.format(v="2021-03-02")) == [(5707,)]

    mirror.set_as_of(dt.date(2025, 6, 17))
    state, tasks = run(dags, CBP, dt.date(2025, 6, 17))
    assert state == "success" and set(tasks["file.load_file"]) == {"success"}
    # Both vintages are kept; the newer one restates the month (real revision, PROVENANCE.md).
    assert query(jan21.format(v="2024-10-15")) == [(5688,)]
    [(figures, files)] = query(
        "select count(*), count(distinct new_file) from monitor.revisions "
        "where source = 'cbp_encounters_monthly'"
    )
    assert figures == 19 and files == 1

    before = query("select count(*) from raw.files")
    state, tasks = run(dags, CBP, dt.date(2025, 6, 18))  # nothing new published
    assert state == "success"
    assert set(tasks["file.parse_file"]) == {"skipped"}  # every file answered "not modified"
    assert query("select count(*) from raw.files") == before


def test_a_broken_file_fails_its_own_chain_and_tells_ops_once(dags, mirror) -> None:
    mirror.set_as_of(dt.date(2025, 6, 17))
    mirror.set_fault(CBP, "renamed_column")
    state, tasks = run(dags, CBP, dt.date(2025, 6, 17))
    assert state == "failed"
    assert set(tasks["file.parse_file"]) == {"failed"}
    assert set(tasks["file.load_file"]) == {"upstream_failed"}
    assert query("select count(*) from raw.cbp_encounters_aor") == [(0,)]
    alerts = query("select audience, text from monitor.alerts where event = 'opened'")
    assert len(alerts) == 2 and {a for a, _ in alerts} == {"ops"}  # one per broken file
    assert all("'Encounters'" in text for _, text in alerts)

    mirror.set_fault(CBP, None)
    state, _ = run(dags, CBP, dt.date(2025, 6, 18))
    assert state == "success"
    assert query("select count(*) from monitor.alerts where event = 'resolved'") == [(2,)]
