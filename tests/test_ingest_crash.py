"""Loaded means loaded: a worker killed (a real SIGKILL) anywhere between fetch and load commit
leaves a file the archive already holds; the next scheduled run must still load it, exactly
once, and tell nobody anything twice.

Each run below is what the ``hhs_uc_daily`` DAG chains (fetch → parse → validate → load, the
rest skipped when ``to_load`` is false), run in a forked child so the kill is a real one: the
child's transaction, open files and half-written Parquet die with it, as a worker's would.
The warehouse after the crash and the next run is compared with a clean run's.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from returnwatch import ingest, warehouse
from returnwatch.archive import Archive
from returnwatch.sources.errors import SourceFileError
from returnwatch_replay.mirror import ReplayMirror

pytestmark = pytest.mark.faults  # also run by make test-faults

SOURCE = "hhs_uc_daily"
DAY_1 = dt.datetime(2025, 12, 12, 15, tzinfo=dt.UTC)
DAY_2 = DAY_1 + dt.timedelta(days=3)  # a new file is published: the crash happens on it
# The next scheduled run: the publisher has posted nothing since, so it serves the same file
# (the mirror stays at DAY_2) and the archive answers "not modified".
DAY_3 = DAY_2 + dt.timedelta(days=1)
STAGES = ("after_fetch", "after_parse", "after_validate", "during_load")
CHILD_TIMEOUT_SECONDS = 120


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def scheduled_run(
    run_at: dt.datetime, run_id: str, *, kill_at: str | None = None, report_bad_files: bool = False
) -> dict[str, Any]:
    """One run of the source's steps as the DAG chains them; ``kill_at`` kills the process."""
    fetched = ingest.fetch(SOURCE, run_at=run_at)
    if kill_at == "after_fetch":
        _die()
    if not fetched["to_load"]:
        return {"skipped": True, **fetched}
    try:
        parsed = ingest.parse(fetched)
    except SourceFileError as error:
        if report_bad_files:
            ingest.report_bad_file(
                SOURCE, error, run_at=run_at, run_id=run_id, series=ingest.incident_series(fetched)
            )
            if kill_at == "after_report":
                _die()
        return {"refused": True, **fetched}
    if kill_at == "after_parse":
        _die()
    validated = ingest.validate(parsed, run_at=run_at)
    if kill_at == "after_validate":
        _die()
    if kill_at == "during_load":
        # After the rows and the raw.files row are inserted, before the commit.
        from returnwatch.monitor import revisions

        revisions.record = lambda *args, **kwargs: _die()
    return ingest.load(validated, run_at=run_at, run_id=run_id)


def run_killed(run_at: dt.datetime, run_id: str, kill_at: str, **kwargs: Any) -> None:
    """``scheduled_run`` in a forked worker that must die by SIGKILL at ``kill_at``."""
    worker = multiprocessing.get_context("fork").Process(
        target=scheduled_run, args=(run_at, run_id), kwargs={"kill_at": kill_at, **kwargs}
    )
    worker.start()
    worker.join(CHILD_TIMEOUT_SECONDS)
    if worker.is_alive():  # bounded: never leave a worker behind
        worker.kill()
        worker.join(10)
        pytest.fail(f"worker still running after {CHILD_TIMEOUT_SECONDS} s")
    assert worker.exitcode == -signal.SIGKILL, f"worker exited {worker.exitcode}, not killed"


def warehouse_state() -> dict[str, Any]:
    """What a clean run and a crashed-then-resumed run must agree on."""
    with warehouse.session() as con:
        return {
            "files": con.execute(
                "select sha256, rows_loaded from raw.files order by sha256"
            ).fetchall(),
            "rows": con.execute(
                "select count(*), sum(in_hhs_care) from raw.hhs_uc_daily"
            ).fetchone(),
            "revisions": con.execute("select count(*) from monitor.revisions").fetchone(),
            "alerts": con.execute(
                "select event, audience, status from monitor.alerts order by seq"
            ).fetchall(),
            "incidents": con.execute(
                "select kind, state from monitor.incidents order by opened_at"
            ).fetchall(),
        }


