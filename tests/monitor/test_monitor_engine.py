"""Anomalies, policy rules and revisions inside ``run_monitors``: incidents open, update and
resolve; backfills and catch-up runs record history without paging; missing marts are skipped.

The mart rows are real: ``series.cbp_uc_rows()`` is IOM's copy of CBP's Southwest-border
encounters of unaccompanied children, shaped like ``marts.cbp_uc_encounters_monthly``. Each run
replaces the mart with the months published by then, as ``transform`` would.
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from returnwatch.monitor import engine, run_monitors
from returnwatch_replay import series as real
from tests.monitor.hhs_history import at
from tests.monitor.monthly_history import CBP, MonthlyHistory

D = dt.date.fromisoformat
MART = "marts.cbp_uc_encounters_monthly"


@pytest.fixture(scope="module")
def cbp_rows() -> pd.DataFrame:
    return real.cbp_uc_rows()


def publish_mart(con, rows: pd.DataFrame, through: str) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    part = rows[rows["month"] <= pd.Timestamp(through)]
    con.register("mart_rows", part)
    con.execute(f"CREATE OR REPLACE TABLE {MART} AS SELECT * FROM mart_rows")
    con.unregister("mart_rows")


def run(con, day: str, monitors: tuple[str, ...], run_id: str | None = None):
    return run_monitors(
        run_at=at(day), run_id=run_id or f"monitor/scheduled__{day}", con=con, monitors=monitors
    )


def rows(con, sql: str, params: list | None = None) -> list[tuple]:
    return con.execute(sql, params or []).fetchall()


def alerts(con) -> list[tuple]:
    return rows(
        con,
        "SELECT i.series, a.event FROM monitor.alerts a "
        "JOIN monitor.incidents i USING (incident_id) ORDER BY a.seq",
    )


# --------------------------------------------------------------------------- lifecycle


def test_anomaly_opens_updates_and_resolves(con, cbp_rows) -> None:
    """Guatemalan children under Title 8 in 2025 (real): 1,112 in January, then February and
    March fall far below (the detector's critical drops, capped at warning by the figure's
    severity policy: a fall in encounters is not by itself harm), April is back in the band."""
    guatemala = cbp_rows[cbp_rows["citizenship"] == "GUATEMALA"]
    series = "cbp_uc_encounters:encounters:GUATEMALA:Title 8"
    steps = [
        ("2025-01", "2025-02-24", None),
        ("2025-02", "2025-03-24", "opened"),
        ("2025-03", "2025-04-24", None),
        ("2025-04", "2025-05-24", "resolved"),
    ]
    for through, day, event in steps:
        publish_mart(con, guatemala, f"{through}-01")
        report = run(con, day, ("anomaly",))
        assert [a.split(":")[1] for a in report.alerts] == ([event] if event else []), through
    assert alerts(con) == [(series, "opened"), (series, "resolved")]
    [(state, kind, severity, summary)] = rows(
        con, "SELECT state, kind, max_severity, summary FROM monitor.incidents"
    )
    assert (state, kind, severity) == ("resolved", "anomaly_drop", "warning")
    [(by_detector,)] = rows(
        con,
        "SELECT DISTINCT details->>'severity_by_detector' FROM "
        "monitor.findings WHERE period = '2025-02' AND severity <> 'info'",
    )
    assert by_detector == "critical"
    assert "2025-03" in summary  # updated by March's finding, without a second alert
    judged = dict(rows(con, "SELECT series, period FROM monitor.judged WHERE monitor = 'anomaly'"))
    assert judged[series] == "2025-04"


def test_policy_rule_opens_updates_and_resolves(con, cbp_rows) -> None:
    """Mexican children expelled under Title 42 after P.J.E.S. v. Wolf (18 Nov 2020), real
    CBP rows: 2 in December 2020, 18 in January 2021, 3 in February, none in March to May."""
    rule = "uc_expelled_after_pjes_order"
    mexican = cbp_rows[cbp_rows["citizenship"] == "MEXICO"]
    # December 2020 holds 2 Mexican records: a `check` (confirm with CBP), recorded, not
    # paged. January 2021 (18 records, between the injunction, its stay and CDC's exception)
    # is contested: a warning that opens the incident.
    steps = [("2020-11", None), ("2020-12", None), ("2021-01", "opened"), ("2021-05", "resolved")]
    for through, event in steps:
        publish_mart(con, mexican, f"{through}-01")
        day = (pd.Timestamp(through) + pd.DateOffset(months=1, days=20)).date().isoformat()
        report = run(con, day, ("policy_rule",))
        assert [a.split(":")[1] for a in report.alerts] == ([event] if event else []), through
    assert alerts(con) == [(rule, "opened"), (rule, "resolved")]
    [(state, severity, summary)] = rows(
        con, "SELECT state, max_severity, summary FROM monitor.incidents"
    )
    assert (state, severity) == ("resolved", "warning")
    assert "2021-01" in summary and "contested" in summary
    assert rows(
        con,
        "SELECT severity, kind FROM monitor.findings WHERE series = ? AND "
        "period = '2020-12' AND details->>'history' IS NULL",
        [rule],
    ) == [("check", "rule_check")]
    # February 2021 arrived with March-May in one catch-up: judged, recorded, never alerted.
    catch_up = rows(
        con,
        "SELECT period, severity, details->>'history' FROM monitor.findings "
        "WHERE series = ? AND period > '2021-01' ORDER BY period",
        [rule],
    )
    assert catch_up == [("2021-02", "info", "catch_up")]
    # November 2020 straddles the order: info, on the first run.
    assert rows(
        con,
        "SELECT severity, kind FROM monitor.findings WHERE series = ? AND period = '2020-11'",
        [rule],
    ) == [("info", "rule_partial_period")]


def test_the_same_condition_on_the_next_run_updates_and_a_rerun_changes_nothing(
    con, cbp_rows
) -> None:
    mexican = cbp_rows[cbp_rows["citizenship"] == "MEXICO"]
    publish_mart(con, mexican, "2020-12-01")
    run(con, "2021-01-21", ("policy_rule",))
    publish_mart(con, mexican, "2021-01-01")
    first = run(con, "2021-02-21", ("policy_rule",))
    assert len(first.alerts) == 1
    again = run(con, "2021-02-22", ("policy_rule",))  # January still the newest
    assert again.alerts == [] and again.incidents_opened == 0
    assert [f["severity"] for f in again.findings if f["period"] == "2021-01"] == ["warning"]
    snapshot = rows(con, "SELECT * EXCLUDE (judged_at) FROM monitor.judged ORDER BY ALL")
    rerun = run(con, "2021-02-22", ("policy_rule",))  # an Airflow clear of that run
    assert rerun.alerts == []
    assert rows(con, "SELECT * EXCLUDE (judged_at) FROM monitor.judged ORDER BY ALL") == snapshot
    assert rows(con, "SELECT count(*) FROM monitor.incidents WHERE state = 'open'") == [(1,)]


# --------------------------------------------------------------------------- backfill


def test_backfill_over_the_full_real_cbp_history_alerts_on_nothing_old(
    con, cbp_rows, monthly_con
) -> None:
    """Every CBP file the mirror has (March 2021 .. June 2025 vintages) loaded at once, the
    whole history in the mart, then a first monitor run: the policy-rule violations of
    2020-2023, the anomalies of 2020-2025 and the 19 restated March-2021 figures are all
    recorded as history; nothing pages, because May 2025 (the newest month) is quiet."""
    history = monthly_con
    for release_day in (
        "2021-03-02",
        "2024-10-15",
        "2024-11-15",
        "2025-01-15",
        "2025-03-17",
        "2025-06-16",
    ):
        history.cbp(D(release_day), received=at("2025-06-17", 14))
    publish_mart(con, cbp_rows, "2025-05-01")
    report = run(con, "2025-06-17", ("freshness", "anomaly", "policy_rule", "revision"))
    assert report.alerts == [], report.findings
    assert report.states[CBP] == "fresh"
    history_rows = rows(
        con,
        "SELECT monitor, min(period), max(period), count(*), "
        "bool_and(severity = 'info') FROM monitor.findings "
        "WHERE details->>'history' = 'history' GROUP BY 1 ORDER BY 1",
    )
    by_monitor = {m: (lo, hi, n, all_info) for m, lo, hi, n, all_info in history_rows}
    # Title 42 expulsions of non-Mexican children from March 2020, of any child after the
    # court order: 19 months each, plus November 2020 (straddling the order).
    assert by_monitor["policy_rule"][:3] == ("2020-03", "2023-05", 39)
    assert by_monitor["anomaly"][1] < "2025-05" and by_monitor["anomaly"][2] > 50
    assert all(v[3] for v in by_monitor.values())
    assert rows(con, "SELECT count(*) FROM monitor.revisions") == [(19,)]
    # The next month: a catch-up of three months at once still pages only about the newest.
    judged = dict(
        rows(con, "SELECT series, period FROM monitor.judged WHERE monitor = 'policy_rule'")
    )
    assert set(judged.values()) == {"2025-05"}


def test_catch_up_pages_only_about_the_newest_period(con, cbp_rows) -> None:
    """The monitor last judged December 2024; January-April 2025 arrive together. The 2025
    collapse (February-March drops for most nationalities) is recorded as catch-up, and April,
    the newest, decides what pages."""
    publish_mart(con, cbp_rows, "2024-12-01")
    first = run(con, "2025-01-22", ("anomaly",))
    publish_mart(con, cbp_rows, "2025-04-01")
    later = run(con, "2025-05-22", ("anomaly",))
    caught = rows(
        con,
        "SELECT count(*), bool_and(severity = 'info') FROM monitor.findings "
        "WHERE run_id = ? AND details->>'history' = 'catch_up'",
        [later.run_id],
    )[0]
    assert caught[0] >= 20 and caught[1]
    paged = [f for f in later.findings if f["severity"] != "info"]
    # Ecuadorian children kept falling in April 2025 (real): the one page of this catch-up.
    assert [(f["series"], f["period"]) for f in paged] == [
        ("cbp_uc_encounters:encounters:ECUADOR:Title 8", "2025-04")
    ]
    assert first.alerts == [] and len(later.alerts) == 1


@pytest.mark.parametrize(("day", "pages"), [("2025-03-24", True), ("2025-06-02", False)])
def test_a_first_look_at_an_old_newest_period_does_not_page(con, cbp_rows, day, pages) -> None:
    """Guatemalan children under Title 8 through February 2025 (real: a drop the detector calls
    critical, a warning by the figure's severity policy), judged
    for the first time. In March it is news; on 2 June 2025, 94 days after February ended (a new
    installation, or a source that has not published since), it is recorded, not alerted."""
    publish_mart(con, cbp_rows[cbp_rows["citizenship"] == "GUATEMALA"], "2025-02-01")
    report = run(con, day, ("anomaly",))
    assert bool(report.alerts) is pages
    [(severity, history, message)] = rows(
        con,
        "SELECT severity, details->>'history', message FROM monitor.findings "
        "WHERE period = '2025-02' AND kind LIKE 'anomaly%'",
    )
    if pages:
        assert (severity, history) == ("warning", None)
    else:
        assert (severity, history) == ("info", "old_period")
        assert message.endswith("first judged long after the period ended: recorded, not alerted")


def test_an_open_incident_is_not_dropped_when_its_period_grows_old(con, cbp_rows) -> None:
    """The drop opened in March stays the newest period through the summer (no new file): it
    keeps updating its incident; growing old does not resolve it or alert again."""
    publish_mart(con, cbp_rows[cbp_rows["citizenship"] == "GUATEMALA"], "2025-02-01")
    assert len(run(con, "2025-03-24", ("anomaly",)).alerts) == 1
    later = run(con, "2025-08-01", ("anomaly",))
    assert later.alerts == []
    assert rows(con, "SELECT count(*) FROM monitor.incidents WHERE state = 'open'") == [(1,)]


@pytest.mark.parametrize(
    ("newest", "day", "old"),
    [
        ("2025-02", "2025-05-31", False),
        ("2025-02", "2025-06-01", True),
        ("2025-06-10", "2025-06-24", False),
        ("2025-06-10", "2025-06-25", True),
    ],
)
def test_old_means_longer_ago_than_any_publisher_waits(newest, day, old) -> None:
    frequency = "month" if len(newest) == 7 else "day"
    assert engine._is_old(newest, frequency, at(day)) is old


# --------------------------------------------------------------------------- revisions


def test_cbp_restatements_of_march_2021_stay_within_the_tolerance(con, monthly_con) -> None:
    """The 19 real restated cells (Washington Post's March-2021 figures vs the FY21-FY24 file)
    move no month of unaccompanied children by 2 %: judged, no finding."""
    monthly_con.cbp(D("2021-03-20"), received=at("2021-03-20", 14))
    run(con, "2021-03-20", ("revision",))
    monthly_con.cbp(D("2025-06-17"), received=at("2025-06-17", 14))
    assert rows(con, "SELECT count(*) FROM monitor.revisions") == [(19,)]
    report = run(con, "2025-06-17", ("revision",))
    assert report.findings == [] and report.alerts == []
    mark = rows(con, "SELECT period FROM monitor.judged WHERE monitor = 'revision'")[0][0]
    assert mark > "2021"


def test_revision_findings_one_per_file_and_series_settled_only() -> None:
    """The real CBP cells of Jan 2021 and Oct 2020, with the March-2021 totals of UC encounters,
    restated beyond the tolerance (a constructed 10 % cut): Oct 2020 is settled (the older file
    came out four months later), January 2021 was one month old (provisional)."""
    spec = engine.load_revisions_config().tables["raw.cbp_encounters_aor"]
    cells = pd.DataFrame(
        {
            "new_file": ["n", "n"],
            "old_file": ["o", "o"],
            "new_vintage": [D("2024-10-15")] * 2,
            "old_vintage": [D("2021-03-02")] * 2,
            "period": [D("2020-10-01"), D("2021-01-01")],
            "demographic": ["UC / Single Minors"] * 2,
            "old_total": [4767.0, 5871.0],
            "new_total": [4290.0, 5284.0],
        }
    )
    [finding] = engine.revision_findings(
        cells,
        table="raw.cbp_encounters_aor",
        figure="encounters",
        spec=spec,
        run_at=at("2025-06-17"),
        tolerance=0.02,
        absolute_floor=2,
    )
    assert (finding.monitor, finding.kind, finding.severity) == (
        "revision",
        "revision_restated",
        "warning",
    )
    assert finding.series == "raw.cbp_encounters_aor.encounters:UC / Single Minors"
    assert [r["period"] for r in finding.details["restated"]] == ["2020-10"]
    assert finding.details["provisional_restated"] == 1
    assert "4,767 → 4,290 (-10.0%)" in finding.message


def test_a_restated_settled_day_alerts_once_and_closes_quietly(
    con, tmp_path, real_hhs_bytes
) -> None:
    from returnwatch import ingest

    def load(name: str, content: bytes, vintage: str, day: str) -> None:
        path = tmp_path / name
        path.write_bytes(content)
        ingest.ingest_file(
            "hhs_uc_daily", path, vintage=D(vintage), run_at=at(day, 15), run_id=f"test/{name}"
        )

    load("a.csv", real_hhs_bytes, "2025-12-22", "2025-12-22")
    con.execute("CHECKPOINT")
    run(con, "2025-12-22", ("revision",))
    # Constructed edit of the real file: 1 December 2025's children in HHS care restated.
    lines = real_hhs_bytes.split(b"\n")
    [i] = [n for n, line in enumerate(lines) if line.startswith(b'"December 01, 2025"')]
    assert b'"2,410"' in lines[i]
    lines[i] = lines[i].replace(b'"2,410"', b'"2,610"')  # +200 children in care (+8.3 %)
    load("b.csv", b"\n".join(lines), "2025-12-23", "2025-12-23")
    opened = run(con, "2025-12-23", ("revision",))
    assert [a.split(":")[1] for a in opened.alerts] == ["opened"]
    [finding] = [f for f in opened.findings if f["monitor"] == "revision"]
    assert finding["details"]["restated"][0]["period"] == "2025-12-01"
    assert "2025-12-01 2,410 → 2,610 (+8.3%)" in finding["message"]
    closed = run(con, "2025-12-24", ("revision",))
    assert closed.alerts == [] and closed.incidents_resolved == 0
    assert rows(con, "SELECT state FROM monitor.incidents") == [("resolved",)]


# --------------------------------------------------------------------------- missing marts


def test_missing_marts_are_skipped_and_named(con) -> None:
    report = run(con, "2025-06-17", ("anomaly", "policy_rule"))
    assert report.alerts == [] and report.findings == []
    assert any("marts.cbp_uc_encounters_monthly does not exist yet" in s for s in report.skipped)
    assert len(report.skipped) == 6 + 3


def test_a_mart_without_a_rule_column_is_skipped_not_fatal(con, cbp_rows) -> None:
    publish_mart(con, cbp_rows.drop(columns=["title_of_authority"]), "2025-05-01")
    report = run(con, "2025-06-17", ("anomaly", "policy_rule"))
    assert any(s.startswith("anomaly cbp_uc_encounters: cannot read") for s in report.skipped)
    assert any(
        s.startswith("policy_rule uc_expelled_after_pjes_order: cannot evaluate")
        for s in report.skipped
    )
    assert json.loads(rows(con, "SELECT sources FROM monitor.runs")[0][0]) == []


@pytest.fixture
def monthly_con(con) -> MonthlyHistory:
    return MonthlyHistory(con)
