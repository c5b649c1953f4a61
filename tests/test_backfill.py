"""``returnwatch backfill`` against the replay mirror, through the command line (CliRunner).

One data folder and one mirror for the module, so dbt builds once (CBP's history); the other
runs load without rebuilding (``--no-transform``) or load nothing. What is checked:

- a SEGOB range (a bulletin year) and a CBP range (a fiscal year) load exactly the files whose
  periods overlap it; a second run changes nothing in the warehouse or the snapshot;
- nothing pages: CBP's history as of March 2021 holds anomalies and a broken policy rule in
  its newest month, which a monitor run would alert on; the backfill records them as info and
  opens no incident, queues no alert; the restatements a later file brings are judged (and
  the revision monitor's mark moved past them) before any monitor run could page about them;
- a broken file (the mirror's ``renamed_column`` fault on one request) fails alone, exit code
  1, the output names the file, sheet and row, its raw bytes are archived, nothing of it is
  loaded; once the site serves it right again, a backfill loads it;
- the backfill waits for another process's write lock instead of failing;
- a progress bar on a terminal, one line per file otherwise.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import select
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
from click.testing import CliRunner, Result

from returnwatch import backfill, settings, warehouse
from returnwatch.archive import Archive
from returnwatch.cli import main
from returnwatch_replay.mirror import ReplayMirror

SEGOB = "segob_bulletin_monthly"
CBP = "cbp_encounters_monthly"
TODAY = dt.date(2025, 6, 17)  # the mirror's day: SEGOB's bulletin runs to April 2025
YEAR_2019 = ["--from", "2019-01-01", "--to", "2019-12-31"]
YEAR_2020 = ["--from", "2020-01-01", "--to", "2020-12-31"]
CBP_FY2021 = ["--from", "2020-10-01", "--to", "2021-09-30"]


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory):
    """The publishers as of TODAY, and a data folder of the module's own."""
    data = tmp_path_factory.mktemp("backfill") / "data"
    with pytest.MonkeyPatch.context() as patch, ReplayMirror(as_of=TODAY) as running:
        patch.setenv("RETURNWATCH_DATA_DIR", str(data))
        for name, value in running.env().items():
            patch.setenv(name, value)
        yield running


