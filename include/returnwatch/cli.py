"""The ``returnwatch`` command: demo, replay mirror, manual ingest, backfill, dbt, SQL, status.

click is used because it is already in the stack (dbt depends on it) and gives typed options,
help texts and testable commands (CliRunner) for free.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import click

from returnwatch import airflow_env
from returnwatch.alerts import cli as alerts_cli
from returnwatch.sources import SOURCE_MODULES

# Before anything imports Airflow: the embedded Airflow's home, DAG folder, SQLite DB.
airflow_env.configure()

DATE = click.DateTime(formats=["%Y-%m-%d"])


def _dev_tool(module: str):
    """A module of the replay mirror and demo, which ship apart from the runtime package.

    ``returnwatch_replay`` is a test double (the publishers' sites served from recorded files,
    the demo driver): it is installed with the development dependencies, never in production.
    """
    import importlib

    try:
        return importlib.import_module(f"returnwatch_replay.{module}")
    except ModuleNotFoundError as missing:
        if missing.name != "returnwatch_replay":
            raise
        raise click.ClickException(
            "the demo and the replay mirror are development tools, not installed here: run "
            "them from a checkout with the development dependencies (`make demo`)"
        ) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """returnwatch: watch what happens to unaccompanied children at the US–Mexico border."""


@main.command()
@click.option(
    "--from",
    "start",
    type=DATE,
    help="Replay every day from this one (default: 7, 16, 17, 18 June 2025).",
)
@click.option("--to", "end", type=DATE, help="... to this one (default 2025-06-18).")
@click.option(
    "--final",
    type=DATE,
    help="Also a catch-up day after the stretch, e.g. 2025-12-22: the end of HHS's real daily "
    "file (default: none).",
)
@click.option("--verbose", is_flag=True, help="Show Airflow's task logs.")
def demo(
    start: dt.datetime | None, end: dt.datetime | None, final: dt.datetime | None, verbose: bool
) -> None:
    """Replay real published history through the DAGs and print a summary."""
    demo_module = _dev_tool("demo")

    demo_module.run(
        start=start.date() if start else demo_module.DEFAULT_FROM,
        end=end.date() if end else demo_module.DEFAULT_TO,
        days=None if start or end else demo_module.DEFAULT_DAYS,
        final=final.date() if final else demo_module.DEFAULT_FINAL,
        verbose=verbose,
    )


@main.command()
@click.option(
    "--as-of",
    type=DATE,
    default="2025-12-22",
    show_default=True,
    help="Serve only what the publishers had published by this day.",
)
@click.option("--port", type=int, default=8765, show_default=True)
def replay(as_of: dt.datetime, port: int) -> None:
    """Serve the publishers' sites from real published data on 127.0.0.1."""
    replay_module = _dev_tool("mirror")

    replay_module.serve(as_of.date(), host="127.0.0.1", port=port)


