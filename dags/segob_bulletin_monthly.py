"""SEGOB/UPM monthly bulletin (workbooks + microdata): discover → per file fetch → parse → validate → load.

An Airflow DAG file: wiring only. The DAG's shape (discover, then one mapped chain per file) is
``returnwatch.file_tasks.files_dag``; the steps are ``returnwatch.ingest``.
"""

from __future__ import annotations

from returnwatch.assets import RAW_SEGOB_BULLETIN
from returnwatch.file_tasks import files_dag

SOURCE = "segob_bulletin_monthly"

DOC = """
### SEGOB / UPM monthly migration bulletin (Mexico)

**Discovers**, for every bulletin year from `first_year` (config/sources.yaml) to this year,
the tables pages `CuadrosBOLETIN?Anual=YYYY&Secc=N` (Latin-1) of sections 3 and 5 and the
workbook links on them (names drift between years: `cuadro3.1.1.xls`, `cuadro_3.1.1.xls`),
plus section 5's per-event microdata CSV. Then for **each file**: fetch into the archive,
parse (`sources/segob.py`: months as columns, subtotal rows, `Subtotal` columns since 2021,
page-break header repeats, `-` for zero), validate (`expectations/segob_*.json`) and load
`raw.segob_*` keeping every vintage (the workbooks are overwritten in place each month with the
year to date; a changed month is written to `monitor.revisions`). A new file emits the
`raw.segob_bulletin` Asset (→ `transform`).

**Schedule**: daily 14:30 UTC. Month M appears around day 7 of month M+2; other days answer
"not modified" and the per-file chains are skipped. The site's TLS and pages break for weeks at
a time: then download by hand and run `returnwatch ingest segob_bulletin_monthly FILE`.

**When it fails** (`docs/runbook.md`): `discover_files` = the site is down (retried) or its
pages changed (one `layout_changed` alert); a `file.*` task names file, sheet, row and
expectation in its first log line; the raw file stays in the archive, nothing was loaded.
"""


# Schedules are UTC (publishing calendars, in the publisher's time zone, are the monitor's).
dag = files_dag(source=SOURCE, cron="30 14 * * *", tags=["segob", "mexico", "monthly"], doc_md=DOC,
                outlet=RAW_SEGOB_BULLETIN)
