"""Alert dispatcher and watchdog: every 5 minutes, tell ops if returnwatch stopped looking, then
send every queued alert that is due. Independent of the daily monitor."""

from __future__ import annotations

import datetime as dt

import pendulum
from airflow.sdk import dag, get_current_context, task
from airflow.timetables.trigger import CronTriggerTimetable

from returnwatch.airflow_support import DAGRUN_TIMEOUTS, DEFAULT_ARGS, run_id
from returnwatch.ops_view.documents import ui_links

DOC = """
### Alert dispatcher and watchdog

**dispatch** runs every 5 minutes, apart from the daily `monitor`:

- the *watchdog* (`monitor/watchdog.py`): a source whose site has not been checked within its
  rule's `checks_expected_within_hours` (two runs of its DAG plus grace) opens one ops incident
  [source_unchecked](docs/runbook.md#source_unchecked) naming the last check and its DAG
  (paused, not scheduled, or failing); no successful `monitor` run for 26 hours opens
  [monitor_not_completed](docs/runbook.md#monitor_not_completed). Both resolve by themselves.
- *delivery*: every queued alert that is due goes to Slack (connection `slack_api_default`, or
  `SLACK_BOT_TOKEN`), or to the log without a token: new alerts, retries after a Slack outage
  (the outbox's backoff), alerts held by quiet hours and the digest, at the first run after
  their moment. A queued alert waits at most about 5 minutes.

**Schedule**: every 5 minutes, around the clock (`catchup` off, one run at a time).

Delivery comes first and reads only the outbox (`data/outbox.sqlite3`), so a `dbt build`
holding the warehouse does not delay it. The watchdog then needs the warehouse: the task does
**not** use the one-slot `warehouse` pool (it would queue behind every load); it waits for the
writer lock itself, at most 180 s ([timeouts](docs/runbook.md#timeouts)).

**When it fails** ([runbook: dispatch_alerts](docs/runbook.md#dispatch_alerts)): the next run
five minutes later tries again; nothing is lost (alerts stay queued, sent once). A failure of
the watchdog does not stop delivery: the alerts go out, then the task fails and ops get one
[task_failed](docs/runbook.md#task_failed) alert.
"""


@dag(
    dag_id="dispatch_alerts",
    schedule=CronTriggerTimetable("*/5 * * * *", timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    # Measured: a dispatch with nothing due ~1 s, with Slack posts and charts ~3-5 s; the
    # lock wait is at most 180 s (alerts/dispatch.py). A run never overlaps the next one.
    dagrun_timeout=DAGRUN_TIMEOUTS["dispatch_alerts"],
    default_args={
        **DEFAULT_ARGS,
        "retries": 0,
        "execution_timeout": dt.timedelta(minutes=4, seconds=30),
    },
    tags=["alerts", "watchdog", "ops"],
    doc_md=ui_links(DOC),  # runbook links lead to the plugin's copy in the UI
)
def dispatch_alerts():
    @task(multiple_outputs=False)  # its dict is one XCom, not one per key besides
    def dispatch() -> dict:
        from returnwatch.alerts.dispatch import airflow_dag_facts, dispatch

        return dispatch(run_id=run_id(get_current_context()), dag_facts=airflow_dag_facts)

    dispatch()


dispatch_alerts()