@main.command()
@click.argument("source", type=click.Choice(sorted(SOURCE_MODULES)))
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--vintage", type=DATE, help="Publication date of the file (default: today).")
@click.option(
    "--kind",
    default=None,
    help="Which of the source's layouts the file is (default: detected from it).",
)
def ingest(source: str, path: Path, vintage: dt.datetime | None, kind: str | None) -> None:
    """Load a file downloaded by hand through the same parse → validate → load path.

    For when a publisher's site blocks robots or its TLS is broken: download the file in a
    browser, then e.g. `returnwatch ingest segob_bulletin_monthly cuadro3.1.1.xls
    --vintage 2025-06-07`. Loading the same file twice changes nothing.

    While another process writes the warehouse it waits (RETURNWATCH_LOCK_WAIT_SECONDS,
    default 120), then gives up. A bad file, a held lock, a read-only or full disk: one line
    saying which, exit code 1.
    """
    import duckdb

    from returnwatch import ingest as ingest_module
    from returnwatch import warehouse
    from returnwatch.sources.errors import SourceFileError

    now = dt.datetime.now(dt.UTC)
    try:
        result = ingest_module.ingest_file(
            source,
            path,
            vintage=vintage.date() if vintage else now.date(),
            run_at=now,
            run_id=f"manual/{now:%Y%m%dT%H%M%S}",
            kind=kind,
        )
    except (SourceFileError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    except warehouse.WarehouseLocked as error:
        raise click.ClickException(f"cannot ingest {path}: {error}") from None
    except (OSError, duckdb.Error) as error:
        raise click.ClickException(f"cannot ingest {path}: {storage_problem(error)}") from None
    if result["already_loaded"]:
        click.echo(f"{path}: already loaded (sha256 {result['sha256']}); nothing changed")
    else:
        click.echo(
            f"{path}: loaded {result['rows_loaded']} rows ({result['kind']}) into "
            f"{result['table']}; {result['revisions']} figure(s) revised since the "
            f"previous vintage"
        )


def storage_problem(error: BaseException) -> str:
    """An error from writing the archive or the warehouse as one line that names the problem
    (read-only file system, full disk, no permission) and the data folder."""
    import errno

    from returnwatch import settings

    text = " ".join(str(error).split())  # DuckDB's messages span lines
    code = getattr(error, "errno", None)
    folder = settings.data_dir()
    if code == errno.EROFS or "read-only file system" in text.lower():
        problem = f"the data folder {folder} is on a read-only file system"
    elif code in (errno.ENOSPC, errno.EDQUOT) or "no space left" in text.lower():
        problem = f"the disk holding the data folder {folder} is full"
    elif code in (errno.EACCES, errno.EPERM) or "permission denied" in text.lower():
        problem = f"no permission to write in the data folder {folder}"
    else:
        return text
    return f"{problem} ({text})"


@main.command()
@click.argument("source", type=click.Choice(sorted(SOURCE_MODULES)))
@click.option(
    "--from", "start", type=DATE, required=True, help="First day of the periods to re-fetch."
)
@click.option("--to", "end", type=DATE, required=True, help="Last day of the periods to re-fetch.")
@click.option("--dry-run", is_flag=True, help="List the files that would be fetched, and stop.")
@click.option(
    "--no-transform",
    is_flag=True,
    help="Skip dbt build and the snapshot (when backfilling several sources, pass it "
    "to all but the last). The monitors are still evaluated, quietly.",
)
def backfill(
    source: str, start: dt.datetime, end: dt.datetime, dry_run: bool, no_transform: bool
) -> None:
    """Re-fetch SOURCE's files for the periods from --from to --to, load what the warehouse
    lacks, then rebuild the marts once. Never alerts.

    \b
    returnwatch backfill segob_bulletin_monthly --from 2019-01-01 --to 2020-12-31
    returnwatch backfill cbp_encounters_monthly --from 2020-10-01 --to 2021-09-30 --dry-run

    The files are read off the publisher's pages as the DAG does; a file is fetched when its
    period (a SEGOB year, an HHS or CBP fiscal-year window) overlaps the range; the HHS daily
    export is one file. Each goes through the DAG's fetch → parse → validate → load: a file
    already loaded changes nothing, a restated one becomes a new vintage with its revisions.
    Then dbt build, the monitors and the snapshot, once. Monitor findings are recorded as info:
    a backfill queues no alert, and the monitor DAG will not page about the old periods or the
    restatements it brought. Exit code 1 if a file failed (its raw bytes stay in the archive;
    the error names file, sheet and row) or dbt failed.

    On a deployment, run it inside a worker container (e.g. `docker compose exec
    airflow-worker returnwatch backfill ...`), where the archive, warehouse and settings are
    the DAGs' own. It takes the warehouse's write lock like the DAG tasks do, one file at a
    time with a bounded wait, so it is safe beside a running deployment.
    """
    from returnwatch import backfill as backfill_module

    if start > end:
        raise click.BadParameter(
            f"--from {start:%Y-%m-%d} is after --to {end:%Y-%m-%d}", param_hint="--from/--to"
        )
    sys.exit(
        backfill_module.main(
            source, start.date(), end.date(), dry_run=dry_run, build=not no_transform
        )
    )


@main.command()
@click.option("--select", default=None, help="dbt node selection (default: everything).")
def dbt(select: str | None) -> None:
    """Build the dbt project (models and tests) and publish the analysts' snapshot."""
    from returnwatch import transform

    transform.ensure_manifest()
    result = transform.dbt_build(select=select)
    if not result.success:
        click.echo(f"dbt build failed: {result.failed}", err=True)
        sys.exit(1)
    snapshot = transform.publish_snapshot()
    click.echo(
        f"dbt build passed ({len(result.warned)} warning(s)); snapshot published: {snapshot.path}"
    )


@main.command()
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON document instead of the text (docs/cli-json.schema.json, 'summary').",
)
def summary(as_json: bool) -> None:
    """Print what the warehouse holds now: rows, latest figures, freshness, alerts.

    Only reads (the live file read-only, or the snapshot while a writer holds it); exit code 2
    when there is no warehouse to read.
    """
    import duckdb

    from returnwatch import summary as summary_module
    from returnwatch import warehouse

    try:
        if as_json:
            click.echo(json.dumps(summary_module.collect(), indent=2, ensure_ascii=False))
        else:
            click.echo(summary_module.render())
    except (FileNotFoundError, warehouse.WarehouseLocked, duckdb.Error) as error:
        raise NoStatus(f"cannot read the warehouse: {error}") from None


