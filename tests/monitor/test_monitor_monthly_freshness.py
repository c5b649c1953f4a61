"""Monthly calendars and freshness of CBP, SEGOB and HHS's monthly pages, on their real files.

Publication days are the replay mirror's, which follow the publishers: CBP's May 2025 file on
Monday 16 June 2025 (mid-month), SEGOB's April 2025 bulletin on 7 June 2025 (day 7 of M+2), and
HHS's fiscal-year pages, whose real copy ends with January 2021 (published 15 February 2021).
"""

from __future__ import annotations

import datetime as dt

import pytest

from returnwatch.monitor import freshness
from returnwatch.monitor.calendar import MonthlyCalendar
from returnwatch.monitor.freshness import assess_freshness
from tests.monitor.hhs_history import at
from tests.monitor.monthly_history import CBP, HHS_MONTHLY, SEGOB, MonthlyHistory

D = dt.date.fromisoformat
CBP_CAL = freshness.rule(CBP).calendar.build()
SEGOB_CAL = freshness.rule(SEGOB).calendar.build()


@pytest.fixture
def monthly(con) -> MonthlyHistory:
    return MonthlyHistory(con)


# --------------------------------------------------------------------------- calendars


def test_monitors_yaml_builds_the_monthly_calendars() -> None:
    assert CBP_CAL == MonthlyCalendar(
        timezone="America/New_York", release_day=15, lag_months=1, grace_days=7
    )
    assert SEGOB_CAL == MonthlyCalendar(
        timezone="America/Mexico_City", release_day=7, lag_months=2, grace_days=14
    )
    rules = freshness.rules()
    assert {
        s: (r.table, r.late_after_missed, r.stopped_after_missed, r.count_missed)
        for s, r in rules.items()
        if s != "hhs_uc_daily"
    } == {
        CBP: ("raw.cbp_encounters_aor", 1, 3, "checked"),
        SEGOB: ("raw.segob_presented_by_nationality", 1, 3, "checked"),
        HHS_MONTHLY: ("raw.hhs_uc_monthly", 1, 3, "checked"),
    }
    assert rules["hhs_uc_daily"].count_missed == "due"  # the daily source as before


def test_cbp_may_figures_are_due_a_week_after_mid_june() -> None:
    # May 2025: nominal 15 June, a week's grace -> missing from midnight New York, 23 June.
    assert CBP_CAL.release_date(D("2025-05-01")) == D("2025-06-15")
    assert CBP_CAL.due_at(D("2025-05-01")) == dt.datetime(2025, 6, 23, 4, tzinfo=dt.UTC)
    assert CBP_CAL.newest_due_period(at("2025-06-17")) == D("2025-04-01")
    assert CBP_CAL.newest_due_period(at("2025-06-23")) == D("2025-05-01")
    assert CBP_CAL.missed_periods(D("2025-05-01"), at("2025-07-24")) == [D("2025-06-01")]
    # December figures come out in January of the next year.
    assert CBP_CAL.release_date(D("2024-12-01")) == D("2025-01-15")


def test_segob_month_m_is_due_around_day_7_of_m_plus_2() -> None:
    assert SEGOB_CAL.release_date(D("2025-04-01")) == D("2025-06-07")
    # Two weeks' grace, in Mexico City: April 2025 is missing from 22 June 2025 00:00 (06:00 UTC).
    assert SEGOB_CAL.due_at(D("2025-04-01")) == dt.datetime(2025, 6, 22, 6, tzinfo=dt.UTC)
    assert SEGOB_CAL.newest_due_period(at("2025-06-17")) == D("2025-03-01")
    assert SEGOB_CAL.missed_periods(None, at("2025-06-17"))[0] == D("2015-06-01")  # 120 months
    assert "day 7 of the month after next" in SEGOB_CAL.describe()


def test_short_months_clamp_the_release_day() -> None:
    cal = MonthlyCalendar(release_day=31, lag_months=1, grace_days=0)
    assert cal.release_date(D("2025-01-01")) == D("2025-02-28")
    with pytest.raises(ValueError, match="aware"):
        cal.newest_due_period(dt.datetime(2025, 6, 17, 16))


