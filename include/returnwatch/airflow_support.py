"""What every returnwatch DAG shares: default arguments, the run's clock, failure alerts.

DAG files import this at parse time, so it imports only Airflow's light SDK; anything heavy
is imported inside the functions that tasks call.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

OWNER = "returnwatch"
# Every task that writes the DuckDB warehouse runs in this one-slot pool: DuckDB has one writer.
WAREHOUSE_POOL = "warehouse"
RUNBOOK = "docs/runbook.md"


def on_task_failure(context: dict[str, Any]) -> None:
    """Airflow calls on_failure_callback only when no retry is left: alert ops once.

    A bad source file has already opened its own incident (``ingest.report_bad_file``), so its
    task failure is not alerted a second time.
    """
    if getattr(context.get("exception"), "already_reported", False):
        return
    from returnwatch.alerts import on_task_failure as alert_ops

    alert_ops(context)


DEFAULT_ARGS: dict[str, Any] = {
    "owner": OWNER,
    "retries": 2,
    "retry_delay": dt.timedelta(minutes=5),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=30),
    "on_failure_callback": on_task_failure,
}


def run_time(context: dict[str, Any]) -> dt.datetime:
    """The moment this run stands for, timezone-aware (UTC).

    Scheduled runs: the logical date. Monitors and freshness judge "now" by it, never by the
    wall clock, so a replay of history or a backfill sees the world as it was then.
    """
    dag_run = context.get("dag_run")
    for value in (context.get("logical_date"), getattr(dag_run, "run_after", None)):
        if value is not None:
            return value.astimezone(dt.UTC)
    return dt.datetime.now(dt.UTC)


def run_id(context: dict[str, Any]) -> str:
    dag_run = context.get("dag_run")
    return f"{context['dag'].dag_id}/{getattr(dag_run, 'run_id', 'manual')}"
