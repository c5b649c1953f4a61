"""Constructed or not is the file's own record: set when it is parsed, carried by raw.files to
the marts, and what keeps a hand-made file from ever alerting advocates."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from returnwatch import ingest, summary, transform, warehouse
from returnwatch.monitor import run_monitors
from returnwatch.provenance import is_constructed, served_name
from returnwatch_replay import series as real
from returnwatch_replay.mirror import ReplayMirror
from tests.monitor.hhs_history import at

RUN_AT = dt.datetime(2026, 1, 5, 15, tzinfo=dt.UTC)


def test_the_name_or_the_marker_decides_never_the_host() -> None:
    # A real file served by the loopback replay mirror is real.
    assert not is_constructed("http://127.0.0.1:8765/cbp/2024-10/nationwide-encounters-aor.csv")
    assert is_constructed("http://127.0.0.1/tests/sbo_fy22_fy25_may_uac_excerpt_constructed.csv")
    assert is_constructed("manual:/home/me/Downloads/section5_minors_constructed.xls")
    assert not is_constructed("manual:/home/me/Downloads/cuadro5.2.1_.xls")
    assert is_constructed(
        "https://portal/cuadro5.2.1_.xls", b"...Nota de la replica: CUADRO CONSTRUIDO A MANO. ..."
    )


def test_the_name_the_server_gives_the_file_counts_like_its_url() -> None:
    real_url = (
        "http://127.0.0.1:8765/segob_bulletin_monthly/work/models/PoliticaMigratoria/CEM/"
        "Estadisticas/BDatos/DevMexEUU/DwnldBD.php?f=BDSIOMR_PUB_2024_UPMRIP.csv"
    )
    assert not is_constructed(real_url, b"FEC_REP,EDA\r\n")
    assert is_constructed(
        real_url, b"FEC_REP,EDA\r\n", served_name="BDSIOMR_PUB_2024_UPMRIP_constructed.csv"
    )
    assert not is_constructed(real_url, served_name="BDSIOMR_PUB_2024_UPMRIP.csv")


@pytest.mark.parametrize(
    "header, name",
    [
        ('attachment; filename="cuadro5.2.1_.xls"', "cuadro5.2.1_.xls"),
        ("attachment; filename=plain_constructed.csv", "plain_constructed.csv"),
        # filename* wins, whichever comes first (RFC 6266 section 4.3); its charset is honoured.
        ("attachment; filename*=UTF-8''caf%C3%A9.csv; filename=\"cafe.csv\"", "café.csv"),
        ("attachment; filename*=iso-8859-1'es'caf%E9.csv", "café.csv"),
        ('attachment; filename="x\\"y.csv"', 'x"y.csv'),
        ('attachment; filename="C:\\\\Users\\\\a\\\\b.csv"', "b.csv"),
        ("attachment; filename*=UTF-8''%2Fetc%2Fpasswd", "passwd"),
        ('attachment; filename="a\x00b\x7f\tc.csv"', "abc.csv"),
        ('attachment; filename="...hidden"', "hidden"),
        ("inline", None),
        ("", None),
        (None, None),
        ('attachment; filename=""', None),
        ("attachment; filename*=UTF-8''" + "%41" * 700, None),  # header past 2,000 characters
    ],
)
def test_served_name_reads_content_disposition_as_a_bare_label(header, name) -> None:
    assert served_name(header) == name


def test_a_constructed_file_ingested_by_hand_is_recorded_as_constructed(
    data_dir: Path, real_hhs_bytes: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "hhs_daily_excerpt_constructed.csv"
    path.write_bytes(real_hhs_bytes)
    ingest.ingest_file(
        "hhs_uc_daily", path, vintage=dt.date(2025, 12, 22), run_at=RUN_AT, run_id="manual/1"
    )
    with warehouse.session() as con:
        assert con.execute("SELECT constructed FROM raw.files").fetchall() == [(True,)]


def _publish(con, rows: pd.DataFrame, constructed: bool) -> None:
    """The CBP mart through January 2021 and its lineage: January's file as flagged."""
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    part = rows[rows["month"] <= pd.Timestamp("2021-01-01")]
    con.register("mart_rows", part)
    con.execute(
        "CREATE OR REPLACE TABLE marts.cbp_uc_encounters_monthly AS SELECT * FROM mart_rows"
    )
    con.unregister("mart_rows")
    con.execute(
        """CREATE OR REPLACE TABLE marts.mart_source_files AS
        SELECT 'cbp_uc_encounters_monthly' AS mart, DATE '2021-01-01' AS period,
               'manual:cbp_jan_2021_constructed.csv' AS url, ? AS constructed""",
        [constructed],
    )


