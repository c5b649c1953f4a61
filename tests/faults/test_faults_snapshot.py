"""The analysts' snapshot under faults: publish and the monitor's refresh racing each other,
and a publish killed half-way. The snapshot and the Parquet files must always end on one build
(the same ``build_id`` in ``snapshot.build`` and in every Parquet file), and a killed writer's
scratch folder must not outlive the next publish.

The live warehouse is built by hand (one marts table of real HHS figures, the same rows as
tests/test_transform.py), so no dbt run is needed.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import duckdb
import pytest

from returnwatch import settings, status, transform, warehouse

# Real figures: the newest rows of the replay copy of healthdata.gov ehpz-xc9n (Date,
# apprehended, in CBP, transferred, in HHS care, discharged).
REAL_ROWS = [
    ("2025-12-21", 6, 18, 11, 2484, 14),
    ("2025-12-18", 11, 50, 6, 2472, 16),
]
ROUNDS = 6
WORKER_TIMEOUT_SECONDS = 180


@pytest.fixture
def live(data_dir: Path) -> Path:
    with warehouse.session() as con:  # raw and monitor schemas, as a real warehouse has
        con.execute("CREATE SCHEMA marts")
        con.execute(
            "CREATE TABLE marts.hhs_uc_daily (report_date DATE, apprehended INTEGER, "
            "in_cbp INTEGER, transferred INTEGER, in_hhs INTEGER, discharged INTEGER)"
        )
        con.executemany(
            "INSERT INTO marts.hhs_uc_daily VALUES (CAST(? AS DATE), ?, ?, ?, ?, ?)", REAL_ROWS
        )
    return settings.warehouse_path()


def parquet_build_ids() -> dict[str, str]:
    with duckdb.connect() as con:
        return {
            path.stem: con.execute(
                "SELECT value::VARCHAR FROM parquet_kv_metadata(?) WHERE key::VARCHAR = 'build_id'",
                [str(path)],
            ).fetchone()[0]
            for path in transform.parquet_dir().glob("*.parquet")
        }


def scratch_folders() -> list[str]:
    return sorted(
        p.name
        for p in settings.snapshot_path().parent.iterdir()
        if p.name.startswith((".publish-", ".refresh-"))
    )


def _publish_rounds(rounds: int) -> None:
    for _ in range(rounds):
        transform.publish_snapshot()


def _refresh_rounds(rounds: int) -> None:
    for _ in range(rounds):
        status.refresh_snapshot()


def run_workers(*targets) -> list[int | None]:
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=target, args=args) for target, *args in targets]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(WORKER_TIMEOUT_SECONDS)
        if worker.is_alive():  # bounded: never leave a worker behind
            worker.kill()
            worker.join(10)
    return [worker.exitcode for worker in workers]


def test_publish_and_refresh_running_together_end_on_one_build(live: Path) -> None:
    first = transform.publish_snapshot()
    assert transform.snapshot_build_id() == first.build_id
    assert parquet_build_ids() == {"hhs_uc_daily": first.build_id}

    assert run_workers((_publish_rounds, ROUNDS), (_refresh_rounds, ROUNDS)) == [0, 0]

    final = transform.snapshot_build_id()
    assert final and final != first.build_id
    assert parquet_build_ids() == {"hhs_uc_daily": final}
    # The refresh's monitor tables are there, and so are the build's marts.
    with duckdb.connect(str(settings.snapshot_path()), read_only=True) as snap:
        assert snap.execute("SELECT count(*) FROM marts.hhs_uc_daily").fetchone() == (2,)
        assert (
            snap.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'monitor'"
            ).fetchone()[0]
            > 0
        )
    assert scratch_folders() == []


def _publish_killed_before_the_rename() -> None:
    transform.replace_snapshot = lambda staged: os.kill(os.getpid(), signal.SIGKILL)
    transform.publish_snapshot()


def test_a_publish_killed_half_way_leaves_the_old_build_and_its_scratch_is_cleared(
    live: Path,
) -> None:
    first = transform.publish_snapshot()
    with warehouse.connect() as con:
        con.execute("INSERT INTO marts.hhs_uc_daily VALUES ('2025-12-17', 7, 31, 11, 2481, 10)")

    assert run_workers((_publish_killed_before_the_rename,)) == [-signal.SIGKILL]
    # The killed publish left its scratch folder (staged copy and Parquet) behind...
    assert len(scratch_folders()) == 1
    # ...and changed nothing analysts read.
    assert transform.snapshot_build_id() == first.build_id
    assert parquet_build_ids() == {"hhs_uc_daily": first.build_id}

    # The next writer (here the monitor's refresh) removes it once it holds the lock.
    status.refresh_snapshot()
    assert scratch_folders() == []
    again = transform.publish_snapshot()
    assert parquet_build_ids() == {"hhs_uc_daily": again.build_id}
    with duckdb.connect(str(settings.snapshot_path()), read_only=True) as snap:
        assert snap.execute("SELECT count(*) FROM marts.hhs_uc_daily").fetchone() == (3,)


def test_a_second_writer_waits_for_the_lock_and_gives_up_in_bounded_time(live: Path) -> None:
    with transform.snapshot_lock(), pytest.raises(transform.SnapshotBusy, match="held"):
        # Another process's lock: flock locks belong to the open file, so a second open in
        # this process conflicts just the same.
        with transform.snapshot_lock(wait_seconds=0.3):
            pass
