"""The dispatcher: every few minutes, every alert that is due, then the watchdog.

What this module owns: ``dispatch()``, the one task of the ``dispatch_alerts`` DAG (every 5
minutes), and ``airflow_dag_facts()``, what the watchdog asks Airflow about a DAG.

A queued alert waits at most one interval plus the run. The run sends from the outbox (its
own SQLite file) first, without opening the warehouse, so a ``dbt build`` holding the writer
does not delay it; then it waits for DuckDB's writer lock (at most ``LOCK_WAIT_SECONDS``, not
the ``warehouse`` pool) for the watchdog, leftover hand-offs and the warehouse's copy. A
watchdog failure still lets alerts go out, then fails the task.
Details: docs/internals.md#alerts-the-dispatcher.
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
    """Deliver every pending alert of the outbox that is due at ``now``, then (with the
    warehouse ``con``, opened here when None) run the watchdog, hand over what the monitors
    queued, deliver that, and refresh the warehouse's copy.

    ``now`` is the clock (tests; default the wall clock: backoff and quiet hours are real
    time). Returns what was done, for the task's XCom and log.
    """
    from returnwatch.alerts import outbox
    from returnwatch.alerts.delivery import absorb_spool, check_slack_scopes, deliver_outbox

    clock = now or dt.datetime.now(dt.UTC)
    with outbox.session() as box:
        # Alerts a failure callback could not put in the outbox (disk full, Slack down).
        spooled = absorb_spool(box)
        missing_scopes = check_slack_scopes(box, now=clock)
        first = deliver_outbox(box, now=now)  # no warehouse: a build cannot delay this
        if con is None:
            from returnwatch import warehouse

            with contextlib.closing(warehouse.connect(wait_seconds=LOCK_WAIT_SECONDS)) as own:
                warehouse.init(own)
                second, watchdog = _with_warehouse(own, box, run_id, clock, now, dag_facts, archive)
        else:
            second, watchdog = _with_warehouse(con, box, run_id, clock, now, dag_facts, archive)
    watchdog_alerts, watchdog_error = watchdog
    if watchdog_error is not None:
        raise watchdog_error
    return {
        "spooled": spooled,
        "watchdog_alerts": watchdog_alerts,
        "missing_scopes": missing_scopes,
        "delivery": (first.then(second) if second is not None else first).as_dict(),
    }


def _with_warehouse(
    con: Any,
    box: Any,
    run_id: str,
    clock: dt.datetime,
    now: dt.datetime | None,
    dag_facts: Any,
    archive: Any,
) -> tuple[Any, tuple[list[str], Exception | None]]:
    """The watchdog, the hand-off and the warehouse's copy; a second delivery if the
    watchdog or the hand-off queued anything. Returns that delivery's report (or None) and
    the watchdog's alerts and error (raised by the caller after delivering)."""
    from returnwatch.alerts import handoff
    from returnwatch.alerts.delivery import deliver_outbox
    from returnwatch.monitor.watchdog import run_watchdog

    watchdog_error: Exception | None = None
    watchdog_alerts: list[str] = []
    try:
        events = run_watchdog(con, now=clock, run_id=run_id, archive=archive, dag_facts=dag_facts)
        watchdog_alerts = [e.alert_id for e in events]
    except Exception as exc:  # delivered first, raised below: one failure must not hide all
        log.exception("watchdog failed; delivering the queued alerts anyway")
        watchdog_error = exc
    handed = handoff.hand_off(con, box, now=now)
    second = deliver_outbox(box, now=now) if handed else None
    handoff.copy_to_warehouse(con, box)
    return second, (watchdog_alerts, watchdog_error)


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