def test_a_constructed_file_loaded_by_hand_never_alerts_advocates(data_dir: Path) -> None:
    mexican = real.cbp_uc_rows()
    mexican = mexican[mexican["citizenship"] == "MEXICO"]
    with warehouse.session() as con:
        # The same January 2021 figures (18 records, a contested period: a warning that
        # opens an incident) resting on a constructed file: recorded as info, no alert.
        _publish(con, mexican, constructed=True)
        report = run_monitors(
            run_at=at("2021-02-21"), run_id="monitor/a", con=con, monitors=("policy_rule",)
        )
        assert report.alerts == []
        jan = con.execute(
            "SELECT severity, details->>'constructed_figures' FROM "
            "monitor.findings WHERE period = '2021-01'"
        ).fetchall()
        assert jan == [("info", "true")]
    with warehouse.session() as con:
        # Control: the same figures from a real file do alert.
        _publish(con, mexican, constructed=False)
        con.execute("DELETE FROM monitor.judged")
        report = run_monitors(
            run_at=at("2021-02-22"), run_id="monitor/b", con=con, monitors=("policy_rule",)
        )
        assert len(report.alerts) == 1


def test_the_mirrors_hand_made_microdata_is_constructed_from_fetch_to_summary(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The section-5 microdata is served at the publisher's real URL (its name says nothing)
    with Content-Disposition naming it ``..._constructed.csv``: the fetch records that name,
    ingest marks the file constructed, the marts and the summary say so. A real table of the
    same site (3.1.1, IOM's real figures), served without the header, stays real."""
    run_at = dt.datetime(2025, 6, 17, 14, tzinfo=dt.UTC)
    with ReplayMirror(as_of=run_at.date()) as mirror:
        for name, value in mirror.env().items():
            monkeypatch.setenv(name, value)
        links = {
            (link["kind"], link["period"]): link
            for link in ingest.discover("segob_bulletin_monthly", run_at=run_at)
        }
        for key in (("microdata", "2024"), ("cuadro_3_1_1", "2024")):
            fetched = ingest.fetch_link(links[key], run_at=run_at)
            ingest.load(
                ingest.validate(ingest.parse(fetched), run_at=run_at),
                run_at=run_at,
                run_id="test/provenance",
            )
    assert links[("microdata", "2024")]["url"].endswith("?f=BDSIOMR_PUB_2024_UPMRIP.csv")
    with warehouse.session() as con:
        files = dict(con.execute("select raw_table, constructed from raw.files").fetchall())
    assert files == {
        "raw.segob_repatriation_events": True,
        "raw.segob_presented_by_nationality": False,
    }

    result = transform.dbt_build(quiet=True)
    assert result.success and result.failed == [], result.messages
    with warehouse.session() as con:
        flags = con.execute("""select comparison, segob_figures_constructed, count(*)
            from marts.cbp_segob_discrepancy_monthly where segob_count is not null
            group by all""").fetchall()
    # Every month of 2024, from the microdata (only all minors: its travel condition is a
    # code returnwatch does not guess).
    assert flags == [("uc_plus_ofo_accompanied_minors", True, 12)]

    lines = summary.render().splitlines()
    [events] = [line for line in lines if "segob_repatriation_events:" in line]
    assert "1 of 1 file(s) CONSTRUCTED" in events
    [presented] = [line for line in lines if "segob_presented_by_nationality:" in line]
    assert "CONSTRUCTED" not in presented
    tables = {
        t["table"]: t["constructed"] for load in summary.collect()["loads"] for t in load["tables"]
    }
    assert tables == {
        "raw.segob_repatriation_events": True,
        "raw.segob_presented_by_nationality": False,
    }
