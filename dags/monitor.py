"""Monitors: freshness, anomalies, policy rules, revisions. Findings → incidents → alerts,
then the snapshot's copy of the results (what the returnwatch page and CLI read)."""

from __future__ import annotations

import pendulum
from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, get_current_context, task

from returnwatch.airflow_support import (
    DAGRUN_TIMEOUTS,
    DEFAULT_ARGS,
    WAREHOUSE_POOL,
    run_id,
    run_time,
)
from returnwatch.assets import MARTS
from returnwatch.ops_view.documents import ui_links

DOC = """
### Monitors and alerts

**evaluate_monitors** checks, in one task and one transaction (`config/monitors.yaml`):

- *freshness* of every source against its publishing calendar (HHS daily: figures dated
  Sunday–Thursday, released the next weekday, no release on US federal holidays; CBP month M by
  mid M+1; SEGOB month M around day 7 of M+2; HHS's monthly pages by mid M+1), judged from the
  data and the archive's manifest, never from whether a DAG succeeded: `fresh`, `late`,
  `stopped`, plus "site unreachable", "same file again" and "new file, no new period";
- *anomalies* in the marts' series, *policy rules*, and *revisions* of settled figures.

A metric or rule whose mart does not exist yet is skipped (named in the log). Each data monitor
judges only periods newer than those it judged before (`monitor.judged`), and only a series'
newest period can alert: a backfill or catch-up records history as `info`, never pages.
Findings land in `monitor.findings`; they open, update or resolve incidents in
`monitor.incidents`; each incident opening or resolving queues one alert (in `monitor.alerts`, handed at once to the outbox `data/outbox.sqlite3`).

**send_alerts** sends queued alerts to Slack (connection `slack_default` or
`SLACK_BOT_TOKEN`), or to the task log and the outbox when no token is set. An alert is
sent once, even if this task is retried; one that Slack refused stays queued for the next run.

**refresh_snapshot** copies the `monitor` tables into the analysts' read-only snapshot
(`data/snapshot/warehouse.duckdb`), which the *returnwatch* page of this UI and
`returnwatch status` read: `transform` publishes the whole snapshot only after a build, so
without this they would show the judgement of the last build. Only the monitor tables are
replaced, never the marts. Before the first `transform` there is no snapshot and it does nothing.

**Schedule**: when `transform` updates the `marts` Asset (new figures are judged right after
the build that made them), and daily at 16:00 UTC, after the source DAGs (freshness is judged
even on days nothing arrives). The run's logical date (or, for a run the Asset triggered, the
moment it was queued) is the "now" the calendar is judged against, so a replay or backfill
judges history as it was.

Every task opens the live warehouse, so each runs in the one-slot `warehouse` pool.

**When it fails** ([runbook: monitor](docs/runbook.md#monitor)): a failed `evaluate_monitors`
wrote nothing of its run (one transaction): fix, then clear the task. Alerts a failed
`send_alerts` left `pending` go out on the next run, never twice. A failed `refresh_snapshot`
leaves the previous snapshot in place; clear it to retry.
"""


@dag(
    dag_id="monitor",
    # Airflow's asset-or-time schedule: the marts changed, or the daily cron.
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 16 * * *", timezone="UTC"), assets=MARTS
    ),
    # Before the oldest history the replay holds: the demo replays March 2021 through the real
    # DAG (Airflow creates no task for a logical date before start_date); catchup is off.
    start_date=pendulum.datetime(2017, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=DAGRUN_TIMEOUTS["monitor"],
    default_args=DEFAULT_ARGS,
    tags=["monitor", "alerts"],
    doc_md=ui_links(DOC),  # runbook links lead to the plugin's copy in the UI
)
def monitor():
    # multiple_outputs=False: each step's dict is one XCom, not one per key besides.
    @task(pool=WAREHOUSE_POOL, multiple_outputs=False)
    def evaluate_monitors() -> dict:
        from returnwatch import warehouse
        from returnwatch.alerts import handoff, outbox
        from returnwatch.monitor import run_monitors

        context = get_current_context()
        with warehouse.session() as con:
            report = run_monitors(run_at=run_time(context), run_id=run_id(context), con=con)
            # Into the outbox while this task holds the warehouse: the dispatcher can then
            # send them even if a build takes the warehouse before send_alerts runs.
            with outbox.session() as box:
                handoff.hand_off(con, box)
        return report.as_dict()

    @task(pool=WAREHOUSE_POOL, multiple_outputs=False)
    def send_alerts(checked: dict) -> dict:
        from returnwatch.alerts import deliver_pending

        return deliver_pending().as_dict()

    @task(pool=WAREHOUSE_POOL, multiple_outputs=False)
    def refresh_snapshot(sent: dict) -> dict | None:
        from returnwatch.status import refresh_snapshot

        refreshed = refresh_snapshot()
        return refreshed.as_dict() if refreshed else None

    # Airflow's Task type keeps the function's parameter types for its __call__, which takes
    # the upstream XComArg at parse time: its stubs cannot express that (airflow.sdk Task).
    refresh_snapshot(send_alerts(evaluate_monitors()))  # type: ignore[arg-type]


monitor()
