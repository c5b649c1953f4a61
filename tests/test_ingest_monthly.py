"""The ingest steps for the multi-file sources (CBP, SEGOB, HHS monthly pages) against the
replay mirror, without Airflow: every listed file loads once, the same vintage twice changes
nothing, an oversize file is refused at the cap and nothing is loaded."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from returnwatch import ingest, warehouse
from returnwatch.archive import Archive
from returnwatch.fetch import ResponseTooLarge
from returnwatch_replay.mirror import ReplayMirror

RUN_AT = dt.datetime(2025, 6, 17, 14, tzinfo=dt.UTC)
SOURCES = ("cbp_encounters_monthly", "segob_bulletin_monthly", "hhs_uc_monthly")


@pytest.fixture
def mirror(data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    with ReplayMirror(as_of=RUN_AT.date()) as running:
        for name, value in running.env().items():
            monkeypatch.setenv(name, value)
        yield running


def load_all(source: str, run_at: dt.datetime = RUN_AT) -> list[dict]:
    results = []
    for link in ingest.discover(source, run_at=run_at):
        fetched = ingest.fetch_link(link, run_at=run_at)
        if not fetched["to_load"]:
            results.append(fetched)
            continue
        validated = ingest.validate(ingest.parse(fetched), run_at=run_at)
        results.append(ingest.load(validated, run_at=run_at, run_id="test/run"))
    return results


def warehouse_state() -> tuple:
    with warehouse.session() as con:
        files = con.execute("select count(*), sum(rows_loaded) from raw.files").fetchone()
        revisions = con.execute("select count(*) from monitor.revisions").fetchone()
    return (*files, *revisions)


@pytest.mark.parametrize("source", SOURCES)
def test_every_listed_file_loads_once_and_a_rerun_changes_nothing(mirror, source) -> None:
    first = load_all(source)
    assert first and all(r.get("rows_loaded", 0) > 0 for r in first), first
    state = warehouse_state()
    # The same day again: every file answers "not modified"; nothing is parsed or loaded.
    again = load_all(source)
    assert [r["outcome"] for r in again] == ["not_modified"] * len(first)
    assert warehouse_state() == state


def test_the_same_vintage_loaded_twice_by_hand_changes_nothing(mirror, tmp_path) -> None:
    [link] = [
        link
        for link in ingest.discover("segob_bulletin_monthly", run_at=RUN_AT)
        if link["kind"] == "cuadro_3_1_1" and link["period"] == "2024"
    ]
    fetched = ingest.fetch_link(link, run_at=RUN_AT)
    path = tmp_path / "cuadro_3.1.1.xls"
    path.write_bytes(Archive().read(fetched["sha256"], "segob_bulletin_monthly"))
    first = ingest.ingest_file(
        "segob_bulletin_monthly",
        path,
        vintage=dt.date(2025, 6, 7),
        run_at=RUN_AT,
        run_id="manual/1",
    )
    assert first["kind"] == "cuadro_3_1_1" and first["rows_loaded"] > 0  # kind detected
    state = warehouse_state()
    second = ingest.ingest_file(
        "segob_bulletin_monthly",
        path,
        vintage=dt.date(2025, 6, 7),
        run_at=RUN_AT,
        run_id="manual/2",
    )
    assert second["already_loaded"] and warehouse_state() == state


@pytest.mark.parametrize("source", ["cbp_encounters_monthly", "segob_bulletin_monthly"])
def test_an_oversize_file_is_refused_at_the_cap_and_nothing_is_loaded(mirror, source) -> None:
    link = ingest.discover(source, run_at=RUN_AT)[-1]
    mirror.set_fault(source, "oversize")
    with pytest.raises(ResponseTooLarge):
        ingest.fetch_link(link, run_at=RUN_AT)
    [entry] = Archive().entries(source)[-1:]
    assert entry.outcome == "failed" and "oversize" in (entry.error or "")
    assert warehouse_state()[:2] == (0, None)


def test_a_landing_page_that_is_down_is_recorded_as_a_failed_check(mirror, monkeypatch) -> None:
    from returnwatch import config
    from returnwatch.fetch import HTTPStatusError

    # No retries: the 500 is final at once (retries are the fetcher's own tests' business).
    cfg = config.source("cbp_encounters_monthly").model_copy(update={"retries": 0})
    monkeypatch.setattr(config, "source", lambda name: cfg)
    mirror.set_fault("cbp_encounters_monthly", "http_500")
    with pytest.raises(HTTPStatusError):
        ingest.discover("cbp_encounters_monthly", run_at=RUN_AT)
    [entry] = Archive().entries("cbp_encounters_monthly")
    assert entry.outcome == "failed" and entry.http_status == 500
    assert entry.url.endswith("/document/stats/nationwide-encounters")
