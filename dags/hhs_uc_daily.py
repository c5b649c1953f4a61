"""HHS/DHS daily figures on unaccompanied children: fetch → parse → validate → load."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, get_current_context, task
from airflow.timetables.trigger import CronTriggerTimetable

from returnwatch.airflow_support import (
    DAGRUN_TIMEOUTS,
    DEFAULT_ARGS,
    WAREHOUSE_POOL,
    run_id,
    run_time,
)
from returnwatch.assets import RAW_HHS_UC_DAILY
from returnwatch.ops_view.documents import ui_links

SOURCE = "hhs_uc_daily"

DOC = """
### HHS/DHS daily figures on unaccompanied children (healthdata.gov `ehpz-xc9n`)

**Fetches** the dataset's CSV export, `sources.hhs_uc_daily` in `config/sources.yaml`:
https://healthdata.gov/api/views/ehpz-xc9n/rows.csv?accessType=DOWNLOAD (one file, every day
in it). `fetch_export` keeps the bytes in the archive, `parse_export` reads them,
`validate_rows` checks them with `expectations/hhs_uc_daily.json` and `load_rows` loads
`raw.hhs_uc_daily`; a new file emits the `raw.hhs_uc_daily` Asset, which triggers `transform`.

**Schedule**: daily at 15:00 UTC. The publisher posts Sunday–Thursday; a run on other days finds
the same file again, records the check and, once that file is in the warehouse, skips the
rest (that is normal, not a failure). A file received but never loaded (a killed worker) is
loaded by the next run.

**When it fails** ([runbook: hhs_uc_daily](docs/runbook.md#hhs_uc_daily)): `fetch_export`
failing = the site is down or refused us (retried, then ops are told:
[task_failed](docs/runbook.md#task_failed); if it lasts,
[source_unreachable](docs/runbook.md#source_unreachable)). `parse_export` / `validate_rows`
failing = the file changed layout or broke an expectation
([layout_changed](docs/runbook.md#layout_changed), [bad_value](docs/runbook.md#bad_value),
[bad_file](docs/runbook.md#bad_file),
[validation_failed](docs/runbook.md#validation_failed)): the first log line names file, row
and expectation, the raw file stays in the archive, the warehouse is unchanged, ops got one
alert. Fix the parser or the suite, then re-run the task. No new figures for days:
[freshness_late](docs/runbook.md#freshness_late).
"""


@dag(
    dag_id=SOURCE,
    schedule=CronTriggerTimetable("0 15 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=DAGRUN_TIMEOUTS["hhs_uc_daily"],
    default_args=DEFAULT_ARGS,
    tags=["source", "hhs", "daily"],
    doc_md=ui_links(DOC),  # runbook links lead to the plugin's copy in the UI
)
def hhs_uc_daily():
    # multiple_outputs=False: the next step takes the whole dict; one XCom, not one per key.
    @task(multiple_outputs=False)
    def fetch_export() -> dict:
        """Fetch the export into the archive (conditional GET, size cap, bounded retries)."""
        from returnwatch import ingest

        return ingest.fetch(SOURCE, run_at=run_time(get_current_context()))

    @task(pool=WAREHOUSE_POOL, retries=0, multiple_outputs=False)
    def parse_export(fetched: dict) -> dict:
        """Parse the archived file into typed rows (skipped when the warehouse already has it)."""
        from returnwatch import ingest

        return ingest.guarded(ingest.parse, fetched, context=get_current_context())

    @task(pool=WAREHOUSE_POOL, retries=0, multiple_outputs=False)
    def validate_rows(parsed: dict) -> dict:
        """Check the rows with the source's Great Expectations suite before anything loads."""
        from returnwatch import ingest

        context = get_current_context()
        return ingest.guarded(ingest.validate, parsed, context=context, run_at=run_time(context))

    @task(pool=WAREHOUSE_POOL, outlets=[RAW_HHS_UC_DAILY], multiple_outputs=False)
    def load_rows(validated: dict) -> dict:
        """Load the rows into ``raw.hhs_uc_daily`` in one transaction; idempotent."""
        from returnwatch import ingest

        context = get_current_context()
        return ingest.load(validated, run_at=run_time(context), run_id=run_id(context))

    # Airflow's Task type keeps the function's parameter types for its __call__, which takes
    # the upstream XComArg at parse time: its stubs cannot express that (airflow.sdk Task).
    load_rows(validate_rows(parse_export(fetch_export())))  # type: ignore[arg-type]


hhs_uc_daily()
