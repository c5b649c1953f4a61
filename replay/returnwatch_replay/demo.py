"""``make demo``: replay a stretch of real history through the real DAGs, in one process.

What it does, in order:

1. prepares the project-local Airflow (SQLite metadata DB, the one-slot ``warehouse`` pool);
2. starts the replay mirror on 127.0.0.1 and points the sources' base URLs at it;
3. runs the monthly sources (``cbp_encounters_monthly``, ``segob_bulletin_monthly``,
   ``hhs_uc_monthly``) as of 20 March 2021, when the older CBP vintage was current;
4. for each replayed day: tells the mirror "today is D" (it then serves only what the
   publisher had published by D) and runs ``hhs_uc_daily`` and ``monitor`` through Airflow's
   ``dag.test()`` with D as the logical date, exactly as the scheduler would have run them;
   on 17 June 2025 the monthly sources run again and find CBP's and SEGOB's newer files,
   whose restated figures go to ``monitor.revisions``;
5. catches up to the end of the real file, runs ``transform`` (dbt through Cosmos) and the
   monitors once more, and prints a summary.

Everything runs in one Python process because one ``airflow dags test`` CLI call costs ~18 s
of start-up here, while ``dag.test()`` after the first costs well under a second.

The default stretch, 8–19 June 2025, holds a real event: healthdata.gov published nothing
for the days 11 to 16 June 2025, so the HHS source goes "late" and the demo raises one alert,
then resolves it when the figures resume. Running the demo again changes no row and sends
no alert: every file it would fetch is already in the archive.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

from returnwatch import airflow_env, settings

# The monthly sources' history first: the world as of 20 March 2021, when CBP's file of
# 2 March 2021 (the figures the Washington Post scraped) was current, SEGOB's bulletin ran to
# January 2021 and HHS's monthly pages to January 2021.
HISTORY_DAY = dt.date(2021, 3, 20)
MONTHLY_SOURCES = ("cbp_encounters_monthly", "segob_bulletin_monthly", "hhs_uc_monthly")
# ... then during the daily replay, the day after CBP's June 2025 release (16 June; SEGOB's
# bulletin through April 2025 came out on 7 June): the new vintages restate earlier months,
# and those restatements land in monitor.revisions.
MONTHLY_CHECK_DAY = dt.date(2025, 6, 17)
DEFAULT_FROM = dt.date(2025, 6, 8)
DEFAULT_TO = dt.date(2025, 6, 19)
# The day after the newest row of the real file (2025-12-21) is published: catch-up target.
DEFAULT_FINAL = dt.date(2025, 12, 22)
SOURCE_RUN_HOUR = 15  # the source DAGs' cron (UTC)
MONITOR_RUN_HOUR = 16


@dataclass
class DemoReport:
    days: int = 0
    dag_runs: int = 0
    failed_runs: list[str] = field(default_factory=list)
    seconds: float = 0.0


def run(start: dt.date = DEFAULT_FROM, end: dt.date = DEFAULT_TO,
        final: dt.date | None = DEFAULT_FINAL, *, verbose: bool = False,
        print_summary: bool = True, history: bool = True) -> DemoReport:
    """Replay ``start``..``end`` day by day, then ``final``; ``history`` adds the monthly
    sources (CBP, SEGOB, HHS monthly pages) as of March 2021 and June 2025."""
    began = time.monotonic()
    airflow_env.configure()
    if not verbose:
        os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    _say(f"Preparing the embedded Airflow in {settings.airflow_home()} …")
    airflow_env.prepare_metadata_db()
    _quiet_loggers(verbose)

    from returnwatch_replay.mirror import ReplayMirror

    report = DemoReport()
    with ReplayMirror(as_of=start) as mirror:
        _say(f"Replay mirror of the publishers on {mirror.url} (real published data, "
             "see include/replay/PROVENANCE.md)")
        os.environ.update(mirror.env())  # every source's base URL -> the mirror
        dags = load_dags()
        if history:
            _say(f"The monthly sources as they stood on {HISTORY_DAY:%d %B %Y} …")
            replay_day(dags, mirror, HISTORY_DAY, report, transform=False,
                       sources=MONTHLY_SOURCES, monitor=False)
        _say(f"Daily replay {start:%d %b} – {end:%d %b %Y} (HHS daily figures; the monthly "
             f"sources on {MONTHLY_CHECK_DAY:%d %b}) …")
        day = start
        while day <= end:
            monthly = MONTHLY_SOURCES if history and day == MONTHLY_CHECK_DAY else ()
            replay_day(dags, mirror, day, report, transform=False,
                       sources=("hhs_uc_daily", *monthly))
            day += dt.timedelta(days=1)
        if final and final > end:
            _say(f"Catching up to {final:%a %d %b %Y} (the end of the real file) …")
            replay_day(dags, mirror, final, report, transform=True)
    report.seconds = time.monotonic() - began
    if print_summary:
        print_demo_summary(report)
    if report.failed_runs:
        raise SystemExit(f"demo: {len(report.failed_runs)} DAG run(s) failed: {report.failed_runs}")
    return report


def load_dags() -> dict[str, Any]:
    """The project's DAGs, parsed as the dag-processor would (after refreshing dbt's manifest,
    from which Cosmos renders the transform DAG)."""
    from airflow.dag_processing.dagbag import DagBag

    from returnwatch import transform

    transform.ensure_manifest()

    bag = DagBag(dag_folder=str(settings.PROJECT_DIR / "dags"))
    if bag.import_errors:
        raise SystemExit(f"DAG import errors: {bag.import_errors}")
    return bag.dags


def replay_day(dags: dict[str, Any], mirror: Any, day: dt.date, report: DemoReport, *,
               transform: bool, sources: tuple[str, ...] = ("hhs_uc_daily",),
               monitor: bool = True) -> None:
    """Run one replayed day's DAGs, with the mirror showing what was published by then."""
    mirror.set_as_of(day)
    source_at = dt.datetime.combine(day, dt.time(SOURCE_RUN_HOUR), tzinfo=dt.UTC)
    monitor_at = dt.datetime.combine(day, dt.time(MONITOR_RUN_HOUR), tzinfo=dt.UTC)
    runs = [(source, source_at) for source in sources]
    if transform:
        runs.append(("transform", source_at + dt.timedelta(minutes=30)))
    if monitor:
        runs.append(("monitor", monitor_at))
    states = []
    for dag_id, at in runs:
        began = time.monotonic()
        state = run_dag(dags[dag_id], at)
        report.dag_runs += 1
        states.append(f"{dag_id} {state} ({time.monotonic() - began:.1f} s)")
        if state != "success":
            report.failed_runs.append(f"{dag_id}@{at:%Y-%m-%d}")
    report.days += 1
    _say(f"  {day:%a %d %b %Y}: " + ", ".join(states))


def run_dag(dag: Any, at: dt.datetime) -> str:
    run = dag.test(logical_date=at, run_after=at)
    return str(getattr(run.state, "value", run.state))


def print_demo_summary(report: DemoReport) -> None:
    from returnwatch import summary

    print()
    print(summary.render(demo_seconds=report.seconds, dag_runs=report.dag_runs))


def _quiet_loggers(verbose: bool) -> None:
    if verbose:
        return
    for name in ("airflow", "great_expectations", "cosmos", "alembic", "httpx", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _say(text: str) -> None:
    print(text, flush=True)