# --------------------------------------------------------------------------- CBP


def test_cbp_fresh_on_17_june_with_mays_figures_of_16_june(con, monthly) -> None:
    monthly.cbp(D("2025-06-17"), received=at("2025-06-17", 14))
    state = assess_freshness(con, CBP, run_at=at("2025-06-17"))
    assert (state.state, state.newest_period, state.expected_period) == (
        "fresh",
        D("2025-05-01"),
        D("2025-04-01"),
    )
    assert state.finding is None
    assert (state.last_check_files, state.last_check_outcome) == (2, "new")  # two AOR files


def test_cbp_late_when_june_is_missing_after_its_grace(con, monthly) -> None:
    monthly.cbp(D("2025-06-17"), received=at("2025-06-17", 14))
    for day in ("2025-07-15", "2025-07-22", "2025-07-24"):
        monthly.check(CBP, at(day, 14), "not_modified")
    assert assess_freshness(con, CBP, run_at=at("2025-07-22")).state == "fresh"
    state = assess_freshness(con, CBP, run_at=at("2025-07-24"))
    assert (state.state, state.cause, [d.isoformat() for d in state.missed_periods]) == (
        "late",
        "same_file_again",
        ["2025-06-01"],
    )
    finding = state.finding
    assert (finding.kind, finding.severity, finding.period, finding.expected) == (
        "same_file_again",
        "warning",
        "2025-05",
        "2025-06",
    )
    assert finding.details["frequency"] == "month"
    assert finding.details["missed_label"] == "June 2025"
    assert "newest month May 2025" in finding.message


def test_cbp_stopped_after_three_missing_months(con, monthly) -> None:
    monthly.cbp(D("2025-06-17"), received=at("2025-06-17", 14))
    monthly.check(CBP, at("2025-09-24", 14), "unchanged")
    state = assess_freshness(con, CBP, run_at=at("2025-09-24"))
    assert state.state == "stopped" and state.missed_publishing_days == 3
    assert state.finding.severity == "critical"
    assert state.finding.details["missing_since"] == "2025-06-01"
    assert "nothing since June 2025 (3 monthly release(s) missed)" in state.finding.message


def test_cbp_site_unreachable_only_when_every_file_fails(con, monthly) -> None:
    monthly.cbp(D("2025-06-17"), received=at("2025-06-17", 14))
    [older, newer] = list(monthly.listed[CBP])
    # One dead link among the files is not "the site is down": same files again.
    for day in ("2025-07-23", "2025-07-24"):
        monthly.check(CBP, at(day, 14), "failed", urls=[older])
        monthly.check(CBP, at(day, 14), "not_modified", urls=[newer])
    state = assess_freshness(con, CBP, run_at=at("2025-07-24"))
    assert (state.state, state.cause, state.last_check_failed_files) == (
        "late",
        "same_file_again",
        1,
    )
    # Every file failing, twice in a row: the site is unreachable.
    for day in ("2025-07-25", "2025-07-26"):
        monthly.check(CBP, at(day, 14), "failed")
    state = assess_freshness(con, CBP, run_at=at("2025-07-26"))
    assert (state.cause, state.finding.kind, state.consecutive_failed_checks) == (
        "source_unreachable",
        "source_unreachable",
        2,
    )


def test_cbp_new_file_without_a_new_period(con, monthly) -> None:
    """CBP's page on 17 June lists the FY21-FY24 file too: received later, it brings files but
    no month after May 2025: "new file, no new period", not "same file again"."""
    newest = next(f for f in monthly_cbp_files("2025-06-17") if "fy22-fy25" in f)
    older = next(f for f in monthly_cbp_files("2025-06-17") if "fy21-fy24" in f)
    monthly.cbp(D("2025-06-17"), received=at("2025-06-17", 14), files=(newest,))
    monthly.cbp(D("2025-06-17"), received=at("2025-07-24", 14), files=(older,))
    state = assess_freshness(con, CBP, run_at=at("2025-07-24"))
    assert (state.state, state.cause, state.finding.kind) == (
        "late",
        "no_new_figures",
        "new_file_no_new_period",
    )


