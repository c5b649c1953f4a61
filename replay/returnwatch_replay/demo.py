"""``make demo``: replay a stretch of real history through the real DAGs, as production runs them.

What this module owns: the demo's replay plan (which days, which source DAGs on each), the
scheduler stand-in that starts the DAGs as Airflow's scheduler would (source DAGs at their
cron time, then ``transform`` on the day's ``raw.*`` Assets, then ``monitor`` on ``marts``),
and what the demo prints. Every run goes through ``dag.test()``, in the demo's process, or for
a day's source runs also in a second one forked from it (``SourceLane``: two worker slots).

The days replayed (20 March 2021; 7, 16, 17, 18 June 2025; with ``final``, a catch-up day such
as 22 December 2025) and what each shows: docs/replay.md#the-demo. Running the demo again changes no row and sends no alert.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import io
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from returnwatch import airflow_env, settings, transform

# The monthly sources' history first: the world as of 20 March 2021.
HISTORY_DAY = dt.date(2021, 3, 20)
MONTHLY_SOURCES = ("cbp_encounters_monthly", "segob_bulletin_monthly", "hhs_uc_monthly")
DAILY_SOURCE = "hhs_uc_daily"
DEFAULT_FROM = dt.date(2025, 6, 7)
DEFAULT_TO = dt.date(2025, 6, 18)
# The days of that stretch the demo replays (``--from``/``--to`` replay every day instead).
# Each day a source loads a new file costs a dbt build, so only the days that tell the
# story: SEGOB's April 2025 (7 June), CBP's May 2025 and HHS's figures through 10 June (16
# June), HHS's figures still missing (17 June), then resuming (18 June).
DEFAULT_DAYS = (
    dt.date(2025, 6, 7),
    dt.date(2025, 6, 16),
    dt.date(2025, 6, 17),
    dt.date(2025, 6, 18),
)
# Days of the stretch on which the monthly sources check their sites: SEGOB's bulletin through
# April 2025 came out on 7 June 2025, CBP's file through May 2025 on 16 June 2025.
MONTHLY_CHECKS = {
    dt.date(2025, 6, 7): MONTHLY_SOURCES,
    dt.date(2025, 6, 16): ("cbp_encounters_monthly",),
}
# The day after the newest row of the real daily file (2025-12-21) is published: the catch-up
# day `returnwatch demo --final 2025-12-22` adds. Not by default: it tells nothing the days
# above have not (no alert opens or resolves) and costs a dbt build (~9 s of a ~90 s demo).
REAL_FILE_END_DAY = dt.date(2025, 12, 22)
DEFAULT_FINAL: dt.date | None = None
# How long after the event that triggers it an asset-scheduled run starts (the scheduler's
# loop plus queueing: a few minutes is what production shows).
TRIGGER_DELAY = dt.timedelta(minutes=5)
TRANSFORM = "transform"
MONITOR = "monitor"


@dataclass
class DemoReport:
    days: int = 0
    dag_runs: int = 0
    failed_runs: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # phase -> seconds (set-up, history, daily replay, catch-up, summary)
    phases: dict[str, float] = field(default_factory=dict)


@dataclass
class RunResult:
    dag_id: str
    at: dt.datetime
    state: str
    reason: str  # "cron" or the asset(s) that triggered it
    emitted: frozenset[str] = frozenset()  # names of the Assets this run updated
    seconds: float = 0.0


def run(
    start: dt.date = DEFAULT_FROM,
    end: dt.date = DEFAULT_TO,
    final: dt.date | None = DEFAULT_FINAL,
    *,
    verbose: bool = False,
    print_summary: bool = True,
    history: bool = True,
    days: tuple[dt.date, ...] | None = DEFAULT_DAYS,
) -> DemoReport:
    """Replay ``days`` (every day of ``start``..``end`` when None), then ``final``;
    ``history`` adds the monthly sources as of March 2021 and their checks during the stretch
    (``MONTHLY_CHECKS``)."""
    began = time.monotonic()
    phase_began = began
    report = DemoReport()

    def phase(name: str) -> None:
        nonlocal phase_began
        now = time.monotonic()
        report.phases[name] = now - phase_began
        phase_began = now

    airflow_env.configure()
    if not verbose:
        quiet_environment()
    _say(f"Preparing the embedded Airflow in {settings.airflow_home()} …")
    import airflow  # noqa: F401  (sets up Airflow's logging, which quiet_logging then trims)

    if not verbose:
        quiet_logging()

    from returnwatch_replay.mirror import ReplayMirror

    with contextlib.ExitStack() as stack:
        stack.callback(gc.unfreeze)  # whatever happens (settle_the_heap)
        # Set-up on two cores: a child process migrates the metadata DB (and one parses the dbt
        # project, if it changed since `make install` built its manifest or that parse was for
        # another data folder) while this one loads what the runs will import anyway.
        metadata_db = stack.enter_context(aside("airflow_env.prepare_metadata_db()"))
        manifest = (
            stack.enter_context(
                aside("transform.ensure_manifest(quiet=True, for_this_warehouse=True)")
            )
            if transform.manifest_is_stale(for_this_warehouse=True)
            else None
        )
        mirror = stack.enter_context(ReplayMirror(as_of=(days or (start,))[0]))
        _say(
            f"Replay mirror of the publishers on {mirror.url} (real published data, "
            "see include/replay/PROVENANCE.md)"
        )
        os.environ.update(mirror.env())  # every source's base URL -> the mirror
        load_what_the_runs_import()
        if manifest:
            manifest.wait()
        dags = load_dags(quiet=not verbose)  # the manifest is fresh: dbt does not parse again
        metadata_db.wait()
        scheduler = SchedulerStandIn(dags, mirror, report, verbose=verbose)
        stack.enter_context(dag_files_parsed_once())
        stack.enter_context(overridden_dependencies_analysed_once())
        stack.enter_context(test_loop_waits_briefly())
        stack.enter_context(metadata_db_synced_at_checkpoints())
        dag_files_synced()
        settle_the_heap()
        # Forked now, warm and before any run has started a thread: see SourceLane.
        scheduler.lane = stack.enter_context(SourceLane.forked(dags))
        phase("set-up")
        if history:
            _say(f"The monthly sources as they stood on {HISTORY_DAY:%d %B %Y} …")
            scheduler.replay_day(HISTORY_DAY, MONTHLY_SOURCES, monitor_cron=False)
            phase("history (March 2021)")
        if days is None:
            days = tuple(start + dt.timedelta(days=n) for n in range((end - start).days + 1))
        _say(
            f"June 2025, {len(days)} days: HHS's daily figures each day; SEGOB's bulletin "
            "(7 Jun) and CBP's release (16 Jun) on their release days …"
        )
        for day in days:
            monthly = MONTHLY_CHECKS.get(day, ()) if history else ()
            scheduler.replay_day(day, (*monthly, DAILY_SOURCE))
        phase("daily replay")
        if final and final > end:
            _say(f"Catching up to {final:%a %d %b %Y} (the end of the real file) …")
            scheduler.replay_day(final, (DAILY_SOURCE,))
            phase("catch-up")
    report.seconds = time.monotonic() - began
    if print_summary:
        print_demo_summary(report)
        phase("summary")
    if report.failed_runs:
        raise SystemExit(f"demo: {len(report.failed_runs)} DAG run(s) failed: {report.failed_runs}")
    return report


def load_dags(*, quiet: bool = False) -> dict[str, Any]:
    """The project's DAGs, parsed as the dag-processor would (after refreshing dbt's manifest,
    from which Cosmos renders the transform DAG)."""
    from airflow.dag_processing.dagbag import DagBag

    transform.ensure_manifest(quiet=quiet)

    bag = DagBag(dag_folder=str(settings.PROJECT_DIR / "dags"))
    if bag.import_errors:
        raise SystemExit(f"DAG import errors: {bag.import_errors}")
    return bag.dags


class Aside:
    """One set-up step (Python code using ``returnwatch``'s modules) in a child process."""

    def __init__(self, code: str) -> None:
        import subprocess
        import sys

        self.code = code
        self.process = subprocess.Popen(
            [sys.executable, "-c", f"from returnwatch import airflow_env, transform\n{code}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.done = False

    def wait(self) -> None:
        """Return once the step is done; stop the demo with the child's output if it failed."""
        output, _ = self.process.communicate(timeout=ASIDE_SECONDS)
        self.done = True
        if self.process.returncode != 0:
            raise SystemExit(
                f"demo: set-up step {self.code} failed (exit {self.process.returncode}):\n"
                f"{output[-3000:]}"
            )


# Far above the ~6 s each step takes; only a wedged child gets here.
ASIDE_SECONDS = 600


@contextlib.contextmanager
def aside(code: str) -> Iterator[Aside]:
    """Run ``code`` in a child process; the caller ``wait()``s before relying on it. Leaving
    early (an error elsewhere) stops the child."""
    step = Aside(code)
    try:
        yield step
    finally:
        if not step.done:
            step.process.kill()
            step.process.wait()


def load_what_the_runs_import() -> None:
    """Import the libraries the first runs load (dbt and Cosmos, GX's context, matplotlib) while
    the set-up's child processes work, instead of after them, in the first runs."""
    import cosmos.operators.watcher  # noqa: F401
    import dbt.cli.main  # noqa: F401
    import matplotlib.figure  # noqa: F401

    from returnwatch import quality

    quality.warm_up()


@contextlib.contextmanager
def dag_files_parsed_once() -> Iterator[None]:
    """Let ``dag.test()`` parse and store the DAG files once, not on every call.

    ``dag.test()`` re-parses the whole DAG folder and writes every DAG to the metadata DB on
    each call (so that sibling DAGs exist, apache/airflow#64884): with Cosmos drawing the
    transform DAG that is seconds of CPU per run, more than most runs themselves. The DAG files
    do not change while the demo runs, so the first call's parse is kept and its write is not
    repeated; the scheduler in production parses on its own interval, not per run, too.
    """
    from unittest import mock

    from airflow.dag_processing import dagbag as dagbag_module

    parsed: dict[str, Any] = {}
    real_bag, real_sync = dagbag_module.BundleDagBag, dagbag_module.sync_bag_to_db

    def bag_once(*args: Any, bundle_name: str, **kwargs: Any) -> Any:
        if bundle_name not in parsed:
            parsed[bundle_name] = real_bag(*args, bundle_name=bundle_name, **kwargs)
            parsed[bundle_name].synced = False
        return parsed[bundle_name]

    def sync_once(bag: Any, *args: Any, **kwargs: Any) -> None:
        if not getattr(bag, "synced", False):
            real_sync(bag, *args, **kwargs)
            bag.synced = True

    with (
        mock.patch.object(dagbag_module, "BundleDagBag", bag_once),
        mock.patch.object(dagbag_module, "sync_bag_to_db", sync_once),
    ):
        yield


def dag_files_synced() -> None:
    """Parse the DAG folder and store its DAGs in the metadata DB, as ``dag.test()`` does first.

    Run inside ``dag_files_parsed_once`` before ``SourceLane`` forks, so that neither process
    writes the DAGs again (two first runs at once would both insert them).
    """
    from airflow.dag_processing import dagbag as dagbag_module
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.utils.session import create_session

    manager = DagBundlesManager()
    with create_session() as session:
        manager.sync_bundles_to_db(session=session)
    for bundle in manager.get_all_dag_bundles():
        if not bundle.is_initialized:
            bundle.initialize()
        bag = dagbag_module.BundleDagBag(
            dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name
        )
        dagbag_module.sync_bag_to_db(bag, bundle.name, bundle.version)


@contextlib.contextmanager
def overridden_dependencies_analysed_once() -> Iterator[None]:
    """Let the in-process execution API analyse each overridden dependency once, not per request.

    ``dag.test()`` serves Airflow's execution API in-process, with its authentication replaced
    through FastAPI's ``dependency_overrides``; FastAPI then re-analyses the signature of every
    overridden dependency on every request (``get_dependant``), ~25% of Airflow's own cost per
    task instance here (~12,000 requests a demo). The analysis depends only on its arguments,
    so it is kept; production serves the API without overrides. Lambdas are not kept: Airflow
    makes a new one per task instance, holding that task's DAG bag.
    """
    from unittest import mock

    from fastapi.dependencies import utils

    real = utils.get_dependant
    analysed: dict[tuple, Any] = {}

    def get_dependant(**arguments: Any) -> Any:
        if getattr(arguments["call"], "__name__", "") == "<lambda>":
            return real(**arguments)
        key = tuple(
            sorted(
                (name, tuple(value) if isinstance(value, list) else value)
                for name, value in arguments.items()
            )
        )
        try:
            if key not in analysed:
                analysed[key] = real(**arguments)
        except TypeError:  # an unhashable dependency: analysed each time, as before
            return real(**arguments)
        return analysed[key]

    with mock.patch.object(utils, "get_dependant", get_dependant):
        yield


@contextlib.contextmanager
def test_loop_waits_briefly() -> Iterator[None]:
    """Let ``dag.test()``'s loop wait 0.05 s, not 1 s, when no task instance is ready yet.

    With nothing scheduled but something unfinished (a mapped group whose expansion the next
    pass settles, a watcher rescheduled for later), ``dag.test()`` sleeps a whole second before
    looking again; the demo met that ~3 times a run, seconds in all, while its CPU was idle.
    """
    import inspect

    from airflow.sdk.definitions.dag import DAG

    with loop_waits_briefly(inspect.unwrap(DAG.test).__code__):
        yield


@contextlib.contextmanager
def loop_waits_briefly(loop: Any) -> Iterator[None]:
    """Shorten to ``TEST_LOOP_WAIT_SECONDS`` the ``time.sleep`` calls made by the code object
    ``loop`` itself: a lock's back-off or a retry elsewhere sleeps as long as it asked."""
    import sys
    from unittest import mock

    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        if sys._getframe(1).f_code is loop:
            seconds = min(seconds, TEST_LOOP_WAIT_SECONDS)
        real_sleep(seconds)

    with mock.patch.object(time, "sleep", sleep):
        yield


TEST_LOOP_WAIT_SECONDS = 0.05


@contextlib.contextmanager
def metadata_db_synced_at_checkpoints() -> Iterator[None]:
    """Let the demo's SQLite metadata DB skip the disk flush on each commit
    (``PRAGMA synchronous=NORMAL``, SQLite's advice for its write-ahead log, which Airflow
    turns on): Airflow commits ~15,000 times a demo, ~0.2 ms of waiting for the disk each here.
    What is lost on a power cut is the last commits of a throwaway demo's run history; an
    application crash loses nothing. Production's metadata DB is PostgreSQL."""
    from airflow import settings as airflow_settings
    from sqlalchemy import event

    engine = airflow_settings.engine
    if engine is None or engine.dialect.name != "sqlite":
        yield
        return

    def synchronous_normal(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(engine, "connect", synchronous_normal)
    engine.dispose()  # the pool's open connections were made without it
    try:
        yield
    finally:
        event.remove(engine, "connect", synchronous_normal)
        engine.dispose()


def settle_the_heap() -> None:
    """Collect garbage, then exempt what survived from later collections (``gc.freeze``).

    In production each task runs in a fresh process; the demo runs ~430 of them in two, whose
    heap (Airflow, dbt, GX, pandas and the DAGs) every full collection walks again, among them
    the one Cosmos forces after each dbt run: ~0.7 s a transform. What survives a set-up or a
    replayed day is long-lived, so it is frozen once instead; ``run`` unfreezes it at the end,
    or the interpreter's exit would leave it (DuckDB's bindings report it as leaked).
    """
    gc.collect()
    gc.freeze()


class SchedulerStandIn:
    """Starts the DAGs of a replayed day the way Airflow's scheduler would (see the module
    docstring): sources at their cron time, then whatever their asset events trigger, then the
    crons due later that day."""

    def __init__(
        self, dags: dict[str, Any], mirror: Any, report: DemoReport, *, verbose: bool = False
    ) -> None:
        self.dags = dags
        self.mirror = mirror
        self.report = report
        self.verbose = verbose
        self._conditions: dict[str, Any] | None = None
        self.lane: SourceLane | None = None  # a second worker slot for the day's source runs
        # monitor.alerts.seq of the newest alert already told (a demo run again tells only new ones)
        self._alerts_seen = 0
        self._alerts_seen = max((seq for seq, *_ in self._alerts_since()), default=0)

    def replay_day(
        self, day: dt.date, sources: Iterable[str], *, monitor_cron: bool = True
    ) -> list[RunResult]:
        """Run one replayed day; print its line (and the alerts its runs sent) after it."""
        began = time.monotonic()
        self.mirror.set_as_of(day)
        captured = io.StringIO()
        # Alerts printed by the console delivery come after the day's line, not inside it.
        with contextlib.nullcontext() if self.verbose else contextlib.redirect_stdout(captured):
            results = self._run_day(day, sources, monitor_cron=monitor_cron)
        self.report.days += 1
        settle_the_heap()
        _say(f"  {day:%a %d %b %Y}  {describe_day(results)}  ({time.monotonic() - began:.1f} s)")
        if captured.getvalue():  # the console's alerts (no Slack token)
            print(captured.getvalue(), end="", flush=True)
        for line in self.alerts_sent_elsewhere():
            _say(line)
        return results

    def alerts_sent_elsewhere(self) -> list[str]:
        """One line per alert the day's runs sent to Slack (the console prints its own)."""
        lines = []
        for seq, event, audience, via, channel, text in self._alerts_since():
            self._alerts_seen = max(self._alerts_seen, seq)
            if via and via != "console":
                headline = text.strip().splitlines()[0] if text.strip() else ""
                lines.append(
                    f"    alert {event} to {audience} (sent via {via} to {channel}): {headline}"
                )
        return lines

    def _alerts_since(self) -> list[tuple]:
        import duckdb

        from returnwatch import warehouse

        if not settings.warehouse_path().exists():
            return []
        try:
            with warehouse.session(read_only=True) as con:
                return con.execute(
                    "select seq, event, audience, delivered_via, channel, text "
                    "from monitor.alerts where seq > ? order by seq",
                    [self._alerts_seen],
                ).fetchall()
        except duckdb.CatalogException:  # before the first monitor run there is no outbox
            return []

    def _run_day(
        self, day: dt.date, sources: Iterable[str], *, monitor_cron: bool
    ) -> list[RunResult]:
        results = self._run_sources(
            sorted(sources, key=lambda s: cron_time(self.dags[s], day)), day
        )
        pending = [r for r in results if r.emitted]
        while pending:  # asset events -> the runs they trigger, until nothing new is emitted
            emitted = frozenset().union(*(r.emitted for r in pending))
            at = max(r.at for r in pending) + TRIGGER_DELAY
            pending = []
            for dag_id in self.triggered_by(emitted):
                result = self.run(dag_id, at, ", ".join(sorted(emitted)))
                results.append(result)
                if result.emitted:
                    pending.append(result)
        if monitor_cron:
            at = cron_time(self.dags[MONITOR], day)
            if all(r.at < at for r in results):
                results.append(self.run(MONITOR, at, "cron"))
        return results

    def _run_sources(self, sources: list[str], day: dt.date) -> list[RunResult]:
        """The day's source DAG runs, in cron order; on two worker slots when there is a lane.

        The sources are independent of one another, as on production's workers: this process
        takes them from the front of the list, the lane from the back, each the next one as
        soon as it is free. Results come back in cron order, as the day's line tells them.
        """
        runs = [(dag_id, cron_time(self.dags[dag_id], day)) for dag_id in sources]
        if self.lane is None or len(runs) < 2:
            return [self.run(dag_id, at, "cron") for dag_id, at in runs]
        self.lane.share(runs)
        results = [self.run(*runs[i], "cron") for i in iter(self.lane.take_front, None)]
        results += [self._recorded(*outcome, reason="cron") for outcome in self.lane.outcomes()]
        return sorted(results, key=lambda r: (r.at, r.dag_id))

    def triggered_by(self, emitted: frozenset[str]) -> list[str]:
        """DAGs whose asset condition (their schedule) is met by Assets ``emitted`` just now,
        evaluated as the scheduler evaluates it."""
        from airflow.assets.evaluation import AssetEvaluator
        from airflow.serialization.definitions.assets import SerializedAssetUniqueKey
        from airflow.serialization.serialized_objects import DagSerialization
        from airflow.utils.session import create_session

        if self._conditions is None:  # as the scheduler holds them: serialized
            self._conditions = {
                dag_id: DagSerialization.deserialize_dag(
                    DagSerialization.serialize_dag(dag)
                ).timetable.asset_condition
                for dag_id, dag in sorted(self.dags.items())
                # a time-only schedule: assets never start it
                if _asset_keys(getattr(dag.timetable, "asset_condition", None))
            }
        triggered = []
        with create_session() as session:
            for dag_id, condition in self._conditions.items():
                statuses = {
                    SerializedAssetUniqueKey(name=key.name, uri=key.uri): key.name in emitted
                    for key in _asset_keys(condition)
                }
                if AssetEvaluator(session).run(condition, statuses):
                    triggered.append(dag_id)
        return triggered

    def run(self, dag_id: str, at: dt.datetime, reason: str) -> RunResult:
        return self._recorded(*run_here(self.dags, dag_id, at), reason=reason)

    def _recorded(self, ran: Ran, output: str, *, reason: str) -> RunResult:
        """Count a finished run (in this process or the lane) and what its Assets triggered."""
        if output:  # the lane's console output, printed where this process's goes
            print(output, end="", flush=True)
        self.report.dag_runs += 1
        if ran.state != "success":
            self.report.failed_runs.append(f"{ran.dag_id}@{ran.at:%Y-%m-%d %H:%M}")
            if ran.error:
                _say(ran.error)
        emitted = (
            emitted_assets(ran.dag_id, ran.run_id, since=ran.began_at)
            if ran.run_id
            else frozenset()
        )
        return RunResult(
            dag_id=ran.dag_id,
            at=ran.at,
            state=ran.state,
            reason=reason,
            emitted=emitted,
            seconds=ran.seconds,
        )


@dataclass(frozen=True)
class Ran:
    """One ``dag.test()`` as it ended, in whichever process ran it."""

    dag_id: str
    at: dt.datetime
    state: str
    run_id: str | None
    began_at: dt.datetime  # wall clock when this execution started (emitted_assets' since)
    seconds: float
    error: str | None = None  # the traceback, when dag.test() itself raised


def run_here(dags: dict[str, Any], dag_id: str, at: dt.datetime) -> tuple[Ran, str]:
    """Run ``dag_id`` at ``at`` in this process; what happened, and no output of its own."""
    began, began_at = time.monotonic(), dt.datetime.now(dt.UTC)
    dag_run = dags[dag_id].test(logical_date=at, run_after=at)
    state = str(getattr(dag_run.state, "value", dag_run.state))
    return Ran(dag_id, at, state, dag_run.run_id, began_at, time.monotonic() - began), ""


class SourceLane:
    """A second worker slot for the day's source DAG runs: a process forked from the demo's.

    Production runs independent tasks side by side (the executor's parallelism); ``dag.test()``
    runs one task instance at a time, so the demo used one of the machine's two cores. The lane
    is forked once the demo's process is warm (libraries imported, DAGs parsed and stored,
    heap frozen) and before any run has started a thread: the in-process execution API and its
    event loop are started by each process's first run. Each process then writes Airflow's
    metadata DB (SQLite waits for the other's write), the archive (a lock per source) and the
    warehouse (``warehouse.connect`` waits for the write lock), as production's workers do.
    Only source runs go there: ``transform`` and ``monitor`` wait for them anyway.

    The day's runs are shared as a list both processes take from, under one lock: the demo's
    process from the front (``take_front``), the lane from the back, until they meet.
    """

    def __init__(self, context: Any, dags: dict[str, Any]) -> None:
        self._dags = dags
        self._lock = context.Lock()
        self._front = context.Value("i", 0, lock=False)  # next index from the front
        self._back = context.Value("i", -1, lock=False)  # next index from the back
        self._connection, self._there = context.Pipe()
        self.process = context.Process(target=self._main, name="returnwatch-demo-lane", daemon=True)

    @classmethod
    @contextlib.contextmanager
    def forked(cls, dags: dict[str, Any]) -> Iterator[SourceLane]:
        import multiprocessing

        lane = cls(multiprocessing.get_context("fork"), dags)
        lane.process.start()
        lane._there.close()
        try:
            yield lane
        finally:
            with contextlib.suppress(OSError):
                lane._connection.send(None)  # done: the lane exits
            lane.process.join(LANE_EXIT_SECONDS)
            if lane.process.is_alive():
                lane.process.kill()
                lane.process.join()

    def share(self, runs: list[tuple[str, dt.datetime]]) -> None:
        """Offer the day's runs [(dag_id, at)] to both processes."""
        with self._lock:
            self._front.value, self._back.value = 0, len(runs) - 1
        self._connection.send(runs)

    def take_front(self) -> int | None:
        """The index of the next run for the demo's process, None when all are taken."""
        with self._lock:
            if self._front.value > self._back.value:
                return None
            self._front.value += 1
            return self._front.value - 1

    def _take_back(self) -> int | None:
        with self._lock:
            if self._back.value < self._front.value:
                return None
            self._back.value -= 1
            return self._back.value + 1

    def outcomes(self) -> Iterator[tuple[Ran, str]]:
        """What the lane ran of the day's runs, waiting (bounded) until it has taken no more."""
        while True:
            if not self._connection.poll(LANE_RUN_SECONDS):
                raise SystemExit(f"demo: the source lane answered nothing in {LANE_RUN_SECONDS} s")
            try:
                answer = self._connection.recv()
            except EOFError:
                raise SystemExit(
                    f"demo: the source lane ended (exit code {self.process.exitcode})"
                ) from None
            if answer is None:  # it found nothing more to take
                return
            yield answer

    def _main(self) -> None:
        """The lane's loop (in the forked process): each day's runs from the back."""
        import traceback

        self._connection.close()
        while (runs := self._there.recv()) is not None:
            while (index := self._take_back()) is not None:
                dag_id, at = runs[index]
                output = io.StringIO()
                began_at = dt.datetime.now(dt.UTC)
                try:
                    with contextlib.redirect_stdout(output):
                        ran, _ = run_here(self._dags, dag_id, at)
                except Exception:
                    ran = Ran(dag_id, at, "failed", None, began_at, 0.0, traceback.format_exc())
                settle_the_heap()
                self._there.send((ran, output.getvalue()))
            self._there.send(None)


# Far above a source run's seconds; only a wedged lane gets here.
LANE_RUN_SECONDS = 600
LANE_EXIT_SECONDS = 10


def run_dag(dag: Any, at: dt.datetime) -> str:
    """Run one DAG run at ``at`` through ``dag.test()``; its final state (tests use it)."""
    run = dag.test(logical_date=at, run_after=at)
    return str(getattr(run.state, "value", run.state))


def cron_time(dag: Any, day: dt.date) -> dt.datetime:
    """When ``dag``'s cron fires on ``day`` (its minute and hour; the demo picks the days).
    An asset-or-time schedule's cron is its ``timetable``."""
    timetable = getattr(dag.timetable, "timetable", dag.timetable)
    # The task SDK's timetable names it ``expression``, the scheduler's ``summary``.
    expression = getattr(timetable, "expression", None) or timetable.summary
    minute, hour, *_ = expression.split()
    return dt.datetime.combine(day, dt.time(int(hour), int(minute)), tzinfo=dt.UTC)


def emitted_assets(dag_id: str, run_id: str, *, since: dt.datetime) -> frozenset[str]:
    """Names of the Assets a DAG run updated (its asset events in Airflow's metadata DB).

    ``since``: when this execution started. ``dag.test()`` re-runs a logical date under the
    same run id, so a demo run again must not count the events of the first one."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        names = session.scalars(
            select(AssetModel.name)
            .join(AssetEvent, AssetEvent.asset_id == AssetModel.id)
            .where(
                AssetEvent.source_dag_id == dag_id,
                AssetEvent.source_run_id == run_id,
                AssetEvent.timestamp >= since,
            )
        )
        return frozenset(names)


def _asset_keys(condition: Any) -> list[Any]:
    """Every Asset named in a (serialized) asset condition, however nested."""
    if hasattr(condition, "objects"):
        return [key for part in condition.objects for key in _asset_keys(part)]
    if isinstance(getattr(condition, "name", None), str) and hasattr(condition, "uri"):
        return [condition]
    return []


def describe_day(results: list[RunResult]) -> str:
    """The day's runs in one line: what each source found, what that triggered, the crons."""
    parts = []
    for r in results:
        if r.state != "success":
            parts.append(f"{r.dag_id} {r.state.upper()}")
        elif r.reason == "cron" and r.dag_id != MONITOR:
            parts.append(f"{r.dag_id}: {'new file(s)' if r.emitted else 'nothing new'}")
        elif r.reason == "cron":
            parts.append(f"{MONITOR} ({r.at:%H:%M})")
        else:
            parts.append(f"→ {r.dag_id}")
    return " · ".join(parts)


def print_demo_summary(report: DemoReport) -> None:
    from returnwatch import summary

    print()
    print(summary.render(demo_seconds=report.seconds, dag_runs=report.dag_runs))
    print()
    for line in NEXT_STEPS:
        print(line)


NEXT_STEPS = (
    "Where to look next",
    "  make ui                              the Airflow UI with these runs, and its returnwatch page",
    "  .venv/bin/returnwatch status         each source's state and the open incidents",
    "  .venv/bin/returnwatch alerts list    the incidents behind the alerts above",
    "  make sql  (returnwatch sql)          SQL on the analysts' read-only snapshot",
)


# ------------------------------------------------------------------------------ quiet output


def quiet_environment() -> None:
    """Settings that stop noise at its source, before Airflow and Cosmos are imported."""
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    # No OpenLineage provider is installed and no lineage backend is set up in the demo:
    # tell Airflow and Cosmos so, instead of letting them warn about it on every parse.
    os.environ.setdefault("AIRFLOW__OPENLINEAGE__DISABLED", "True")
    os.environ.setdefault("AIRFLOW__OPENLINEAGE__NAMESPACE", "returnwatch")
    os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_OPENLINEAGE", "False")


# (logger name, start of the message; "*..." for a part of it) pairs the demo drops without
# --verbose: messages a demo user cannot act on, each with the reason.
QUIET_MESSAGES = (
    # dag.test() runs tasks one by one; after a skipped task it reports its downstream task
    # as "unrunnable" for one loop before marking it skipped itself. Normal for a source run
    # that found nothing new.
    ("airflow.sdk.definitions.dag", "No tasks to run"),
    # Cosmos checks for the OpenLineage provider at import; the demo does not use lineage.
    ("cosmos.operators.local", "To enable emitting Openlineage events"),
    # The replay mirror holds HHS's monthly pages up to FY 2021 only; the ops alert about the
    # source says what this means.
    ("returnwatch.sources.hhs_uc_monthly.discovery", "hhs_uc_monthly: no page"),
    # A demo run again replays 2021 after 2025: the sites then serve versions older than the
    # newest the archive holds, which it keeps once and notes (a real publisher going back
    # to an earlier version is worth the warning; a replay going back in time is not).
    ("returnwatch.archive", "*: received the bytes of an older file"),
)


class QuietFilter:
    """A logging filter dropping ``QUIET_MESSAGES``; everything else passes."""

    def filter(self, record: Any) -> bool:
        message = record.getMessage()
        return not any(
            record.name == name
            and (message.startswith(start) or (start.startswith("*") and start[1:] in message))
            for name, start in QUIET_MESSAGES
        )


def quiet_logging() -> None:
    """Keep library chatter below WARNING off the terminal and drop ``QUIET_MESSAGES``."""
    import logging

    quiet = QuietFilter()
    for name in ("airflow", "great_expectations", "cosmos", "alembic", "httpx", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.addFilter(quiet)
    for name, _ in QUIET_MESSAGES:
        logging.getLogger(name).addFilter(quiet)


def _say(text: str) -> None:
    print(text, flush=True)
