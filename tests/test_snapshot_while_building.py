"""Analysts read consistent marts from the snapshot while the pipeline writes the live warehouse.

Acceptance test of the dbt marts issue: a warehouse of real files (``tests/dbt/realdata.py``) is
built and published once; then another process, like a worker in the ``warehouse`` pool, loads
a newer CBP file (holding DuckDB's one write lock), runs ``dbt build`` on it and publishes. The
whole time, this process keeps opening the snapshot read-only, as an analyst's notebook would,
and checks that the marts agree with each other (one version, never half of two).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from returnwatch import settings

OLD_CBP = dt.date(2024, 10, 15)
NEW_CBP = dt.date(2025, 6, 16)

WRITER = textwrap.dedent("""
    import datetime as dt, json, sys, time
    from returnwatch import transform, warehouse
    from tests.dbt import realdata

    events = open(sys.argv[1], "a")
    def say(event):
        events.write(json.dumps({"event": event, "at": time.time()}) + "\\n")
        events.flush()

    with warehouse.session() as con:
        say("load started")
        realdata.load_cbp(con, realdata.cbp_files({dt.date(2025, 6, 16)}))
        time.sleep(1.5)  # a slow load: the write lock is held a while longer
    say("load done")
    result = transform.dbt_build()
    result.raise_for_status()
    say("build done")
    transform.publish_snapshot()
    say("published")
""")

# Consistency across marts inside one snapshot: the CBP side of the return-rate mart is the sum
# of the encounters mart, month by month, and both come from the same CBP vintage.
CHECKS = """
with encounters as (
    select month, sum(encounters) filter (where is_mexican) as mexican, max(vintage) as vintage
    from marts.cbp_uc_encounters_monthly group by month
)
select
    (select count(*) from encounters
     full join marts.mexico_uc_return_rate_monthly as rate using (month)
     where rate.cbp_mexican_uc_encounters is distinct from encounters.mexican
        or rate.cbp_vintage is distinct from encounters.vintage) as mismatched_months,
    (select max(vintage) from marts.cbp_uc_encounters_monthly) as cbp_vintage,
    (select max(cbp_vintage) from marts.cbp_segob_discrepancy_monthly) as discrepancy_vintage,
    (select count(*) from marts.mart_source_files
     where mart = 'cbp_uc_encounters_monthly' and vintage is null) as untraced
"""


def read_snapshot(path: Path) -> dict:
    with duckdb.connect(str(path), read_only=True) as con:
        mismatched, vintage, discrepancy_vintage, untraced = con.execute(CHECKS).fetchone()
    return {
        "mismatched": mismatched,
        "vintage": vintage,
        "discrepancy_vintage": discrepancy_vintage,
        "untraced": untraced,
    }


def live_is_locked(path: Path) -> bool:
    """Whether a process holds DuckDB's lock on the live file, asked without taking a lock.

    Opening the live file, even read-only, would take a shared lock and make the writer fail:
    this asks the kernel (fcntl F_GETLK) who would block a write lock instead.
    """
    import fcntl
    import struct

    layout = "@hhqqi4x"  # struct flock on Linux: l_type, l_whence, l_start, l_len, l_pid
    fd = os.open(path, os.O_RDONLY)
    try:
        query = struct.pack(layout, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
    finally:
        os.close(fd)
    return struct.unpack(layout, answer)[0] != fcntl.F_UNLCK


@pytest.mark.timeout(600)
def test_snapshot_stays_consistent_while_a_load_and_a_build_hold_the_writer(
    data_dir: Path, tmp_path: Path
) -> None:
    from returnwatch import transform, warehouse
    from tests.dbt import realdata

    with warehouse.session() as con:
        realdata.load_cbp(con, realdata.cbp_files({dt.date(2021, 3, 2), OLD_CBP}))
        realdata.load_segob(con, dt.date(2025, 2, 10), [2024], tables=["5.2.1"])
    transform.dbt_build().raise_for_status()
    transform.publish_snapshot()
    snapshot = settings.snapshot_path()
    assert read_snapshot(snapshot) == {
        "mismatched": 0,
        "vintage": OLD_CBP,
        "discrepancy_vintage": OLD_CBP,
        "untraced": 0,
    }

    events_file = tmp_path / "events.jsonl"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(events_file)],
        cwd=settings.PROJECT_DIR,
        env={**os.environ, "PYTHONPATH": str(settings.PROJECT_DIR)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    reads: list[tuple[float, dict]] = []
    locked_seen = 0
    try:
        while writer.poll() is None:
            reads.append((time.time(), read_snapshot(snapshot)))
            if live_is_locked(settings.warehouse_path()):
                locked_seen += 1
            time.sleep(0.05)
        output = writer.stdout.read() if writer.stdout else ""
    finally:
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == 0, output[-3000:]
    reads.append((time.time(), read_snapshot(snapshot)))

    events = {e["event"]: e["at"] for e in map(json.loads, events_file.read_text().splitlines())}
    assert list(events) == ["load started", "load done", "build done", "published"]
    print(
        f"\n{len(reads)} snapshot reads in {reads[-1][0] - reads[0][0]:.1f} s; live file seen "
        f"locked {locked_seen} times"
    )

    # Every read, before, during and after the writer's work, saw one consistent version.
    assert all(r["mismatched"] == 0 and r["untraced"] == 0 for _, r in reads), reads
    assert all(r["vintage"] == r["discrepancy_vintage"] for _, r in reads)
    # The old version until the publish, then the new one; never anything else.
    during = [r for at, r in reads if events["load started"] <= at < events["published"]]
    assert len(during) >= 20 and {r["vintage"] for r in during} <= {OLD_CBP, NEW_CBP}
    before_build_done = [r for at, r in reads if at < events["build done"]]
    assert {r["vintage"] for r in before_build_done} == {OLD_CBP}
    assert reads[-1][1]["vintage"] == NEW_CBP
    # The reads happened while the writer held the live file: a reader could not open it.
    assert locked_seen > 0
    assert not live_is_locked(settings.warehouse_path())
