"""The watchdog on real HHS data: a source DAG paused for two of its intervals makes the source
``unchecked`` (status, monitor, summary) and sends ops ONE alert naming the last check and the
DAG; the next check resolves it. Also: a monitor that has not completed for 26 hours."""

from __future__ import annotations

import datetime as dt

from returnwatch import status as status_mod
from returnwatch.alerts.dispatch import dispatch
from returnwatch.monitor import run_monitors
from returnwatch.monitor.watchdog import DagFacts, evaluate_watchdog
from tests.monitor.hhs_history import SOURCE, at

MINUTES = dt.timedelta(minutes=5)


def paused(dag_id: str) -> DagFacts:
    """Airflow's answer while the HHS daily DAG is paused (the others run normally)."""
    return DagFacts(
        dag_id=dag_id, is_paused=dag_id == SOURCE, next_dagrun=at("2025-06-09", 15), failed_runs=0
    )


def ops_posts(standin) -> list[dict]:
    return [c.payload for c in standin.calls("chat.postMessage")]


def test_paused_source_dag_turns_unchecked_alerts_once_and_resolves(
    con, history, slack_standin
) -> None:
    # Friday 6 June 2025, 15:00 UTC: the DAG fetched the real file through Thursday 5 June.
    history.publish("2025-06-05", received=at("2025-06-06", 15))
    # One interval later (DAG paused since): not yet unchecked, nothing sent.
    report = dispatch(
        run_id="dispatch_alerts/1", now=at("2025-06-07", 16), dag_facts=paused, con=con
    )
    assert report["watchdog_alerts"] == [] and ops_posts(slack_standin) == []

    # Two intervals (49 hours) without a check: one ops alert naming last check and DAG.
    sunday = at("2025-06-08", 16)
    report = dispatch(run_id="dispatch_alerts/2", now=sunday, dag_facts=paused, con=con)
    assert len(report["watchdog_alerts"]) == 1
    [post] = ops_posts(slack_standin)
    assert post["channel"] == "#returnwatch-ops"
    assert "has not checked the site since 2025-06-06 15:00 UTC (49 hours ago)" in post["text"]
    assert f"The DAG that should have made it, {SOURCE}, is paused" in post["text"]

    # The monitor (daily) judges the same: not fresh but unchecked; status and summary say so.
    run_monitors(
        run_at=sunday, run_id="monitor/sunday", con=con, sources=[SOURCE], monitors=["freshness"]
    )
    source = next(s for s in status_mod.collect(con).sources if s.source == SOURCE)
    assert (source.state, source.mark, source.label) == ("unchecked", "UNCHECKED", "not checked")
    assert "UNCHECKED" in status_mod.render(con)

    # Five minutes later, still paused: no second alert.
    dispatch(run_id="dispatch_alerts/3", now=sunday + MINUTES, dag_facts=paused, con=con)
    assert len(ops_posts(slack_standin)) == 1

    # Resumed: the DAG checks the site (same file, 304), and the incident resolves.
    history.check(sunday + 2 * MINUTES, "not_modified")
    report = dispatch(
        run_id="dispatch_alerts/4", now=sunday + 3 * MINUTES, dag_facts=paused, con=con
    )
    assert len(report["watchdog_alerts"]) == 1
    first, resolved = ops_posts(slack_standin)
    assert "resolved" in resolved["text"].lower()
    assert (
        con.execute(
            "SELECT count(*) FROM monitor.incidents WHERE monitor = 'watchdog' AND state = 'open'"
        ).fetchone()[0]
        == 0
    )
    print(first["text"], "\n---\n", resolved["text"])


def test_status_shows_unchecked_from_the_watchdog_before_the_monitor_runs(con, history) -> None:
    history.publish("2025-06-05", received=at("2025-06-06", 15))
    run_monitors(
        run_at=at("2025-06-06", 16),
        run_id="monitor/friday",
        con=con,
        sources=[SOURCE],
        monitors=["freshness"],
    )
    assert next(s for s in status_mod.collect(con).sources if s.source == SOURCE).state == "fresh"
    dispatch(run_id="dispatch_alerts/x", now=at("2025-06-08", 16), dag_facts=paused, con=con)
    assert (
        next(s for s in status_mod.collect(con).sources if s.source == SOURCE).state == "unchecked"
    )


def test_a_dag_that_cannot_be_asked_is_still_reported(con, history) -> None:
    history.publish("2025-06-05", received=at("2025-06-06", 15))

    def broken(dag_id: str) -> DagFacts:
        raise RuntimeError("no supervisor")

    findings, _ = evaluate_watchdog(con, now=at("2025-06-08", 16), dag_facts=broken)
    [finding] = findings
    assert (
        finding.kind == "source_unchecked"
        and "unknown (Airflow could not be asked)" in finding.message
    )


def test_monitor_not_completed_for_26_hours(con, history) -> None:
    history.publish("2025-06-05", received=at("2025-06-06", 15))
    run_monitors(
        run_at=at("2025-06-06", 16),
        run_id="monitor/friday",
        con=con,
        sources=[SOURCE],
        monitors=["freshness"],
    )
    finished = con.execute("SELECT max(finished_at) FROM monitor.runs").fetchone()[0]
    finished = finished.astimezone(dt.UTC)
    recent, _ = evaluate_watchdog(
        con, now=finished + dt.timedelta(hours=25), dag_facts=lambda d: None
    )
    assert not [f for f in recent if f.kind == "monitor_not_completed"]
    late, _ = evaluate_watchdog(
        con,
        now=finished + dt.timedelta(hours=27),
        dag_facts=lambda d: DagFacts(d, is_paused=False, next_dagrun=None),
    )
    [finding] = [f for f in late if f.kind == "monitor_not_completed"]
    assert finding.message.startswith("The monitor DAG has not completed a run since")
    assert "DAG monitor: not scheduled" in finding.message
