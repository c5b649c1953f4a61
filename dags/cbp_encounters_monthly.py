"""CBP nationwide encounters (monthly CSVs): discover → per file fetch → parse → validate → load.

An Airflow DAG file: wiring only. The DAG's shape (discover, then one mapped chain per file) is
``returnwatch.file_tasks.files_dag``; the steps are ``returnwatch.ingest``.
"""

from __future__ import annotations

from returnwatch.assets import RAW_CBP_ENCOUNTERS
from returnwatch.file_tasks import files_dag

SOURCE = "cbp_encounters_monthly"

DOC = """
### CBP nationwide encounters (monthly)

**Discovers** the current CSV links on CBP's *Nationwide Encounters* page (their folder and
name change with every upload, so they are read off the page, never built), then for **each
file** (AOR, state, Southwest border) fetches it into the archive, parses it
(`sources/cbp.py`: `UC / Single Minors` vs `UAC`, `2023 (FYTD)`, OCT–DEC of FY−1, float
counts), validates it (`expectations/cbp_encounters_*.json`) and loads `raw.cbp_encounters_*`
keeping every vintage. A figure that changed since the previous vintage is written to
`monitor.revisions`. A new file emits the `raw.cbp_encounters` Asset (→ `transform`).

**Schedule**: daily 14:00 UTC. CBP publishes around mid-month; on other days every file
answers "not modified" and the per-file chains are skipped (normal).

**When it fails** (`docs/runbook.md`): `discover_files` failing on a layout = the landing page
changed (ops got one `layout_changed` alert); a `file.*` task failing names the file, row and
expectation in its first log line; the raw file stays in the archive, nothing was loaded.
"""


# Schedules are UTC (publishing calendars, in the publisher's time zone, are the monitor's).
dag = files_dag(source=SOURCE, cron="0 14 * * *", tags=["cbp", "monthly"], doc_md=DOC,
                outlet=RAW_CBP_ENCOUNTERS)