@main.command()
@click.argument("statement", required=False)
@click.option("--csv", "as_csv", is_flag=True, help="Print the result as CSV (for scripts).")
@click.option(
    "--live",
    is_flag=True,
    help="Read the live warehouse instead of the snapshot: opened read-only for "
    "each statement and closed before its result prints, so writers are never "
    "held out for more than one statement. While a load or build holds the "
    "file, a statement waits (up to --wait) and says so.",
)
@click.option(
    "--wait",
    "wait_seconds",
    type=click.FloatRange(min=0, max=3600),
    default=60,
    show_default=True,
    help="With --live: seconds a statement waits for a writer to let go.",
)
def sql(statement: str | None, as_csv: bool, live: bool, wait_seconds: float) -> None:
    """A sandboxed SQL prompt (or one STATEMENT) on the read-only analysts' snapshot.

    \b
    returnwatch sql                                   # prompt; .tables, .schema, .quit
    returnwatch sql "from marts.hhs_uc_daily limit 5"
    returnwatch sql --csv "from marts.hhs_uc_daily" > daily.csv

    Read-only, with DuckDB's file and URL access off (only the snapshot's Parquet exports can be
    read), extensions off and settings locked: COPY, EXPORT, ATTACH, INSTALL/LOAD and SET are
    refused with one line saying why. Use --csv to save a result.
    """
    import duckdb

    from returnwatch import settings, sql_shell

    path = settings.warehouse_path() if live else settings.snapshot_path()
    try:
        session = sql_shell.Session(
            path,
            live=live,
            wait_seconds=wait_seconds,
            notice=lambda message: click.echo(message, err=True),
        )
    except FileNotFoundError as error:
        raise click.ClickException(str(error)) from None
    except duckdb.Error as error:  # e.g. the snapshot being replaced, a damaged file
        raise click.ClickException(f"cannot open {path}: {sql_shell.one_line(error)}") from None
    with session:
        if statement:
            try:
                sys.stdout.write(session.run(statement, max_rows=0, csv=as_csv))
            except (sql_shell.Refused, sql_shell.LiveBusy) as error:
                raise click.ClickException(str(error)) from None
            except duckdb.Error as error:  # shown without a traceback
                raise click.ClickException(sql_shell.one_line(error)) from None
        else:
            sql_shell.repl(session)


class NoStatus(click.ClickException):
    """``status``/``summary`` could not read any warehouse: exit code 2, not 1 ("attention")."""

    exit_code = 2


@main.command()
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON document instead of the table (docs/cli-json.schema.json, 'status').",
)
def status(as_json: bool) -> None:
    """Is every source healthy? Freshness, newest period, open incidents, revisions.

    Reads the live warehouse read-only (monitor runs update it after the last build); when a
    load holds the write lock for more than a few seconds, reads the analysts' snapshot. Never
    takes the write lock; works on a read-only data folder.

    \b
    Exit codes (for scripts and cron):
      0  every source is healthy (fresh) and no critical incident is open
      1  attention: a source is late, stopped, unchecked, without data or not judged
         yet (any state but fresh), or a critical incident is open
      2  no status: no warehouse yet, it cannot be read, or a bad option
    """
    import duckdb

    from returnwatch import status as status_module
    from returnwatch import warehouse

    try:
        with warehouse.reading() as (con, where):
            current = status_module.collect(con)
    except (FileNotFoundError, warehouse.WarehouseLocked, duckdb.Error) as error:
        raise NoStatus(f"cannot read the status: {error}") from None
    if as_json:
        click.echo(
            json.dumps(
                status_module.as_json_document(current, read_from=where),
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        click.echo(status_module.render_text(current))
        for reason in status_module.needs_attention(current):
            click.echo(f"needs attention: {reason}")
        click.echo(f"(read from the {where})")
    sys.exit(status_module.exit_code(current))


@main.command()
@click.option("--port", type=int, default=8080, show_default=True)
def ui(port: int) -> None:
    """Airflow UI with the demo's runs, on 127.0.0.1 only (Ctrl-C stops it).

    Not ``airflow standalone``: it binds the API server to every interface, and the local UI
    makes every visitor an admin, so it must stay on the loopback.
    """
    import os
    import shutil
    import signal
    import subprocess
    import time

    from returnwatch import transform

    airflow_env.prepare_metadata_db()
    transform.ensure_manifest()
    # The venv's own airflow script, so `returnwatch ui` works without an activated venv.
    airflow = str(Path(sys.executable).with_name("airflow"))
    if not Path(airflow).exists():
        airflow = shutil.which("airflow") or "airflow"
    env = {
        **os.environ,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
    }
    commands = [
        [airflow, "api-server", "--host", "127.0.0.1", "--port", str(port)],
        [airflow, "dag-processor"],
        [airflow, "scheduler"],
        [airflow, "triggerer"],
    ]

    def stop(signum, frame):
        raise KeyboardInterrupt

    # Ctrl-C and a plain `kill` both stop all four processes (each in its own session, so
    # only this process decides when they go).
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    processes = [subprocess.Popen(cmd, env=env, start_new_session=True) for cmd in commands]
    click.echo(f"Airflow UI: http://127.0.0.1:{port}  (DAGs start paused; Ctrl-C stops everything)")
    try:
        while all(p.poll() is None for p in processes):
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C must not abort the clean-up and orphan the scheduler.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@main.command("airflow-setup")
def airflow_setup() -> None:
    """Create or upgrade the embedded Airflow's metadata DB and the warehouse pool."""
    from returnwatch import transform

    airflow_env.prepare_metadata_db()
    transform.ensure_manifest()
    click.echo(f"Airflow home ready: {airflow_env.defaults()['AIRFLOW_HOME']}")


# `returnwatch alerts ...`: list, show, acknowledge and mute incidents (alerts/cli.py).
main.add_command(alerts_cli.alerts)


if __name__ == "__main__":
    main()
