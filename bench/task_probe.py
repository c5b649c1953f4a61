"""Run the work of one Airflow task in a fresh process, so `make bench` can read its peak RSS.

In production each task runs in its own process (LocalExecutor / Celery worker); the demo runs
them all in one process, so its peak is the sum of everything ever imported. This probe loads
what that one task loads (Airflow's SDK, then the task's own libraries) and does its work on the
demo's data, read from the archive.

    python bench/task_probe.py validate|load|transform|monitor   (RETURNWATCH_DATA_DIR = a demo's data)
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import tempfile
from pathlib import Path

from returnwatch import airflow_env, settings

airflow_env.configure()
import airflow.sdk  # noqa: E402,F401  (every task process has the Task SDK loaded)

NOW = dt.datetime(2025, 12, 22, 15, tzinfo=dt.UTC)


def newest_fetch() -> dict:
    from returnwatch.archive import Archive

    entry = Archive().latest_file("hhs_uc_daily")
    return {
        "source": "hhs_uc_daily",
        "outcome": "new",
        "is_new": True,
        "sha256": entry.sha256,
        "url": entry.url,
        "vintage": entry.vintage.isoformat(),
        "fetched_at": entry.fetched_at.isoformat(),
    }


def main(step: str) -> None:
    from returnwatch import ingest

    if step == "validate":  # parse + GX validation of the newest real file
        ingest.validate(ingest.parse(newest_fetch()), run_at=NOW)
    elif step == "load":  # the same file into a copy of the warehouse
        copy = Path(tempfile.mkdtemp()) / "warehouse.duckdb"
        shutil.copy(settings.warehouse_path(), copy)
        validated = {**ingest.parse(newest_fetch()), "warnings": []}
        from returnwatch import warehouse

        warehouse.LOCK_WAIT_SECONDS = 5
        settings.warehouse_path = lambda: copy  # type: ignore[assignment]
        ingest.load(validated, run_at=NOW, run_id="bench/load")
    elif step == "transform":  # dbt build in-process + snapshot, as the Cosmos producer does
        from returnwatch import transform

        transform.ensure_manifest()
        transform.dbt_build().raise_for_status()
        transform.publish_snapshot()
    elif step == "monitor":
        from returnwatch.alerts import deliver_pending
        from returnwatch.monitor import run_monitors

        run_monitors(run_at=NOW, run_id="bench/monitor")
        deliver_pending()
    else:
        raise SystemExit(f"unknown step {step!r}")


if __name__ == "__main__":
    main(sys.argv[1])
