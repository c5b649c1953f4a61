"""What every returnwatch DAG shares: default arguments, the run's clock, failure alerts.

DAG files import this at parse time, so it imports only Airflow's light SDK; anything heavy
is imported inside the functions that tasks call. Functions that read a task's context take
any ``Mapping[str, Any]``: Airflow's ``Context`` (a TypedDict) in tasks, a plain dict in tests.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

OWNER = "returnwatch"
# Every task that writes the DuckDB warehouse runs in this one-slot pool: DuckDB has one writer.
WAREHOUSE_POOL = "warehouse"
RUNBOOK = "docs/runbook.md"


def on_task_failure(context: Mapping[str, Any]) -> None:
    """Airflow calls on_failure_callback only when no retry is left: alert ops once.

    A bad source file has already opened its own incident (``ingest.report_bad_file``), so its
    task failure is not alerted a second time.
    """
    if getattr(context.get("exception"), "already_reported", False):
        return
    from returnwatch.alerts import on_task_failure as alert_ops

    alert_ops(context)


# ---------------------------------------------------------------------------- timeouts
# Sized from measured run times, so a hung task (a publisher that never answers, a dbt build
# that stalls) fails, frees its pool slot and DuckDB's lock, and alerts ops once, instead of
# holding everything behind it. Measured with `make demo` on the replay mirror (2 shared cores,
# December 2026), longest run of each task:
#   file.fetch_file 1.4 s (HHS daily), 3.8 s (others; a real fetch is bounded by its own
#   deadlines: timeout_seconds x (retries + 1) + backoff, at most ~5 min in config/sources.yaml);
#   discover_files 21 s; file.parse_file 9.4 s; file.validate_file 44 s (CBP, 10 files);
#   load 2.5 s; evaluate_monitors 4.2 s; send_alerts 19 s (charts); refresh_snapshot 0.5 s;
#   dbt_producer_watcher (the whole dbt build) 162 s cold; `python -m returnwatch.transform
#   build` warm on the demo's full history 80-105 s with the machine loaded (~10 s idle);
#   publish 0.9 s.
#   Whole runs: hhs_uc_daily <= 9.4 s, monitor <= 15.5 s, hhs_uc_monthly 20 s,
#   segob_bulletin_monthly 54 s (40 files), cbp_encounters_monthly 86 s (first run, 10 files).
# Rule: about ten times the longest measured run, never below the fetch bound.
TASK_TIMEOUT = dt.timedelta(minutes=10)
DBT_BUILD_TIMEOUT = dt.timedelta(minutes=30)
DAGRUN_TIMEOUTS: dict[str, dt.timedelta] = {
    "hhs_uc_daily": dt.timedelta(hours=1),
    # Every listed file through the one-slot pool; a first run fetches a source's history.
    "cbp_encounters_monthly": dt.timedelta(hours=3),
    "segob_bulletin_monthly": dt.timedelta(hours=3),
    "hhs_uc_monthly": dt.timedelta(hours=3),
    "transform": dt.timedelta(hours=1),
    "monitor": dt.timedelta(hours=1),
    "dispatch_alerts": dt.timedelta(minutes=5),  # never overlaps its next run
}

DEFAULT_ARGS: dict[str, Any] = {
    "owner": OWNER,
    "retries": 2,
    "retry_delay": dt.timedelta(minutes=5),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=30),
    "on_failure_callback": on_task_failure,
    "execution_timeout": TASK_TIMEOUT,
}


def run_time(context: Mapping[str, Any]) -> dt.datetime:
    """The moment this run stands for, timezone-aware (UTC).

    Scheduled runs: the logical date. Monitors and freshness judge "now" by it, never by the
    wall clock, so a replay of history or a backfill sees the world as it was then.
    """
    dag_run = context.get("dag_run")
    for value in (context.get("logical_date"), getattr(dag_run, "run_after", None)):
        if value is not None:
            return value.astimezone(dt.UTC)
    return dt.datetime.now(dt.UTC)


def run_id(context: Mapping[str, Any]) -> str:
    dag_run = context.get("dag_run")
    return f"{context['dag'].dag_id}/{getattr(dag_run, 'run_id', 'manual')}"
