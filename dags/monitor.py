"""Monitors: freshness, anomalies, policy rules, revisions. Findings → incidents → alerts."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, get_current_context, task
from airflow.timetables.trigger import CronTriggerTimetable

from returnwatch.airflow_support import DEFAULT_ARGS, WAREHOUSE_POOL, run_id, run_time

DOC = """
### Monitors and alerts

**Checks**, in one task and one transaction (`config/monitors.yaml`):

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
`monitor.incidents`; each incident opening or resolving queues one alert in `monitor.alerts`.

**Sends** queued alerts to Slack (connection `slack_default` or `SLACK_BOT_TOKEN`), or to the
task log and `monitor.alerts` when no token is set. An alert is sent once, even if this task
is retried; one that Slack refused stays queued for the next run.

**Schedule**: daily 16:00 UTC, after the source DAGs. The run's logical date is the "now" the
calendar is judged against, so a replay or backfill judges history as it was.

**When it fails**: see `docs/runbook.md` (section "monitor").
"""


@dag(
    dag_id="monitor",
    schedule=CronTriggerTimetable("0 16 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["monitor", "alerts"],
    doc_md=DOC,
)
def monitor():
    @task(pool=WAREHOUSE_POOL)
    def check_freshness() -> dict:
        from returnwatch.monitor import run_monitors

        context = get_current_context()
        return run_monitors(run_at=run_time(context), run_id=run_id(context)).as_dict()

    @task(pool=WAREHOUSE_POOL)
    def send_alerts(checked: dict) -> dict:
        from returnwatch.alerts import deliver_pending

        return deliver_pending().as_dict()

    send_alerts(check_freshness())


monitor()
