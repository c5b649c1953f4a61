"""The ingest steps against the replay mirror, without Airflow: good files load once, bad files
are kept in the archive, leave the warehouse unchanged and raise errors that say where."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from returnwatch import ingest, warehouse
from returnwatch.archive import Archive
from returnwatch.sources.errors import SourceFileError
from returnwatch_replay.mirror import ReplayMirror

RUN_AT = dt.datetime(2025, 12, 12, 15, tzinfo=dt.UTC)


@pytest.fixture
def mirror(data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    with ReplayMirror(as_of=dt.date(2025, 12, 12)) as running:
        monkeypatch.setenv("RETURNWATCH_HHS_UC_DAILY_BASE_URL", running.base_url("hhs_uc_daily"))
        yield running


def raw_state() -> tuple:
    with warehouse.session() as con:
        return con.execute(
            "select (select count(*) from raw.hhs_uc_daily), (select count(*) from raw.files)"
        ).fetchone()


def run_all(run_at: dt.datetime = RUN_AT) -> dict:
    fetched = ingest.fetch("hhs_uc_daily", run_at=run_at)
    return ingest.load(
        ingest.validate(ingest.parse(fetched), run_at=run_at), run_at=run_at, run_id="test/run"
    )


def test_good_file_loads_once(mirror) -> None:
    first = run_all()
    assert first["rows_loaded"] == 714 and not first["already_loaded"]  # days up to 11 Dec 2025
    assert ingest.fetch("hhs_uc_daily", run_at=RUN_AT)["is_new"] is False
    # Loading the same validated file again (an Airflow retry of load_rows) changes nothing.
    fetched = {**ingest.fetch("hhs_uc_daily", run_at=RUN_AT), "is_new": True}
    fetched["sha256"] = first["sha256"]
    fetched["vintage"] = "2025-12-12"
    again = ingest.load(
        ingest.validate(ingest.parse(fetched), run_at=RUN_AT), run_at=RUN_AT, run_id="test/rerun"
    )
    assert again["already_loaded"] and raw_state() == (714, 1)


@pytest.mark.parametrize(
    "fault, kind, row, words",
    [
        ("html_error", "layout_changed", 1, "HTML page instead of the CSV export"),
        ("renamed_column", "layout_changed", 1, "'Children in ORR Care'"),
        ("truncated", "bad_value", None, "truncated"),
    ],
)
def test_bad_file_is_kept_and_changes_nothing(mirror, fault, kind, row, words) -> None:
    run_all()
    before = raw_state()
    mirror.set_fault("hhs_uc_daily", fault)
    mirror.set_as_of(dt.date(2025, 12, 15))
    later = RUN_AT + dt.timedelta(days=3)
    fetched = ingest.fetch("hhs_uc_daily", run_at=later)
    with pytest.raises(SourceFileError) as caught:
        ingest.parse(fetched)
    error = caught.value
    # Named by the URL it came from (what ops can open), with the sha256 to find it archived.
    shown = f"{fetched['url']} (sha256 {fetched['sha256'][:12]})"
    assert error.kind == kind and error.source == "hhs_uc_daily" and error.file == shown
    assert error.row == row if row else error.row > 1
    message = str(error)
    assert words in message
    assert f"source hhs_uc_daily, file {shown}" in message and "row " in message
    # The raw bytes are kept, exactly as served; the warehouse is unchanged.
    assert Archive().read(fetched["sha256"], "hhs_uc_daily")
    assert raw_state() == before


def test_bad_file_opens_one_ops_incident_that_a_good_file_resolves(mirror) -> None:
    run_all()
    mirror.set_fault("hhs_uc_daily", "html_error")
    mirror.set_as_of(dt.date(2025, 12, 15))
    for days in (3, 4):  # the same broken page two days running: one incident, one alert
        at = RUN_AT + dt.timedelta(days=days)
        fetched = {**ingest.fetch("hhs_uc_daily", run_at=at), "is_new": True}
        with pytest.raises(SourceFileError) as caught:
            ingest.parse(fetched)
        ingest.report_bad_file("hhs_uc_daily", caught.value, run_at=at, run_id=f"test/{days}")
    mirror.set_fault("hhs_uc_daily", None)
    mirror.set_as_of(dt.date(2025, 12, 17))
    run_all(RUN_AT + dt.timedelta(days=5))
    with warehouse.session() as con:
        alerts = con.execute("select event, audience from monitor.alerts order by seq").fetchall()
        incidents = con.execute("select kind, state from monitor.incidents").fetchall()
    assert alerts == [("opened", "ops"), ("resolved", "ops")]
    assert incidents == [("layout_changed", "resolved")]


def test_manual_ingest_of_a_downloaded_file(data_dir, real_hhs_bytes, tmp_path) -> None:
    path = tmp_path / "HHS_Unaccompanied_Alien_Children_Program.csv"
    path.write_bytes(real_hhs_bytes)
    result = ingest.ingest_file(
        "hhs_uc_daily",
        path,
        vintage=dt.date(2025, 12, 22),
        run_at=RUN_AT + dt.timedelta(days=10),
        run_id="manual/1",
    )
    assert result["rows_loaded"] == 720
    again = ingest.ingest_file(
        "hhs_uc_daily",
        path,
        vintage=dt.date(2025, 12, 22),
        run_at=RUN_AT + dt.timedelta(days=10),
        run_id="manual/2",
    )
    assert again["already_loaded"] and raw_state() == (720, 1)


# ------------------------------------------------------------ archived before judged

REFUSED_BODIES = {
    "html_error_page": b"<!DOCTYPE html><html><body><h1>Service unavailable</h1></body></html>",
    "json_error_body": b'{"error": true, "message": "Dataset not found"}',
    "empty": b"",
}


@pytest.mark.parametrize("name", [*REFUSED_BODIES, "utf16"])
def test_a_file_handed_to_ingest_is_archived_before_it_is_refused(
    data_dir, real_hhs_bytes, tmp_path, name
) -> None:
    content = (
        real_hhs_bytes.decode("utf-8-sig").encode("utf-16")
        if name == "utf16"
        else REFUSED_BODIES[name]
    )
    path = tmp_path / f"{name}.csv"
    path.write_bytes(content)
    with pytest.raises(SourceFileError):
        ingest.ingest_file(
            "hhs_uc_daily",
            path,
            vintage=dt.date(2025, 12, 22),
            run_at=RUN_AT,
            run_id="manual/refused",
        )
    archive = Archive()
    [check] = archive.entries("hhs_uc_daily")
    assert check.outcome == "new" and check.url == f"manual:{path.name}"
    assert archive.read(check.sha256, "hhs_uc_daily") == content  # the evidence, as received
    [refusal] = archive.refusals("hhs_uc_daily")
    assert refusal.sha256 == check.sha256 and refusal.error.startswith("layout_changed: ")
    assert raw_state() == (0, 0)


def test_a_fetched_error_page_is_kept_and_recorded_as_refused(mirror) -> None:
    mirror.set_fault("hhs_uc_daily", "html_error")
    fetched = ingest.fetch("hhs_uc_daily", run_at=RUN_AT)
    with pytest.raises(SourceFileError):
        ingest.parse(fetched)
    archive = Archive()
    rows = archive.entries("hhs_uc_daily", include_refusals=True)
    assert [(r.outcome, r.sha256) for r in rows] == [
        ("new", fetched["sha256"]),
        ("refused", fetched["sha256"]),
    ]
    assert rows[1].run_at == RUN_AT and "HTML page" in rows[1].error
    # The freshness monitor still sees one check, the one that brought new bytes.
    assert [r.outcome for r in archive.entries("hhs_uc_daily")] == ["new"]


# ------------------------------------------------------------ parsed/ files


def test_concurrent_parses_of_one_file_use_their_own_temp_names(
    data_dir, real_hhs_bytes, tmp_path
) -> None:
    """Two processes parse the same archived file at once; both succeed, no temp is left."""
    import multiprocessing

    entry = Archive().store_manual(
        "hhs_uc_daily",
        _write(tmp_path, real_hhs_bytes),
        vintage=dt.date(2025, 12, 22),
        run_at=RUN_AT,
    )
    fetched = {
        "source": "hhs_uc_daily",
        "kind": "export_csv",
        "sha256": entry.sha256,
        "url": entry.url,
        "vintage": "2025-12-22",
        "run_at": RUN_AT.isoformat(),
        "fetched_at": entry.fetched_at.isoformat(),
    }
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_parse_many, args=(fetched, 3)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    folder = data_dir / "parsed" / "hhs_uc_daily"
    assert sorted(p.name for p in folder.iterdir()) == [f"{entry.sha256}.parquet"]


def _write(folder: Path, content: bytes) -> Path:
    path = folder / "rows.csv"
    path.write_bytes(content)
    return path


def _parse_many(fetched: dict, times: int) -> None:
    for _ in range(times):
        ingest.parse(fetched)


def test_parsed_files_are_pruned_by_age_and_a_pruned_loaded_file_is_no_error(
    data_dir, real_hhs_bytes, tmp_path
) -> None:
    import os
    import time

    later = RUN_AT + dt.timedelta(days=10)
    result = ingest.ingest_file(
        "hhs_uc_daily",
        _write(tmp_path, real_hhs_bytes),
        vintage=dt.date(2025, 12, 22),
        run_at=later,
        run_id="m/1",
    )
    folder = data_dir / "parsed" / "hhs_uc_daily"
    parsed = folder / f"{result['sha256']}.parquet"
    stale_tmp, fresh_tmp = folder / ".abc.1.tmp", folder / ".abc.2.tmp"
    stale_tmp.write_bytes(b"x")
    fresh_tmp.write_bytes(b"x")
    now = time.time()
    eight_days_ago = now - 8 * 86400
    os.utime(parsed, (eight_days_ago, eight_days_ago))
    os.utime(stale_tmp, (now - 7 * 3600, now - 7 * 3600))
    assert sorted(p.name for p in ingest.prune_parsed("hhs_uc_daily", now=now)) == sorted(
        [parsed.name, stale_tmp.name]
    )
    assert fresh_tmp.exists()
    # A load re-run after the prune (ops cleared an old task): the file is loaded, all is well.
    validated = {
        "source": "hhs_uc_daily",
        "kind": "export_csv",
        "sha256": result["sha256"],
        "parsed_path": str(parsed),
    }
    again = ingest.load(validated, run_at=later, run_id="m/2")
    assert again["already_loaded"] and raw_state() == (720, 1)


# ------------------------------------------------------------------ every bad file, one refusal


def test_a_parser_crash_is_one_refusal_naming_the_url_and_a_good_file_resolves_it(mirror) -> None:
    """Any exception inside a parser is the bad-file error: one ops incident, no traceback,
    resolved by the next file that loads (like a layout change)."""
    from returnwatch.sources import hhs_uc_daily as hhs

    run_all()
    mirror.set_as_of(dt.date(2025, 12, 15))
    real_parse = hhs.KINDS["export_csv"].parse

    def crashing(content: bytes, *, file: str):
        raise IndexError("list index out of range")  # what a damaged file did to a parser

    # FileKind is frozen: swapped in place for this test, and put back below.
    object.__setattr__(hhs.KINDS["export_csv"], "parse", crashing)
    try:
        at = RUN_AT + dt.timedelta(days=3)
        fetched = {**ingest.fetch("hhs_uc_daily", run_at=at), "is_new": True}
        with pytest.raises(SourceFileError) as caught:
            ingest.parse(fetched)
    finally:
        object.__setattr__(hhs.KINDS["export_csv"], "parse", real_parse)
    error = caught.value
    assert error.kind == "bad_file" and "IndexError" in error.problem
    assert error.file == f"{fetched['url']} (sha256 {fetched['sha256'][:12]})"
    ingest.report_bad_file("hhs_uc_daily", error, run_at=at, run_id="test/crash")
    mirror.set_as_of(dt.date(2025, 12, 17))
    run_all(RUN_AT + dt.timedelta(days=5))
    with warehouse.session() as con:
        incidents = con.execute("select kind, state from monitor.incidents").fetchall()
    assert incidents == [("bad_file", "resolved")]


def test_manual_ingest_refusal_is_one_line_naming_the_path_given(
    data_dir, real_hhs_bytes, tmp_path
) -> None:
    from click.testing import CliRunner

    from returnwatch.cli import main

    lines = real_hhs_bytes.split(b"\r\n")
    lines[4] = lines[4].replace(b",", b",\x00", 1)  # a NUL byte on line 5
    path = tmp_path / "downloads" / "HHS export.csv"
    path.parent.mkdir()
    path.write_bytes(b"\r\n".join(lines))
    result = CliRunner().invoke(main, ["ingest", "hhs_uc_daily", str(path)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and result.exception.__class__ is SystemExit
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"Error: source hhs_uc_daily, file {path} (sha256 ")
    assert "row 5: the file holds NUL bytes" in line
    with warehouse.session() as con:
        assert con.execute("select count(*) from raw.files").fetchone() == (0,)


def test_the_dag_and_the_cli_fetch_the_single_file_source_alike(mirror) -> None:
    """The DAG fetches what ``discover`` lists; for HHS's daily export that is the address
    ``ingest.fetch`` (the CLI, backfill) asks for, so the conditional GET carries over."""
    first = ingest.fetch("hhs_uc_daily", run_at=RUN_AT)
    [link] = ingest.discover("hhs_uc_daily", run_at=RUN_AT)
    again = ingest.fetch_link(link, run_at=RUN_AT)
    assert (first["outcome"], again["outcome"]) == ("new", "not_modified")
    assert again["url"] == first["url"] and again["to_load"] and again["kind"] == first["kind"]
