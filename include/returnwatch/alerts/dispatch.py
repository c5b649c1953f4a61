"""The dispatcher: every few minutes, the watchdog, then every alert that is due.

What this module owns: ``dispatch()``, the one task of the ``dispatch_alerts`` DAG (every 5
minutes), and ``airflow_dag_facts()``, what the watchdog asks Airflow about a DAG.

A queued alert waits at most one interval plus the run. The task waits for DuckDB's writer
lock itself (at most ``LOCK_WAIT_SECONDS``) rather than the ``warehouse`` pool; a watchdog
failure still lets alerts go out, then fails the task. Why, and the lock's cost:
docs/internals.md#alerts-the-dispatcher.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from typing import Any

log = logging.getLogger(__name__)

# Below the task's execution_timeout (dags/dispatch_alerts.py), above a dbt build's hold.
LOCK_WAIT_SECONDS = 180


def dispatch(
    *,
    run_id: str,
    now: dt.datetime | None = None,
    dag_facts: Any = None,
    archive: Any = None,
    con: Any = None,
) -> dict[str, Any]:
    """Run the watchdog, then deliver every pending alert that is due at ``now``.

    ``now`` is the clock (tests; default the wall clock: backoff and quiet hours are real
    time). Returns what was done, for the task's XCom and log.
    """
    if con is None:
        from returnwatch import warehouse

        with contextlib.closing(warehouse.connect(wait_seconds=LOCK_WAIT_SECONDS)) as own:
            warehouse.init(own)
            return dispatch(run_id=run_id, now=now, dag_facts=dag_facts, archive=archive, con=own)
    from returnwatch.alerts.delivery import (
        absorb_spool,
        check_slack_scopes,
        deliver_pending,
        ensure_schema,
    )
    from returnwatch.monitor.watchdog import run_watchdog

    clock = now or dt.datetime.now(dt.UTC)
    ensure_schema(con)
    # Alerts a failure callback could not put in the outbox (warehouse locked, Slack down).
    spooled = absorb_spool(con)
    watchdog_error: Exception | None = None
    watchdog_alerts: list[str] = []
    try:
        events = run_watchdog(con, now=clock, run_id=run_id, archive=archive, dag_facts=dag_facts)
        watchdog_alerts = [e.alert_id for e in events]
    except Exception as exc:  # delivered first, raised below: one failure must not hide all
        log.exception("watchdog failed; delivering the queued alerts anyway")
        watchdog_error = exc
    missing_scopes = check_slack_scopes(con, now=clock)
    report = deliver_pending(con, now=now)
    if watchdog_error is not None:
        raise watchdog_error
    return {
        "spooled": spooled,
        "watchdog_alerts": watchdog_alerts,
        "missing_scopes": missing_scopes,
        "delivery": report.as_dict(),
    }


def airflow_dag_facts(dag_id: str) -> Any:
    """Paused flag, next run and failed runs of ``dag_id``, asked through the task SDK.

    Airflow 3 tasks may not open the metadata database; the supervisor answers these
    questions for them (``RuntimeTaskInstance.get_dag`` / ``get_dr_count``). Outside a task
    (CLI, tests without a run) this raises, and the watchdog reports "unknown".
    """
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    from returnwatch.monitor.watchdog import DagFacts

    dag = RuntimeTaskInstance.get_dag(dag_id)
    failed = RuntimeTaskInstance.get_dr_count(dag_id=dag_id, states=["failed"])
    return DagFacts(
        dag_id=dag_id,
        is_paused=bool(dag.is_paused),
        next_dagrun=dag.next_dagrun,
        failed_runs=int(failed),
    )
