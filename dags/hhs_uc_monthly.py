"""HHS monthly UC pages: discover → per file fetch → parse → validate → load.

An Airflow DAG file: wiring only. The DAG's shape (discover, then one mapped chain per file) is
``returnwatch.file_tasks.files_dag``; the steps are ``returnwatch.ingest``.
"""

from __future__ import annotations

from returnwatch.assets import RAW_HHS_UC_MONTHLY
from returnwatch.file_tasks import files_dag

SOURCE = "hhs_uc_monthly"

DOC = """
### HHS "Latest UC Data" monthly pages (one per fiscal year)

For **each fiscal year** page from `first_fiscal_year` (config/sources.yaml) to the current one:
fetch into the archive, parse the HTML tables (`sources/hhs_monthly.py`: months as columns
Oct…Sep, each label rendered twice), validate (`expectations/hhs_uc_monthly.json`) and load
`raw.hhs_uc_monthly` keeping every vintage (a changed month goes to `monitor.revisions`).
A new page emits the `raw.hhs_uc_monthly` Asset (→ `transform`).

**Schedule**: Mondays 13:00 UTC; a page that did not change answers "not modified" and its
chain is skipped.

**When it fails** (`docs/runbook.md`): a `file.*` task names the page, table and row it did
not recognise; the raw page stays in the archive, nothing was loaded; ops got one alert.
"""


# Schedules are UTC (publishing calendars, in the publisher's time zone, are the monitor's).
dag = files_dag(source=SOURCE, cron="0 13 * * 1", tags=["hhs", "monthly"], doc_md=DOC,
                outlet=RAW_HHS_UC_MONTHLY)
