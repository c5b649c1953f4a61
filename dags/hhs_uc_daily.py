"""HHS/DHS daily figures on unaccompanied children (one export, every day in it): discover →
fetch → parse → validate → load.

An Airflow DAG file: a declaration only. Every source DAG's shape (discover, then one mapped
chain per file) is ``returnwatch.source_dags.source_dag``; this source lists its one file at a
fixed address. The steps are ``returnwatch.ingest``.
"""

from __future__ import annotations

from returnwatch.assets import RAW_HHS_UC_DAILY
from returnwatch.source_dags import source_dag

SOURCE = "hhs_uc_daily"

DOC = """
### HHS/DHS daily figures on unaccompanied children (healthdata.gov `ehpz-xc9n`)

**Fetches** the dataset's CSV export, `sources.hhs_uc_daily` in `config/sources.yaml`:
https://healthdata.gov/api/views/ehpz-xc9n/rows.csv?accessType=DOWNLOAD (one file, every day
in it). `discover_files` lists that one file (its address is fixed: no request), then the
`file` group: `fetch_file` keeps the bytes in the archive (a conditional GET), `parse_file`
reads them, `validate_file` checks them with `expectations/hhs_uc_daily.json` and `load_file`
loads `raw.hhs_uc_daily`; a new file emits the `raw.hhs_uc_daily` Asset, which triggers
`transform`.

**Schedule**: daily at 15:00 UTC. The publisher posts Sunday–Thursday; a run on other days finds
the same file again, records the check and, once that file is in the warehouse, skips the
rest (that is normal, not a failure). A file received but never loaded (a killed worker) is
loaded by the next run.

**When it fails** ([runbook: hhs_uc_daily](docs/runbook.md#hhs_uc_daily)): `file.fetch_file`
failing = the site is down or refused us (retried, then ops are told:
[task_failed](docs/runbook.md#task_failed); if it lasts,
[source_unreachable](docs/runbook.md#source_unreachable)). `file.parse_file` /
`file.validate_file` failing = the file changed layout or broke an expectation
([layout_changed](docs/runbook.md#layout_changed), [bad_value](docs/runbook.md#bad_value),
[bad_file](docs/runbook.md#bad_file),
[validation_failed](docs/runbook.md#validation_failed)): the first log line names file, row
and expectation, the raw file stays in the archive, the warehouse is unchanged, ops got one
alert. Fix the parser or the suite, then re-run the task. No new figures for days:
[freshness_late](docs/runbook.md#freshness_late).
"""


# Schedules are UTC (publishing calendars, in the publisher's time zone, are the monitor's).
dag = source_dag(
    source=SOURCE, cron="0 15 * * *", tags=["hhs", "daily"], doc_md=DOC, outlet=RAW_HHS_UC_DAILY
)