def run(*args: str) -> Result:
    result = CliRunner().invoke(main, ["backfill", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a bug, not an exit code: show its traceback
    return result


def query(sql: str, params: list | None = None) -> list[tuple]:
    with warehouse.session(read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def loaded_urls(source: str) -> set[str]:
    return {url for (url,) in query("select url from raw.files where source = ?", [source])}


def warehouse_state() -> dict:
    """Everything a backfill may write, and the snapshot file."""
    state = {
        table: query(f"select * from {table} order by all")
        for table in (
            "raw.files",
            "monitor.revisions",
            "monitor.findings",
            "monitor.incidents",
            "monitor.alerts",
        )
    }
    state["raw rows"] = query("select count(*) from raw.segob_presented_by_nationality")
    state["marks"] = query(
        "select monitor, series, period, run_id from monitor.judged order by all"
    )
    snapshot = settings.snapshot_path()
    state["snapshot"] = snapshot.stat().st_mtime_ns if snapshot.exists() else None
    return state


def no_alerts() -> bool:
    return query("select count(*) from monitor.alerts") == [(0,)] and query(
        "select count(*) from monitor.incidents"
    ) == [(0,)]


# --------------------------------------------------------------------------- SEGOB, one year


@pytest.fixture(scope="module")
def segob_2019(mirror) -> SimpleNamespace:
    """A dry run, then the year 2019 backfilled twice (the marts are built by ``cbp_history``)."""
    dry = run(SEGOB, *YEAR_2019, "--dry-run")
    archived_after_dry_run = Archive().entries(SEGOB)
    first = run(SEGOB, *YEAR_2019, "--no-transform")
    loaded = loaded_urls(SEGOB)
    months = query("select min(month), max(month) from raw.segob_presented_by_nationality")
    after_first = warehouse_state()
    second = run(SEGOB, *YEAR_2019, "--no-transform")
    return SimpleNamespace(
        dry=dry,
        archived_after_dry_run=archived_after_dry_run,
        first=first,
        loaded=loaded,
        months=months,
        after_first=after_first,
        second=second,
        after_second=warehouse_state(),
    )


def test_a_dry_run_lists_the_files_in_range_and_fetches_nothing(segob_2019) -> None:
    assert segob_2019.dry.exit_code == 0, segob_2019.dry.output
    listed = [line for line in segob_2019.dry.output.splitlines() if line.startswith("  ")]
    assert len(listed) == 3 and all(" 2019  http://127.0.0.1:" in line for line in listed)
    assert segob_2019.archived_after_dry_run == []


def test_a_segob_range_loads_exactly_its_files(segob_2019) -> None:
    first = segob_2019.first
    assert first.exit_code == 0, first.output
    # The bulletin's three tables of 2019 and nothing else (the site lists 2018-2025).
    assert {url.rsplit("/", 2)[-2] for url in segob_2019.loaded} == {"Cuadros2019"}
    assert {url.rsplit("/", 1)[-1] for url in segob_2019.loaded} == {
        "cuadro3.1.1.xls",
        "cuadro3.1.3.xls",
        "cuadro3.2.4.xls",
    }
    assert segob_2019.months == [(dt.date(2019, 1, 1), dt.date(2019, 12, 1))]
    assert "3 fetched, 3 new, 0 unchanged, 0 failed" in first.output
    assert "dbt: skipped (--no-transform)" in first.output


def test_running_it_twice_changes_nothing(segob_2019) -> None:
    second = segob_2019.second
    assert second.exit_code == 0, second.output
    assert "3 fetched, 0 new, 3 unchanged, 0 failed" in second.output
    assert "nothing new loaded" in second.output
    assert segob_2019.after_second == segob_2019.after_first


def test_a_segob_backfill_queues_no_alert(segob_2019) -> None:
    assert no_alerts()
    assert query("select count(*) from monitor.findings where severity <> 'info'") == [(0,)]


# --------------------------------------------------------------------------- CBP


@pytest.fixture(scope="module")
def cbp_history(mirror, segob_2019) -> SimpleNamespace:
    """FY2021 backfilled as CBP's site stood on 20 March 2021 (the module's one dbt build)."""
    mirror.set_as_of(dt.date(2021, 3, 20))
    try:
        result = run(CBP, *CBP_FY2021)
    finally:
        mirror.set_as_of(TODAY)
    return SimpleNamespace(result=result, loaded=loaded_urls(CBP))


@pytest.fixture(scope="module")
def cbp_restated(mirror, cbp_history) -> Result:
    """FY2021 again as the site stands now: its October-2024 file restates 19 figures."""
    return run(CBP, *CBP_FY2021, "--no-transform")


def test_a_cbp_range_loads_exactly_its_files(cbp_history, cbp_restated) -> None:
    assert cbp_history.result.exit_code == 0, cbp_history.result.output
    assert {u.rsplit("/", 1)[-1] for u in cbp_history.loaded} == {
        "nationwide-encounters-fy20-fy21-jan-aor.csv"
    }
    assert cbp_restated.exit_code == 0, cbp_restated.output
    # The page lists the FY22-FY25 window too; it holds no month of FY2021.
    assert "1 file(s) in range of 2 listed" in cbp_restated.output
    assert {u.rsplit("/", 1)[-1] for u in loaded_urls(CBP)} == {
        "nationwide-encounters-fy20-fy21-jan-aor.csv",
        "nationwide-encounters-fy21-fy24-aor.csv",
    }


def test_the_marts_are_rebuilt_once_and_published(cbp_history) -> None:
    output = cbp_history.result.output
    assert output.count("dbt build passed") == 1 and "snapshot published" in output
    # The marts hold what both backfills loaded (SEGOB's without a build of its own).
    assert (
        query(
            "select count(*) from marts.inm_minor_returns_monthly where month "
            "between '2019-01-01' and '2019-12-01'"
        )[0][0]
        > 0
    )
    assert query("select max(month) from marts.cbp_uc_encounters_monthly") == [
        (dt.date(2021, 1, 1),)
    ]
    assert settings.snapshot_path().exists()


def test_what_a_monitor_run_would_alert_on_is_recorded_as_info(cbp_history) -> None:
    # January 2021, the newest month then: a monitor run would open incidents for these.
    would_page = query(
        "select kind, details->>'severity_found' from monitor.findings "
        "where period = '2021-01' and details->>'history' is null and details->>'backfill'"
    )
    # January 2021 is a contested period for the rule and the figures' severity policy caps
    # CBP encounter changes at warning: nothing on this history is critical any more.
    assert {severity for _, severity in would_page} == {"warning"}
    assert {kind for kind, _ in would_page} >= {"rule_contested_period", "anomaly_drop"}
    assert query("select count(*) from monitor.findings where severity <> 'info'") == [(0,)]
    assert no_alerts()


def test_restatements_are_judged_before_a_monitor_run_could_page(cbp_restated) -> None:
    assert "19 figure(s) revised" in cbp_restated.output
    [(recorded,)] = query("select max(detected_at) from monitor.revisions where source = ?", [CBP])
    [(mark,)] = query("select period from monitor.judged where monitor = 'revision'")
    # The revision monitor judges only restatements recorded after its mark: none of these.
    assert dt.datetime.fromisoformat(mark) >= recorded
    assert no_alerts()


# --------------------------------------------------------------------------- a broken file


@pytest.fixture(scope="module")
def broken_2020(mirror, segob_2019) -> SimpleNamespace:
    """2020 backfilled while the site renames a column in the first file it serves, then again
    once it serves that file right."""
    mirror.set_fault(SEGOB, "renamed_column", times=1)  # the first file of the plan only
    try:
        broken = run(SEGOB, *YEAR_2020, "--no-transform")
    finally:
        mirror.set_fault(SEGOB, None)
    after_broken = loaded_urls(SEGOB)
    repaired = run(SEGOB, *YEAR_2020, "--no-transform")
    return SimpleNamespace(broken=broken, after_broken=after_broken, repaired=repaired)


def test_a_broken_file_fails_alone_and_is_named(broken_2020) -> None:
    broken = broken_2020.broken
    assert broken.exit_code == 1, broken.output
    [failed] = [line for line in broken.output.splitlines() if " failed " in line]
    assert failed.startswith("[1/3] failed    cuadro_3_1_1 2020: cuadro3.1.1.xls: ")
    assert "source segob_bulletin_monthly, file " in failed and " row " in failed
    assert "'Ene.'" in failed  # what the parser saw instead of "Enero"
    assert "3 fetched, 2 new, 0 unchanged, 1 failed" in broken.output
    assert "docs/runbook.md#backfill" in broken.output


def test_a_broken_file_is_archived_and_nothing_of_it_is_loaded(broken_2020) -> None:
    names = {u.rsplit("/", 1)[-1] for u in broken_2020.after_broken if "Cuadros2020" in u}
    assert names == {"cuadro3.1.3.xls", "cuadro3.2.4.xls"}  # the two good files of 2020
    [bad] = [
        e
        for e in Archive().entries(SEGOB)
        if e.url.endswith("2020/Cuadros2020/cuadro3.1.1.xls") and e.outcome == "new"
    ][:1]
    assert b"Ene." in Archive().read(bad.sha256, SEGOB)  # the bytes as served, kept
    assert query("select count(*) from raw.files where sha256 = ?", [bad.sha256]) == [(0,)]
    # No ops alert: the person running the backfill has the error in front of them.
    assert no_alerts()


def test_once_served_right_the_broken_file_loads(broken_2020) -> None:
    repaired = broken_2020.repaired
    assert repaired.exit_code == 0, repaired.output
    assert "3 fetched, 1 new, 2 unchanged, 0 failed" in repaired.output
    assert any(u.endswith("2020/Cuadros2020/cuadro3.1.1.xls") for u in loaded_urls(SEGOB))
    assert no_alerts()


# --------------------------------------------------------------------------- lock, output


HOLD_LOCK = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def test_it_waits_for_another_writers_lock(segob_2019) -> None:
    """A DAG task holding the warehouse (here: another process) delays the backfill; it does
    not fail it, as DAG tasks wait for each other."""
    hold_seconds = 3.0
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(settings.warehouse_path()), str(hold_seconds)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert holder.stdout is not None
        ready, _, _ = select.select([holder.stdout], [], [], 60)  # bounded: never hang here
        assert ready and holder.stdout.readline().strip() == "locked"
        began = time.monotonic()
        result = run(SEGOB, *YEAR_2019)
        waited = time.monotonic() - began
        assert result.exit_code == 0, result.output
        assert "3 unchanged" in result.output
        assert waited >= hold_seconds - 1.0  # it waited for the lock instead of failing
        assert holder.wait(timeout=30) == 0
    finally:
        if holder.poll() is None:
            os.killpg(holder.pid, signal.SIGKILL)
            holder.wait(timeout=10)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_progress_bar_and_then_one_line_per_file(segob_2019) -> None:
    out = _Terminal()
    assert backfill.main(SEGOB, dt.date(2019, 1, 1), dt.date(2019, 12, 31), out=out) == 0
    text = out.getvalue()
    assert "\r" in text and "3/3" in text  # the bar, redrawn in place, with its position
    lines = [line for line in text.splitlines() if line.startswith("[")]
    assert [line.split()[:2] for line in lines] == [
        ["[1/3]", "unchanged"],
        ["[2/3]", "unchanged"],
        ["[3/3]", "unchanged"],
    ]


# --------------------------------------------------------------------------- periods


@pytest.mark.parametrize(
    ("period", "span"),
    [
        ("2019", (dt.date(2019, 1, 1), dt.date(2019, 12, 31))),  # SEGOB year
        ("FY2021", (dt.date(2020, 10, 1), dt.date(2021, 9, 30))),  # HHS page
        ("FY2021-FY2024", (dt.date(2020, 10, 1), dt.date(2024, 9, 30))),  # CBP window
        (None, None),
        ("2019-S1", None),
    ],
)
def test_the_days_a_file_covers(period, span) -> None:
    assert backfill.period_span(period) == span


def test_a_file_is_in_range_when_its_period_overlaps_it() -> None:
    window = {"period": "FY2022-FY2025"}  # 2021-10-01 .. 2025-09-30
    assert not backfill.in_range(window, dt.date(2020, 10, 1), dt.date(2021, 9, 30))
    assert backfill.in_range(window, dt.date(2021, 9, 30), dt.date(2021, 10, 1))
    assert backfill.in_range({"period": None}, dt.date(2000, 1, 1), dt.date(2000, 1, 2))


def test_an_empty_range_is_refused() -> None:
    result = CliRunner().invoke(
        main, ["backfill", SEGOB, "--from", "2020-01-02", "--to", "2020-01-01"]
    )
    assert result.exit_code == 2 and "is after --to" in result.output


def test_help_says_where_it_runs_on_a_deployment() -> None:
    result = CliRunner().invoke(main, ["backfill", "--help"])
    assert result.exit_code == 0 and "worker container" in result.output


# --------------------------------------------------------------------------- a parser crash


def test_a_parser_crash_fails_its_file_and_the_backfill_goes_on(
    data_dir, real_hhs_bytes, tmp_path
) -> None:
    """An exception from inside a parser (here the struct.error a damaged workbook raised) is
    that file's refusal; the next file of the plan still loads."""
    import struct

    from returnwatch import ingest
    from returnwatch.sources import hhs_uc_daily as hhs

    run_at = dt.datetime(2025, 12, 22, 12, tzinfo=dt.UTC)
    damaged = real_hhs_bytes + b"\r\n"  # different bytes, same figures: crashes below
    fetched = {}
    for name, body in (("damaged.csv", damaged), ("good.csv", real_hhs_bytes)):
        path = tmp_path / name
        path.write_bytes(body)
        entry = Archive().store_manual("hhs_uc_daily", path, vintage=run_at.date(), run_at=run_at)
        fetched[f"https://example.gov/{name}"] = {
            "source": "hhs_uc_daily",
            "kind": "export_csv",
            "outcome": entry.outcome,
            "is_new": True,
            "sha256": entry.sha256,
            "url": f"https://example.gov/{name}",
            "vintage": run_at.date().isoformat(),
            "fetched_at": entry.fetched_at.isoformat(),
        }
    real_parse = hhs.KINDS["export_csv"].parse

    def parse(content: bytes, *, file: str):
        if content == damaged:
            raise struct.error("unpack requires a buffer of 8 bytes")
        return real_parse(content, file=file)

    original_fetch_link = ingest.fetch_link
    ingest.fetch_link = lambda link, *, run_at: fetched[link["url"]]
    object.__setattr__(hhs.KINDS["export_csv"], "parse", parse)  # FileKind is frozen
    try:
        results = [
            backfill.backfill_file(
                {"source": "hhs_uc_daily", "url": url, "kind": "export_csv"},
                single_file=False,
                loaded=set(),
                run_at=run_at,
                run_id="test/backfill",
            )
            for url in fetched
        ]
    finally:
        object.__setattr__(hhs.KINDS["export_csv"], "parse", real_parse)
        ingest.fetch_link = original_fetch_link
    assert [r.status for r in results] == ["failed", "new"]
    assert "https://example.gov/damaged.csv (sha256 " in results[0].error
    assert "struct.error" in results[0].error or "error" in results[0].error
    assert results[1].rows_loaded == 720
