"""The watchdog on real HHS data: a source DAG paused for two of its intervals makes the source
``unchecked`` (status, monitor, summary) and sends ops ONE alert naming the last check and the
DAG; the next check resolves it. Also: a monitor that has not completed for 26 hours."""

from __future__ import annotations

import datetime as dt

from returnwatch import status as status_mod
from returnwatch.alerts.dispatch import dispatch
from returnwatch.monitor import run_monitors
from returnwatch.monitor.watchdog import DagFacts, evaluate_watchdog, run_watchdog
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
    now = next(s for s in status_mod.collect(con).sources if s.source == SOURCE)
    assert now.state == "unchecked" and now.watchdog_incident  # the page points to it


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


# ------------------------------------------------- findings grow with changes, not with runs


def watchdog_rows(con) -> list[tuple]:
    return con.execute(
        "SELECT kind, severity, run_at, last_seen_at, details->>'reason' FROM monitor.findings "
        "WHERE monitor = 'watchdog' AND series = ? ORDER BY run_at",
        [SOURCE],
    ).fetchall()


def incidents_of(con) -> list[tuple]:
    return con.execute(
        "SELECT state, opened_at, updated_at, resolved_at, summary FROM monitor.incidents "
        "WHERE monitor = 'watchdog' AND series = ? ORDER BY opened_at",
        [SOURCE],
    ).fetchall()


def test_an_open_condition_is_recorded_once_not_every_five_minutes(con, history) -> None:
    history.publish("2025-06-05", received=at("2025-06-06", 15))
    sunday = at("2025-06-08", 16)
    runs = [sunday + i * MINUTES for i in range(20)]

    # 20 dispatcher runs over the same paused DAG: one row, seen until the last run.
    events = []
    for i, now in enumerate(runs):
        events += run_watchdog(con, now=now, run_id=f"dispatch_alerts/{i}", dag_facts=paused)
    assert [e.event for e in events] == ["opened"]
    [(kind, severity, first_seen, last_seen, reason)] = watchdog_rows(con)
    assert (kind, severity, reason) == ("source_unchecked", "warning", "paused")
    assert (first_seen, last_seen) == (runs[0], runs[-1])
    [(state, opened, updated, _, summary)] = incidents_of(con)
    assert (state, opened, updated) == ("open", runs[0], runs[-1])
    # The page's headline ages with the condition: 49 hours at the first run, 50 h 35 min at
    # the 20th.
    assert "(51 hours ago)" in summary

    # A re-run of an earlier dispatch (an Airflow clear) adds nothing and moves nothing back.
    run_watchdog(con, now=runs[3], run_id="dispatch_alerts/3", dag_facts=paused)
    assert [r[3] for r in watchdog_rows(con)] == [runs[-1]]

    # New evidence (unpaused, yet still no check): one more row, no second alert.
    def unpaused(dag_id: str) -> DagFacts:
        return DagFacts(dag_id, is_paused=False, next_dagrun=runs[-1], failed_runs=0)

    later = [runs[-1] + i * MINUTES for i in range(1, 11)]
    for i, now in enumerate(later):
        # The next run moves with the scheduler: not evidence, no new row.
        def moving(dag_id: str, now: dt.datetime = now) -> DagFacts:
            return DagFacts(dag_id, is_paused=False, next_dagrun=now, failed_runs=0)

        assert run_watchdog(con, now=now, run_id=f"dispatch_alerts/u{i}", dag_facts=moving) == []
    rows = watchdog_rows(con)
    assert [(r[0], r[4]) for r in rows] == [
        ("source_unchecked", "paused"),
        ("source_unchecked", "failing or not running"),
    ]
    assert rows[1][2:4] == (later[0], later[-1])

    # The DAG checks the site again: the resolution is recorded, once, with the ops alert.
    history.check(later[-1] + MINUTES, "not_modified")
    healthy = [later[-1] + i * MINUTES for i in range(2, 22)]
    events = []
    for i, now in enumerate(healthy):
        events += run_watchdog(con, now=now, run_id=f"dispatch_alerts/h{i}", dag_facts=unpaused)
    assert [e.event for e in events] == ["resolved"]
    rows = watchdog_rows(con)
    assert len(rows) == 3
    assert rows[2][:3] == ("source_checked_again", "info", healthy[0])
    [(state, _, _, resolved, _)] = incidents_of(con)
    assert (state, resolved) == ("resolved", healthy[0])
    message = con.execute(
        "SELECT message FROM monitor.findings WHERE kind = 'source_checked_again'"
    ).fetchone()[0]
    assert "checked the site again (at 2025-06-08 18:30 UTC)" in message

    # Two days without a check again: a new row and a new incident, with its own alert.
    reopened = healthy[-1] + dt.timedelta(hours=49)
    events = run_watchdog(con, now=reopened, run_id="dispatch_alerts/r", dag_facts=paused)
    assert [e.event for e in events] == ["opened"]
    rows = watchdog_rows(con)
    assert [r[0] for r in rows] == [
        "source_unchecked",
        "source_unchecked",
        "source_checked_again",
        "source_unchecked",
    ]
    assert rows[3][2:4] == (reopened, reopened)
    assert [i[0] for i in incidents_of(con)] == ["resolved", "open"]


def test_monitor_not_completed_is_recorded_once_while_it_lasts(con, history) -> None:
    history.publish("2025-06-05", received=at("2025-06-06", 15))
    history.check(at("2025-06-07", 15), "not_modified")
    run_monitors(
        run_at=at("2025-06-06", 16),
        run_id="monitor/friday",
        con=con,
        sources=[SOURCE],
        monitors=["freshness"],
    )
    finished = con.execute("SELECT max(finished_at) FROM monitor.runs").fetchone()[0]
    start = finished.astimezone(dt.UTC) + dt.timedelta(hours=27)
    for i in range(20):
        run_watchdog(con, now=start + i * MINUTES, run_id=f"d/{i}", dag_facts=lambda d: None)
    rows = con.execute(
        "SELECT kind, last_seen_at FROM monitor.findings WHERE series = 'monitor' "
        "AND monitor = 'watchdog'"
    ).fetchall()
    assert rows == [("monitor_not_completed", start + 19 * MINUTES)]