def monthly_cbp_files(day: str) -> list[str]:
    from tests.monitor.monthly_history import cbp_release

    return [f.path for f in cbp_release(D(day)).files]


def test_cbp_not_checked_is_recorded_not_blamed_on_cbp(con, monthly) -> None:
    """count_missed: checked — months due since the last check are unverified, not missed;
    the source is ``unchecked`` (never ``fresh``: nobody looked for four years)."""
    monthly.cbp(D("2021-03-20"), received=at("2021-03-20", 15))
    state = assess_freshness(con, CBP, run_at=at("2025-06-08"))
    assert (state.state, state.newest_period, state.cause) == (
        "unchecked",
        D("2021-01-01"),
        "not_checked",
    )
    assert len(state.unverified_periods) == 51 and state.missed_periods == []
    assert (state.finding.kind, state.finding.severity) == ("not_checked", "info")


# --------------------------------------------------------------------------- SEGOB


def test_segob_fresh_late_stopped_on_its_real_calendar(con, monthly) -> None:
    # 7 June 2025: the 2025 workbook through April.
    monthly.segob(D("2025-06-07"), (2025,), received=at("2025-06-07", 15))
    # Ten days without a check: on time as far as anyone knows, but nobody looked.
    assert assess_freshness(con, SEGOB, run_at=at("2025-06-17")).state == "unchecked"
    monthly.check(SEGOB, at("2025-06-16", 15), "not_modified")
    assert assess_freshness(con, SEGOB, run_at=at("2025-06-17")).state == "fresh"
    for day in ("2025-07-20", "2025-07-21", "2025-07-22", "2025-09-22"):
        monthly.check(SEGOB, at(day, 15), "not_modified")
    assert assess_freshness(con, SEGOB, run_at=at("2025-07-21")).state == "fresh"
    late = assess_freshness(con, SEGOB, run_at=at("2025-07-22"))
    assert (late.state, late.missed_periods, late.finding.kind) == (
        "late",
        [D("2025-05-01")],
        "same_file_again",
    )
    stopped = assess_freshness(con, SEGOB, run_at=at("2025-09-22"))
    assert stopped.state == "stopped" and stopped.missed_publishing_days == 3
    assert stopped.finding.details["missed_label"] == "May 2025 to July 2025"


# --------------------------------------------------------------------------- HHS monthly pages


def test_hhs_pages_stopped_since_february_2021_is_one_finding(con, monthly) -> None:
    monthly.hhs_pages(D("2021-03-20"), (2018, 2019, 2020, 2021), received=at("2021-03-20", 13))
    # Before returnwatch looks again, nothing is blamed on HHS.
    before = assess_freshness(con, HHS_MONTHLY, run_at=at("2025-06-16"))
    assert (before.state, before.finding.severity) == ("unchecked", "info")
    monthly.check(HHS_MONTHLY, at("2025-06-16", 13), "not_modified")
    state = assess_freshness(con, HHS_MONTHLY, run_at=at("2025-06-17"))
    assert (state.state, state.cause, state.newest_period) == (
        "stopped",
        "same_file_again",
        D("2021-01-01"),
    )
    finding = state.finding
    assert finding.severity == "critical" and finding.series == HHS_MONTHLY
    assert finding.details["missing_since"] == "2021-02-01"
    assert finding.details["newest_label"] == "January 2021"
    assert finding.details["missed_label"] == "February 2021 to April 2025"
    assert "nothing since February 2021" in finding.message
    # Six months on, without another check: still stopped (judged at its last check).
    later = assess_freshness(con, HHS_MONTHLY, run_at=at("2025-12-22"))
    assert (later.state, later.cause, later.finding.severity) == (
        "stopped",
        "not_checked",
        "critical",
    )
