"""Session fixtures of the deployment tests: the production stack on the loopback, and one run
of the whole pipeline through it.

- ``replay_mirror``: the publishers' sites (real published files) served from this process.
- ``production_stack``: Debian's PostgreSQL and Redis, and Airflow with the CeleryExecutor and
  one worker, with docker-compose.yaml's shared settings (``tests/support/production_stack.py``).
  It has ``api_url``, ``username`` / ``password`` (the UI's admin), ``data_dir``
  (RETURNWATCH_DATA_DIR), ``env``, ``airflow(*args)`` (the CLI), ``api`` (REST with a JWT) and
  ``metadata_db()``. It runs until the session ends, so later tests (the browser test) can open
  the UI on what the pipeline left.
- ``pipeline_ran``: every DAG once, the way a first start of a deployment runs them, with the
  sources pointed at the mirror; returns a ``PipelineReport`` (each DAG's run and final state,
  the wall time, the stack's peak memory).

How the pipeline is driven, and why:

1. The DAGs start paused (AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION). Unpausing a DAG with a
   cron timetable and ``catchup=False`` makes the scheduler run its latest cron slot at once.
   The test triggers each DAG for exactly that slot (the API's ``next_dagrun_logical_date``),
   so the scheduler finds the slot taken and adds no run of its own: one run per DAG, each
   with the logical date the scheduler itself would have used.
2. Those slots are "now", so the mirror serves the sites as of today: everything it holds
   (its real files end in December 2025; SEGOB's section 5 is constructed, see
   include/replay/PROVENANCE.md). An older mirror date would serve fewer files but would judge
   a 2025 world with today's clock.
3. The three monthly sources run first, side by side; ``transform`` is unpaused only then, and
   ``hhs_uc_daily`` runs last: its Asset event is the one that triggers ``transform`` through
   the scheduler (a paused DAG queues no Asset event), so ``transform`` runs once over all four
   sources instead of once per source. ``monitor`` runs after ``transform``.
4. Latency benchmark: just before the sources are triggered, the mirror steps back to
   ``pipeline_latency.HELD_BACK_AFTER`` and then publishes the newer files at a known instant
   (``ReplayMirror.publish_at``); the tasks send alerts to a Slack stand-in, whose receive time
   ends the measurement (``tests/support/pipeline_latency.py`` says how, and why the schedule's
   own wait is bounded rather than waited for).
5. Every wait is bounded; when one gives up it names the runs still going with their task
   states and the scheduler's and worker's log tails.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from returnwatch_replay.mirror import ReplayMirror
from tests.support import pipeline_latency
from tests.support.production_stack import (
    ALL_DAGS,
    DAILY_SOURCE,
    MONTHLY_SOURCES,
    PipelineDriver,
    PipelineReport,
    ProductionStack,
    missing_services,
)
from tests.support.slack_standin import SlackStandIn

# Two task processes at a time on this 2-core machine (docker-compose's default is 4): the
# one-slot `warehouse` pool serialises the writers anyway; the second process fetches files.
WORKER_CONCURRENCY = 2

# Test-only Airflow settings on top of docker-compose.yaml's (the stack's env lists them last).
# None at the moment: the worker's import preload and the heartbeat interval this test needed
# are production settings now, in the compose file.
TUNING: dict[str, str] = {}

# Bounds of the pipeline's waits (seconds). Measured here on 2 cores: the monthly sources
# ~170 s together, hhs_uc_daily ~5 s, transform ~85 s, monitor ~13 s; with other jobs on the
# machine (load average 10 on 2 cores) the monthly sources passed 420 s, so a wider bound.
MONTHLY_SECONDS = 900
DAILY_SECONDS = 120
TRANSFORM_SECONDS = 600
MONITOR_SECONDS = 120


@pytest.fixture(scope="session")
def replay_mirror() -> Iterator[ReplayMirror]:
    """The publishers' sites as of today (see the module docstring), on 127.0.0.1."""
    with ReplayMirror(as_of=dt.datetime.now(dt.UTC).date()) as mirror:
        yield mirror


