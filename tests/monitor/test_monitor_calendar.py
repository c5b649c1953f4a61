"""The HHS publishing calendar on real dates, and against the real file's history."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from returnwatch import config, settings
from returnwatch.monitor import freshness
from returnwatch.monitor.calendar import DailyCalendar
from tests.monitor.hhs_history import at, real_dates

D = dt.date.fromisoformat
HHS = DailyCalendar()


def test_weekend_has_no_figures_and_no_release() -> None:
    # Thursday 11 December 2025's figures come out on Friday; Friday's and Saturday's never.
    assert HHS.is_period(D("2025-12-11")) and HHS.release_day(D("2025-12-11")) == D("2025-12-12")
    assert not HHS.is_period(D("2025-12-12")) and not HHS.is_period(D("2025-12-13"))
    assert HHS.is_period(D("2025-12-14"))  # Sunday's figures, released Monday
    assert HHS.release_days(D("2025-12-08"), D("2025-12-14")) == [
        D("2025-12-08"),
        D("2025-12-09"),
        D("2025-12-10"),
        D("2025-12-11"),
        D("2025-12-12"),
    ]


def test_thanksgiving_removes_wednesdays_figures() -> None:
    # The real file has 23, 24, 25, 27 and 30 November 2025: no 26th (released on Thanksgiving).
    assert not HHS.is_release_day(D("2025-11-27"))
    assert HHS.periods(D("2025-11-23"), D("2025-11-30")) == [
        D("2025-11-23"),
        D("2025-11-24"),
        D("2025-11-25"),
        D("2025-11-27"),
        D("2025-11-30"),
    ]
    real = [d for d in real_dates() if D("2025-11-23") <= d <= D("2025-11-30")]
    assert real == HHS.periods(D("2025-11-23"), D("2025-11-30"))


def test_memorial_day_long_weekend_is_normal() -> None:
    # Thursday 22 May 2025, then Monday 26 May (Memorial Day) released on Tuesday 27.
    assert not HHS.is_release_day(D("2025-05-26"))
    assert HHS.periods(D("2025-05-22"), D("2025-05-27")) == [
        D("2025-05-22"),
        D("2025-05-26"),
        D("2025-05-27"),
    ]
    # Tuesday 27 May in the afternoon: only Thursday's figures are due yet.
    assert HHS.newest_due_period(at("2025-05-27")) == D("2025-05-22")
    assert HHS.missed_publishing_days(D("2025-05-22"), at("2025-05-27")) == 0


def test_juneteenth_removes_the_day_before() -> None:
    assert not HHS.is_release_day(D("2025-06-19"))
    assert not HHS.is_period(D("2025-06-18"))
    assert HHS.is_period(D("2025-06-19"))  # released Friday 20 June
    assert D("2025-06-19") in real_dates() and D("2025-06-18") not in real_dates()


def test_observed_holiday_comes_from_the_holidays_package() -> None:
    # 4 July 2026 is a Saturday: federal offices close on Friday 3 July.
    assert not HHS.is_release_day(D("2026-07-03"))
    assert not HHS.is_period(D("2026-07-02"))


def test_newest_due_period_over_a_weekend() -> None:
    assert HHS.newest_due_period(at("2025-12-13")) == D("2025-12-11")  # Saturday
    assert HHS.newest_due_period(at("2025-12-14")) == D("2025-12-11")  # Sunday
    # Monday noon in New York: Sunday's figures are released today, not missing yet.
    assert HHS.newest_due_period(at("2025-12-15")) == D("2025-12-11")
    assert HHS.newest_due_period(at("2025-12-16")) == D("2025-12-14")
    # The boundary is midnight New York time after the release day (05:00 UTC in winter).
    assert HHS.due_at(D("2025-12-14")) == dt.datetime(2025, 12, 16, 5, tzinfo=dt.UTC)
    assert HHS.newest_due_period(dt.datetime(2025, 12, 16, 4, 59, tzinfo=dt.UTC)) == D("2025-12-11")


def test_missed_publishing_days_in_the_real_june_2025_gap() -> None:
    # Figures dated 10 June, then nothing until 17 June (released 18 June).
    assert HHS.missed_periods(D("2025-06-10"), at("2025-06-16")) == [
        D("2025-06-11"),
        D("2025-06-12"),
    ]
    assert HHS.missed_periods(D("2025-06-10"), at("2025-06-17")) == [
        D("2025-06-11"),
        D("2025-06-12"),
        D("2025-06-15"),
    ]
    assert HHS.missed_publishing_days(D("2025-06-10"), at("2025-06-18")) == 4
    assert HHS.missed_publishing_days(D("2025-06-17"), at("2025-06-18")) == 0
    assert HHS.missed_publishing_days(None, at("2025-06-18")) > 250  # never loaded: bounded


def test_moments_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        HHS.newest_due_period(dt.datetime(2025, 6, 17, 16))


def test_real_history_replayed_day_by_day_alerts_twice() -> None:
    """2023-01 .. 2025-12, a monitor every day at 16:00 UTC, each day's figures arriving on
    their release day: late (3 missed) is reached in January 2023 and June 2025 only."""
    rule = freshness.rule("hhs_uc_daily")
    calendar = rule.calendar.build()
    dates = real_dates()
    late_days = []
    day = dates[0] + dt.timedelta(days=7)
    while day <= dates[-1]:
        newest = max(d for d in dates if calendar.release_day(d) <= day)
        if calendar.missed_publishing_days(newest, at(day)) >= rule.late_after_missed:
            late_days.append(day)
        day += dt.timedelta(days=1)
    assert {(d.year, d.month) for d in late_days} == {(2023, 1), (2025, 6)}
    assert D("2025-06-17") in late_days


def test_monitors_yaml_builds_the_hhs_calendar() -> None:
    rule = freshness.rule("hhs_uc_daily")
    assert rule.calendar.build() == HHS
    assert (rule.late_after_missed, rule.stopped_after_missed) == (3, 5)
    assert rule.table == "raw.hhs_uc_daily"


def test_a_bad_monitors_yaml_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(settings.config_dir() / "sources.yaml", tmp_path / "sources.yaml")
    text = (settings.config_dir() / "monitors.yaml").read_text()
    (tmp_path / "monitors.yaml").write_text(
        text.replace("stopped_after_missed: 5", "stopped_after_missed: 2")
    )
    monkeypatch.setenv("RETURNWATCH_CONFIG_DIR", str(tmp_path))
    with pytest.raises(config.ConfigError, match="monitors.yaml") as error:
        freshness.rules()
    assert "stopped_after_missed" in str(error.value)
