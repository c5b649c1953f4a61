"""HHS/DHS daily figures on unaccompanied children: fetch → parse → validate → load."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, get_current_context, task
from airflow.timetables.trigger import CronTriggerTimetable

from returnwatch.airflow_support import DEFAULT_ARGS, WAREHOUSE_POOL, run_id, run_time
from returnwatch.assets import RAW_HHS_UC_DAILY

SOURCE = "hhs_uc_daily"

DOC = """
### HHS/DHS daily figures on unaccompanied children (healthdata.gov `ehpz-xc9n`)

**Fetches** the dataset's CSV export (URL in `config/sources.yaml`), keeps the bytes in the
archive, parses them, validates them with `expectations/hhs_uc_daily.json` and loads
`raw.hhs_uc_daily`; a new file emits the `raw.hhs_uc_daily` Asset, which triggers `transform`.

**Schedule**: daily 15:00 UTC. The publisher posts Sunday–Thursday; a run on other days finds
the same file again, records the check and skips the rest (that is normal, not a failure).

**When it fails** (see `docs/runbook.md`): `fetch_export` failing = the site is down or
refused us (retried, then ops are told); `parse_export` / `validate_rows` failing = the file
changed layout or broke an expectation: the first log line names file, row and expectation,
the raw file stays in the archive, the warehouse is unchanged, ops got one alert. Fix the
parser or the suite, then re-run the task.
"""


@dag(
    dag_id=SOURCE,
    schedule=CronTriggerTimetable("0 15 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["source", "hhs", "daily"],
    doc_md=DOC,
)
def hhs_uc_daily():
    @task
    def fetch_export() -> dict:
        from returnwatch import ingest

        return ingest.fetch(SOURCE, run_at=run_time(get_current_context()))

    @task(pool=WAREHOUSE_POOL, retries=0)
    def parse_export(fetched: dict) -> dict:
        from returnwatch import ingest

        return ingest.guarded(ingest.parse, fetched, context=get_current_context())

    @task(pool=WAREHOUSE_POOL, retries=0)
    def validate_rows(parsed: dict) -> dict:
        from returnwatch import ingest

        context = get_current_context()
        return ingest.guarded(ingest.validate, parsed, context=context, run_at=run_time(context))

    @task(pool=WAREHOUSE_POOL, outlets=[RAW_HHS_UC_DAILY])
    def load_rows(validated: dict) -> dict:
        from returnwatch import ingest

        context = get_current_context()
        return ingest.load(validated, run_at=run_time(context), run_id=run_id(context))

    load_rows(validate_rows(parse_export(fetch_export())))


hhs_uc_daily()