@pytest.fixture
def mirror(data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    with ReplayMirror(as_of=DAY_1.date()) as running:
        monkeypatch.setenv("RETURNWATCH_HHS_UC_DAILY_BASE_URL", running.base_url(SOURCE))
        yield running


def clean_history(mirror: ReplayMirror) -> dict[str, Any]:
    mirror.set_as_of(DAY_1.date())
    scheduled_run(DAY_1, "day1")
    mirror.set_as_of(DAY_2.date())
    scheduled_run(DAY_2, "day2")
    scheduled_run(DAY_3, "day3")
    return warehouse_state()


@pytest.mark.parametrize("stage", STAGES)
def test_a_file_whose_worker_was_killed_loads_on_the_next_run_exactly_once(
    mirror, data_dir, monkeypatch, tmp_path, stage
) -> None:
    scheduled_run(DAY_1, "day1")
    mirror.set_as_of(DAY_2.date())
    run_killed(DAY_2, "day2", stage)
    with warehouse.session() as con:
        assert con.execute("select count(*) from raw.files").fetchone() == (1,), (
            "the killed run committed nothing"
        )
    [*_, crashed] = Archive().entries(SOURCE)
    assert crashed.outcome == "new", "the file reached the archive before the kill"

    resumed = scheduled_run(DAY_3, "day3")
    # The archive calls it old news (304 or same bytes); the warehouse lacks it: the run goes on.
    assert resumed.get("already_loaded") is False and resumed["rows_loaded"] > 0
    assert resumed["sha256"] == crashed.sha256
    # And the run after that has nothing to do.
    assert scheduled_run(DAY_3 + dt.timedelta(days=1), "day4").get("skipped")
    after_crash = warehouse_state()

    monkeypatch.setenv("RETURNWATCH_DATA_DIR", str(tmp_path / "clean"))
    clean = clean_history(mirror)
    assert after_crash == clean


def test_a_refused_file_is_judged_again_next_run_but_ops_are_told_once(mirror) -> None:
    scheduled_run(DAY_1, "day1")
    mirror.set_fault(SOURCE, "html_error")
    mirror.set_as_of(DAY_2.date())
    # The worker dies right after it told ops: the next run must not tell them again.
    run_killed(DAY_2, "day2", "after_report", report_bad_files=True)
    assert scheduled_run(DAY_3, "day3", report_bad_files=True).get("refused")
    with warehouse.session() as con:
        alerts = con.execute("select event, audience from monitor.alerts order by seq").fetchall()
    assert alerts == [("opened", "ops")]


def test_a_file_already_in_the_warehouse_is_skipped_whatever_the_archive_says(mirror) -> None:
    first = ingest.fetch(SOURCE, run_at=DAY_1)
    assert first["is_new"] and first["to_load"]
    ingest.load(ingest.validate(ingest.parse(first), run_at=DAY_1), run_at=DAY_1, run_id="d1")
    again = ingest.fetch(SOURCE, run_at=DAY_1)
    assert again["outcome"] == "not_modified" and again["to_load"] is False


def test_the_dag_step_skips_only_what_the_warehouse_holds() -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    payload = {"source": SOURCE, "outcome": "not_modified", "sha256": "ab" * 32}
    with pytest.raises(AirflowSkipException, match="already loaded into the warehouse"):
        ingest.guarded(lambda p: p, {**payload, "to_load": False}, context={})
    assert ingest.guarded(lambda p: p, {**payload, "to_load": True}, context={})["to_load"]


def test_the_warehouse_look_works_while_this_process_holds_the_writer(data_dir) -> None:
    with warehouse.session() as con:  # a backfill holds the write lock in this process
        assert warehouse.file_is_loaded("ab" * 32) is False
        con.execute(
            "INSERT INTO raw.files (sha256, source, url, vintage, fetched_at, raw_table, "
            "rows_loaded, loaded_at) VALUES (?, 'hhs_uc_daily', 'manual:x', "
            "DATE '2025-12-22', now(), 'raw.hhs_uc_daily', 0, now())",
            ["ab" * 32],
        )
        assert warehouse.file_is_loaded("ab" * 32) is True
