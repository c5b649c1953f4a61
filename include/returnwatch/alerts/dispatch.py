"""The dispatcher: every few minutes, the watchdog, then every alert that is due.

What this module owns: ``dispatch()``, the one task of the ``dispatch_alerts`` DAG (every 5
minutes), and ``airflow_dag_facts()``, what the watchdog asks Airflow about a DAG.

Why a DAG of its own: alerts used to leave only when the daily ``monitor`` ran (or a task
failed), so an alert queued at 16:05, the retry after a Slack outage, the end of quiet hours
or a digest waited up to a day. Now a queued alert waits at most one dispatcher interval
(5 minutes) plus the run; backoff retries, quiet hours and digests are honoured at the first
run after their moment. The dispatcher also runs the watchdog (``monitor.watchdog``), so the
watchers are watched from outside the DAGs they watch.

The outbox lives in the warehouse (``monitor.alerts``), and this task does not take the
one-slot ``warehouse`` pool: it waits for DuckDB's writer lock itself, at most
``LOCK_WAIT_SECONDS``. Writers hold the lock for seconds to minutes (a load under 3 s, a
warm ``dbt build`` ~10 s idle but 80-105 s measured on a loaded 2-core machine, a cold one
162 s; figures in ``airflow_support``), so a build delays delivery by the rest of that build, not by a pool
queue. That can exceed a minute: moving the outbox out of the warehouse file is the way to
remove it (not done yet). A writer holding the
lock for longer than the wait is itself a fault: the task fails and ops hear it directly
(``on_task_failure`` sends without the outbox when the warehouse is locked).

Failures are never swallowed: when the watchdog fails, alerts are still delivered, then the
watchdog's error fails the task (one ``task_failed`` alert for ops).
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
