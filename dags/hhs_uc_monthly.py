"""HHS monthly UC pages: discover → per file fetch → parse → validate → load.

An Airflow DAG file: a declaration only. Every source DAG's shape (discover, then one mapped
chain per file) is ``returnwatch.source_dags.source_dag``; the steps are ``returnwatch.ingest``.
"""

from __future__ import annotations

from returnwatch.assets import RAW_HHS_UC_MONTHLY
from returnwatch.source_dags import source_dag

SOURCE = "hhs_uc_monthly"

DOC = """
### HHS "Latest UC Data" monthly pages (one per fiscal year)

**Fetches** one page per fiscal year from `first_fiscal_year` to the current one,
`sources.hhs_uc_monthly` in `config/sources.yaml`:
https://www.hhs.gov/programs/social-services/unaccompanied-children/latest-uc-data-fy{fiscal_year}/index.html
(HHS's documented address per fiscal year; `discover_files` leaves out a year whose page does
not exist yet). Then for **each page** a `file` group: `fetch_file` into the archive,
`parse_file` (the HTML tables, `sources/hhs_uc_monthly/`: months as columns Oct…Sep, each label
rendered twice), `validate_file` (`expectations/hhs_uc_monthly.json`) and `load_file` into
`raw.hhs_uc_monthly`, keeping every vintage (a changed month goes to `monitor.revisions`). A
new page emits the `raw.hhs_uc_monthly` Asset (→ `transform`).

**Schedule**: Mondays at 13:00 UTC; a page that did not change answers "not modified" and its
chain is skipped.

**When it fails** ([runbook: hhs_uc_monthly](docs/runbook.md#hhs_uc_monthly), [sources found on
their pages](docs/runbook.md#sources-found-on-their-pages)): `discover_files` = the site is down
([task_failed](docs/runbook.md#task_failed), then
[source_unreachable](docs/runbook.md#source_unreachable)) or no page exists any more
([layout_changed](docs/runbook.md#layout_changed)); a `file.*` task failing names file, sheet,
row and expectation in its first log line ([layout_changed](docs/runbook.md#layout_changed),
[bad_value](docs/runbook.md#bad_value), [bad_file](docs/runbook.md#bad_file),
[validation_failed](docs/runbook.md#validation_failed)); only that file is affected, its raw
bytes stay in the archive, nothing of it was loaded, ops got one alert. Once the parser is
fixed, `returnwatch backfill` over its period loads it ([backfill](docs/runbook.md#backfill)).
"""


# Schedules are UTC (publishing calendars, in the publisher's time zone, are the monitor's).
dag = source_dag(
    source=SOURCE, cron="0 13 * * 1", tags=["hhs", "monthly"], doc_md=DOC, outlet=RAW_HHS_UC_MONTHLY
)
