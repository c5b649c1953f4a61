"""Freshness judged from real HHS rows in a temporary warehouse plus the archive's manifest."""

from __future__ import annotations

import datetime as dt

import pytest

from returnwatch.archive import Archive
from returnwatch.monitor.freshness import assess_freshness, evaluate_freshness
from tests.monitor.hhs_history import SOURCE, at

D = dt.date.fromisoformat


def test_thursday_data_on_saturday_and_sunday_is_fresh(con, history) -> None:
    # Figures through Thursday 11 December 2025, received Friday; the weekend brings nothing.
    history.publish("2025-12-11", received=at("2025-12-12", 15))
    for day in ("2025-12-13", "2025-12-14"):
        history.check(at(day, 15), "not_modified")
        assert evaluate_freshness(con, SOURCE, run_at=at(day)) is None
    state = assess_freshness(con, SOURCE, run_at=at("2025-12-14"))
    assert (state.state, state.newest_period, state.expected_period) == (
        "fresh",
        D("2025-12-11"),
        D("2025-12-11"),
    )
    assert state.missed_publishing_days == 0
    assert state.last_check_outcome == "not_modified"
    assert state.last_new_file_at == at("2025-12-12", 15)


def test_real_june_2025_gap_is_late_with_the_same_file_again(con, history) -> None:
    history.publish("2025-06-10", received=at("2025-06-11", 15))
    for day in ("2025-06-12", "2025-06-13", "2025-06-16", "2025-06-17"):
        history.check(at(day, 15), "unchanged")
    assert evaluate_freshness(con, SOURCE, run_at=at("2025-06-16")) is None  # 2 missed

    finding = evaluate_freshness(con, SOURCE, run_at=at("2025-06-17"))
    assert finding is not None
    assert (finding.monitor, finding.kind, finding.series, finding.severity) == (
        "freshness",
        "same_file_again",
        SOURCE,
        "warning",
    )
    assert finding.period == "2025-06-10" and finding.expected == "2025-06-15"
    assert finding.value == 3
    assert finding.details["state"] == "late"
    assert finding.details["missed_periods"] == ["2025-06-11", "2025-06-12", "2025-06-15"]
    assert finding.details["unchanged_checks_since_new_file"] == 4


def test_failing_checks_make_it_source_unreachable(con, history) -> None:
    history.publish("2025-06-10", received=at("2025-06-11", 15))
    history.check(at("2025-06-12", 15), "unchanged")
    history.check(at("2025-06-16", 15), "failed")
    history.check(at("2025-06-17", 15), "failed")
    finding = evaluate_freshness(con, SOURCE, run_at=at("2025-06-17"))
    assert finding.kind == "source_unreachable" and finding.severity == "warning"
    assert finding.details["consecutive_failed_checks"] == 2
    assert finding.details["last_check_http_status"] == 503


def test_site_down_while_data_is_still_on_time_is_only_recorded(con, history) -> None:
    history.publish("2025-12-11", received=at("2025-12-12", 15))
    history.check(at("2025-12-13", 15), "failed")
    history.check(at("2025-12-14", 15), "failed")
    finding = evaluate_freshness(con, SOURCE, run_at=at("2025-12-14"))
    assert (finding.kind, finding.severity) == ("source_unreachable", "info")
    assert not finding.opens_incident


def test_no_checks_at_all_says_it_may_be_our_side(con, history) -> None:
    history.publish("2025-06-10", received=at("2025-06-11", 15))
    finding = evaluate_freshness(con, SOURCE, run_at=at("2025-06-17"))
    assert finding.kind == "freshness_late"
    assert finding.details["cause"] == "not_checked"


def test_frozen_data_becomes_stopped(con, history) -> None:
    history.publish("2025-12-10", received=at("2025-12-11", 15))
    states = {}
    for offset in range(11):
        day = D("2025-12-11") + dt.timedelta(days=offset)
        history.check(at(day, 15), "not_modified")
        states[day] = assess_freshness(con, SOURCE, run_at=at(day))
    assert states[D("2025-12-14")].state == "fresh"  # a weekend is not late
    assert states[D("2025-12-16")].state == "fresh"  # 11 and 14 missing
    assert states[D("2025-12-17")].state == "late"  # 11, 14, 15
    assert states[D("2025-12-18")].state == "late"  # 11, 14, 15, 16
    assert states[D("2025-12-19")].state == "stopped"  # 11, 14, 15, 16, 17
    last = states[D("2025-12-21")]
    assert last.state == "stopped" and last.missed_publishing_days == 6
    assert last.finding.kind == "same_file_again" and last.finding.severity == "critical"


def test_a_file_received_after_the_run_does_not_count(con, history) -> None:
    """Re-running 17 June after the 18 June file arrived still sees the gap of 17 June."""
    history.publish("2025-06-10", received=at("2025-06-11", 15))
    history.check(at("2025-06-17", 15), "unchanged")
    history.publish("2025-06-17", received=at("2025-06-18", 15))
    old = assess_freshness(con, SOURCE, run_at=at("2025-06-17"))
    assert (old.state, old.newest_period) == ("late", D("2025-06-10"))
    new = assess_freshness(con, SOURCE, run_at=at("2025-06-18"))
    assert (new.state, new.newest_period) == ("fresh", D("2025-06-17"))
    assert new.newest_file_received_at == at("2025-06-18", 15)


def test_a_source_never_loaded_is_an_info_finding(con) -> None:
    finding = evaluate_freshness(con, SOURCE, run_at=at("2025-06-17"), archive=Archive())
    assert (finding.kind, finding.severity) == ("freshness_no_data", "info")


def test_run_at_must_be_aware(con) -> None:
    with pytest.raises(ValueError, match="aware"):
        evaluate_freshness(con, SOURCE, run_at=dt.datetime(2025, 6, 17, 16))
