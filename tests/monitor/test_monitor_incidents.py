"""Findings -> incidents -> alerts in the outbox, over runs on real HHS data."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from returnwatch.alerts import deliver_pending
from returnwatch.monitor import run_monitors, store
from returnwatch.monitor.findings import Finding
from returnwatch.monitor.incidents import process_findings
from tests.monitor.hhs_history import SOURCE, at

D = dt.date.fromisoformat


def run_day(con, day: dt.date | str) -> object:
    day = D(day) if isinstance(day, str) else day
    return run_monitors(run_at=at(day), run_id=f"monitor/scheduled__{day.isoformat()}", con=con)


def rows(con, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def test_frozen_source_over_ten_days_gives_exactly_one_alert(con, history, capsys) -> None:
    # Real figures through Wednesday 10 December 2025, then the publisher goes quiet.
    history.publish("2025-12-10", received=at("2025-12-11", 15))
    delivered = []
    for offset in range(1, 11):
        day = D("2025-12-11") + dt.timedelta(days=offset)
        history.check(at(day, 15), "not_modified")
        run_day(con, day)
        delivered += deliver_pending(con).sent  # the monitor DAG's second task
    assert len(delivered) == 1
    assert rows(con, "SELECT event, status, delivered_via, audience FROM monitor.alerts") == [
        ("opened", "sent", "console", "ops")
    ]
    assert rows(con, "SELECT state, severity, max_severity, kind FROM monitor.incidents") == [
        ("open", "critical", "critical", "same_file_again")
    ]
    states = dict(
        rows(
            con,
            f"SELECT run_at::DATE, state FROM monitor.source_freshness WHERE source = '{SOURCE}'",
        )
    )
    assert len(states) == 10
    assert states[D("2025-12-14")] == "fresh" and states[D("2025-12-21")] == "stopped"
    assert rows(
        con, "SELECT count(*), count(*) FILTER (WHERE status = 'succeeded') FROM monitor.runs"
    ) == [(10, 10)]
    printed = capsys.readouterr().out
    assert printed.count("HHS daily figures are late") == 1


def test_real_june_gap_alerts_late_then_resolved(con, history) -> None:
    history.publish("2025-06-10", received=at("2025-06-11", 15))
    events = []
    for day in (
        "2025-06-12",
        "2025-06-13",
        "2025-06-14",
        "2025-06-15",
        "2025-06-16",
        "2025-06-17",
        "2025-06-18",
        "2025-06-19",
        "2025-06-20",
    ):
        if day == "2025-06-18":  # figures for 17 June arrive on Wednesday 18 June
            history.publish("2025-06-17", received=at(day, 15))
        elif day == "2025-06-20":
            history.publish("2025-06-19", received=at(day, 15))
        else:
            history.check(at(day, 15), "unchanged")
        report = run_day(con, day)
        events += [(day, a.rsplit(":", 1)[1]) for a in report.alerts]
    assert events == [("2025-06-17", "opened"), ("2025-06-18", "resolved")]
    [(state, opened, resolved)] = rows(
        con, "SELECT state, opened_at, resolved_at FROM monitor.incidents"
    )
    assert (state, opened, resolved) == ("resolved", at("2025-06-17"), at("2025-06-18"))
    # The monitor stores facts; the words are rendered when the alert enters the outbox.
    deliver_pending(con, now=at("2025-06-18", 16))
    resolved_text = rows(con, "SELECT text FROM monitor.alerts WHERE event = 'resolved'")[0][0]
    assert "figures resumed on Wednesday 18 June 2025" in resolved_text
    assert "newest figures: Tuesday 17 June 2025" in resolved_text
    assert "after those for Tuesday 10 June 2025" in resolved_text


def test_rerunning_the_same_run_changes_nothing(con, history) -> None:
    history.publish("2025-06-10", received=at("2025-06-11", 15))
    first = run_day(con, "2025-06-17")
    assert len(first.alerts) == 1
    snapshot = [
        rows(con, "SELECT * EXCLUDE (recorded_at) FROM monitor.findings"),
        rows(con, "SELECT * FROM monitor.incidents"),
    ]
    alerts = rows(con, "SELECT alert_id, status FROM monitor.alerts")
    again = run_day(con, "2025-06-17")
    assert again.alerts == []
    assert [
        rows(con, "SELECT * EXCLUDE (recorded_at) FROM monitor.findings"),
        rows(con, "SELECT * FROM monitor.incidents"),
    ] == snapshot
    assert rows(con, "SELECT alert_id, status FROM monitor.alerts") == alerts


def test_rerunning_the_opening_run_after_resolution_does_not_reopen(con, history) -> None:
    history.publish("2025-06-10", received=at("2025-06-11", 15))
    run_day(con, "2025-06-17")
    history.publish("2025-06-17", received=at("2025-06-18", 15))
    run_day(con, "2025-06-18")
    # An Airflow "clear" of the 17 June run: it still sees the gap (as of 17 June)...
    again = run_day(con, "2025-06-17")
    # ...but the incident it opened is resolved by a later run and stays that way.
    assert again.alerts == []
    assert rows(con, "SELECT state FROM monitor.incidents") == [("resolved",)]
    assert rows(con, "SELECT count(*) FROM monitor.alerts") == [(2,)]


def test_an_older_run_never_moves_an_incident_back(con, history) -> None:
    history.publish("2025-06-10", received=at("2025-06-11", 15))
    run_day(con, "2025-06-18")  # late, opened
    report = run_day(con, "2025-06-13")  # a backfill of an earlier day: fresh then
    assert report.alerts == []
    assert rows(con, "SELECT state FROM monitor.incidents") == [("open",)]


def test_info_findings_are_recorded_but_open_nothing(con) -> None:
    finding = Finding(
        monitor="quality",
        kind="quality_warning",
        source=SOURCE,
        series="hhs_uc_daily:expect_column_values_to_be_between:in_hhs_care",
        severity="info",
        message="3 values outside the expected range",
        run_at=at("2025-06-17"),
        value=3.0,
        details={"rows": [4, 9, 12]},
    )
    assert process_findings(con, [finding], run_at=at("2025-06-17"), run_id="r1") == []
    store.record_findings(con, [finding], run_id="r1")  # the validation code's direct call
    assert rows(con, "SELECT count(*) FROM monitor.findings") == [(1,)]
    assert rows(con, "SELECT count(*) FROM monitor.incidents") == [(0,)]
    details = json.loads(rows(con, "SELECT details FROM monitor.findings")[0][0])
    assert details == {"rows": [4, 9, 12]}


def test_an_unevaluated_series_is_not_resolved(con) -> None:
    problem = Finding(
        monitor="ingest",
        kind="layout_changed",
        source=SOURCE,
        series=SOURCE,
        severity="warning",
        message="source hhs_uc_daily, file abc, row 1: unknown header",
        run_at=at("2025-06-17"),
    )
    [opened] = process_findings(
        con, [problem], run_at=at("2025-06-17"), run_id="a", evaluated=[("ingest", SOURCE)]
    )
    assert (opened.event, opened.audience) == ("opened", "ops")
    # Another monitor's run says nothing about ingest: the incident stays open.
    assert (
        process_findings(
            con, [], run_at=at("2025-06-18"), run_id="b", evaluated=[("freshness", SOURCE)]
        )
        == []
    )
    # A file loads again: ingest evaluated the source and found no problem.
    [resolved] = process_findings(
        con, [], run_at=at("2025-06-19"), run_id="c", evaluated=[("ingest", SOURCE)]
    )
    assert resolved.event == "resolved"
    assert rows(con, "SELECT state FROM monitor.incidents") == [("resolved",)]


def test_process_findings_joins_the_callers_transaction(con) -> None:
    problem = Finding(
        monitor="ingest",
        kind="bad_file",
        source=SOURCE,
        series=SOURCE,
        severity="warning",
        message="broken",
        run_at=at("2025-06-17"),
    )
    with pytest.raises(RuntimeError, match="later step"), store.transaction(con):
        process_findings(con, [problem], run_at=at("2025-06-17"), run_id="a")
        raise RuntimeError("a later step of the same unit of work failed")
    assert rows(con, "SELECT count(*) FROM monitor.findings") == [(0,)]
    assert rows(con, "SELECT count(*) FROM monitor.alerts") == [(0,)]


def test_finding_travels_through_xcom_as_a_dict() -> None:
    finding = Finding(
        monitor="quality",
        kind="quality_warning",
        source=SOURCE,
        series="s",
        severity="info",
        message="m",
        run_at=at("2025-06-17"),
        details={"day": dt.date(2025, 6, 17)},
    )
    back = Finding.from_dict(json.loads(json.dumps(finding.as_dict())))
    assert back.run_at == finding.run_at and back.details == {"day": "2025-06-17"}
    assert back.finding_id("r") == finding.finding_id("r")
    with pytest.raises(ValueError, match="severity"):
        Finding(
            monitor="m",
            kind="k",
            source="s",
            series="s",
            severity="fatal",  # type: ignore[arg-type]
            message="m",
            run_at=at("2025-06-17"),
        )