@pytest.fixture(scope="session")
def stack_slack() -> Iterator[SlackStandIn]:
    """Slack for the stack's tasks: the loopback stand-in, with its fake token."""
    with SlackStandIn() as standin:
        yield standin


@pytest.fixture(scope="session")
def production_stack(
    replay_mirror: ReplayMirror,
    stack_slack: SlackStandIn,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[ProductionStack]:
    reason = missing_services()
    if reason:
        pytest.skip(f"production stack not available here: {reason}")
    from returnwatch import transform

    # The dag-processor draws the transform DAG from dbt's manifest.
    transform.ensure_manifest()
    # pytest keeps the folders of the last few sessions (logs, warehouse) and removes older ones.
    workdir = tmp_path_factory.mktemp("production-stack")
    stack = ProductionStack(
        workdir,
        # What an operator's .env would say for a dry run against the mirror (.env.example).
        variables={**replay_mirror.env(), "AIRFLOW_WORKER_CONCURRENCY": str(WORKER_CONCURRENCY)},
        # Alerts go to the Slack stand-in, where the latency benchmark sees them arrive (a
        # deployment sets SLACK_BOT_TOKEN in .env; the base URL exists for tests only).
        tuning={
            **TUNING,
            "SLACK_BOT_TOKEN": stack_slack.token,
            "RETURNWATCH_SLACK_BASE_URL": stack_slack.base_url,
        },
        expected_dags=ALL_DAGS,
    )
    with stack:
        print(f"\nproduction stack in {workdir}: {stack.api_url} (logs in {stack.logs})")
        request.session.stash[RUNNING_STACK] = stack
        yield stack


# The stack is shared by every test in this folder (the browser test opens the UI on what the
# pipeline left), but the rest of `make test` should not run beside an idle Airflow holding
# ~2 GB and polling its database: it stops after the last test here, not at the session's end.
RUNNING_STACK = pytest.StashKey[ProductionStack]()
HERE = Path(__file__).parent


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    stack = item.session.stash.get(RUNNING_STACK, None)
    if stack is None:
        return
    later = item.session.items[item.session.items.index(item) + 1 :]
    if not any(HERE in Path(other.path).parents for other in later):
        stack.stop()  # the fixture's own teardown at the session's end then finds it stopped


@pytest.fixture(scope="session")
def pipeline_ran(production_stack: ProductionStack, replay_mirror: ReplayMirror) -> PipelineReport:
    stack = production_stack
    report = PipelineReport(
        mirror_as_of=replay_mirror.as_of,
        stack_start_seconds=stack.timings.get("start (total)", 0.0),
    )
    # The latency benchmark: the files published after HELD_BACK_AFTER appear at a known
    # instant, just before the source DAGs are triggered (tests/support/pipeline_latency.py).
    today = replay_mirror.as_of
    replay_mirror.set_as_of(pipeline_latency.HELD_BACK_AFTER)
    report.held_back = pipeline_latency.served_sha256s(
        replay_mirror.env(), MONTHLY_SOURCES, DAILY_SOURCE
    )
    report.published_at = dt.datetime.now(dt.UTC)
    replay_mirror.publish_at(today, at=report.published_at)
    began = time.monotonic()
    try:
        driver = PipelineDriver(stack)
        monthly = {dag_id: driver.trigger_latest_slot(dag_id) for dag_id in MONTHLY_SOURCES}
        report.runs.update(driver.wait(monthly, MONTHLY_SECONDS))

        driver.unpause("transform")
        daily = {DAILY_SOURCE: driver.trigger_latest_slot(DAILY_SOURCE)}
        report.runs.update(driver.wait(daily, DAILY_SECONDS))
        transform_run = driver.wait_for_new_run("transform", timeout=60)
        report.runs.update(driver.wait({"transform": transform_run}, TRANSFORM_SECONDS))

        report.runs.update(
            driver.wait({"monitor": driver.trigger_latest_slot("monitor")}, MONITOR_SECONDS)
        )
        # A cron slot that came due during the run (the test crossed 15:00 UTC, say) has its own
        # run: let it end, then pause everything so nothing writes the warehouse from now on.
        driver.settle()
    finally:
        report.seconds = time.monotonic() - began
        report.memory = stack.memory.report()
    return report
