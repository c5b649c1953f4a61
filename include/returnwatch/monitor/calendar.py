"""Publishing calendars: which periods a publisher should have published by a given moment.

This module owns the arithmetic of "what should exist by now"; it knows nothing about the
warehouse (``monitor.freshness`` compares its answer with the data). A **release day** (a day
the publisher posts) is kept apart from a **period** (the day or month the figures describe):
HHS posts the previous day's figures, so period D exists when D + ``lag_days`` is a release
day. US federal holidays come from the ``holidays`` package; ad-hoc closures are
``closed_days`` in ``config/monitors.yaml``. ``MonthlyCalendar`` covers CBP, SEGOB and HHS's
monthly pages, with ``grace_days`` after the nominal day.

Why, and the check against the real HHS file: docs/internals.md#monitor-publishing-calendars.
"""

from __future__ import annotations

import calendar as calendar_module
import datetime as dt
import functools
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
ONE_DAY = dt.timedelta(days=1)
# A period older than this many days before the moment judged is never searched for: it bounds
# the work when a source has no data at all (a year of silence is already "stopped").
MAX_LOOKBACK_DAYS = 400
# The same bound for monthly publishers, in months (ten years of silence is "stopped" too).
MAX_LOOKBACK_MONTHS = 120


@functools.cache
def _federal_holidays(country: str, year: int) -> frozenset[dt.date]:
    import holidays

    return frozenset(holidays.country_holidays(country, years=year, observed=True).keys())


@dataclass(frozen=True)
class DailyCalendar:
    """A publisher that releases on some weekdays, skipping public holidays, with a lag.

    ``due_after_hours`` is measured from local midnight at the start of the release day: with
    24, a release counts as missed only once its whole release day has passed in the
    publisher's time zone (a monitor running at 02:00 New York time does not call Monday's
    release missing).
    """

    timezone: str = "America/New_York"
    release_weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    holiday_country: str | None = "US"
    closed_days: frozenset[dt.date] = field(default_factory=frozenset)
    lag_days: int = 1
    due_after_hours: float = 24.0

    def __post_init__(self) -> None:
        if not self.release_weekdays:
            raise ValueError("a daily calendar needs at least one release weekday")
        if self.lag_days < 0 or self.due_after_hours < 0:
            raise ValueError("lag_days and due_after_hours cannot be negative")
        ZoneInfo(self.timezone)  # fail on a misspelt zone when the calendar is built

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def frequency(self) -> str:
        return "day"

    # ------------------------------------------------------------------ days

    def is_holiday(self, day: dt.date) -> bool:
        if day in self.closed_days:
            return True
        return bool(self.holiday_country) and day in _federal_holidays(
            self.holiday_country, day.year
        )

    def is_release_day(self, day: dt.date) -> bool:
        return day.weekday() in self.release_weekdays and not self.is_holiday(day)

    def release_day(self, period: dt.date) -> dt.date:
        """The day the figures for ``period`` are posted (if ``period`` is a period)."""
        return period + dt.timedelta(days=self.lag_days)

    def is_period(self, day: dt.date) -> bool:
        return self.is_release_day(self.release_day(day))

    def release_days(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Days the publisher posts, ``start`` to ``end`` inclusive."""
        return [d for d in _days(start, end) if self.is_release_day(d)]

    def periods(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Days whose figures get published, ``start`` to ``end`` inclusive (HHS: Sun–Thu)."""
        return [d for d in _days(start, end) if self.is_period(d)]

    # ------------------------------------------------------------------ moments

    def due_at(self, period: dt.date) -> dt.datetime:
        """The moment from which the figures for ``period`` count as missing if absent."""
        midnight = dt.datetime.combine(self.release_day(period), dt.time(), tzinfo=self.tz)
        # Wall-clock arithmetic in the publisher's zone, so a DST change does not move it.
        return midnight + dt.timedelta(hours=self.due_after_hours)

    def newest_due_period(self, at: dt.datetime) -> dt.date | None:
        """The newest period whose figures should exist at moment ``at``."""
        _check_aware(at)
        day = at.astimezone(self.tz).date()
        for _ in range(MAX_LOOKBACK_DAYS):
            if self.is_period(day) and self.due_at(day) <= at:
                return day
            day -= ONE_DAY
        return None

    def missed_periods(self, newest: dt.date | None, at: dt.datetime) -> list[dt.date]:
        """Periods due by ``at`` that are newer than ``newest`` (the newest period held).

        With no data at all (``newest`` None) the search is bounded by ``MAX_LOOKBACK_DAYS``.
        """
        due = self.newest_due_period(at)
        if due is None:
            return []
        floor = at.astimezone(self.tz).date() - dt.timedelta(days=MAX_LOOKBACK_DAYS)
        start = (newest + ONE_DAY) if newest is not None else floor
        if start > due:
            return []
        return self.periods(max(start, floor), due)

    def missed_publishing_days(self, newest: dt.date | None, at: dt.datetime) -> int:
        """How many releases are missing: one per period due and not held."""
        return len(self.missed_periods(newest, at))

    def describe(self) -> str:
        """Plain words for alert messages, e.g. 'every weekday except federal holidays'."""
        names = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
        days = sorted(self.release_weekdays)
        if days == [0, 1, 2, 3, 4]:
            text = "every weekday"
        elif len(days) == 7:
            text = "every day"
        else:
            text = "on " + ", ".join(names[d] for d in days)
        if self.holiday_country:
            text += (
                " except federal holidays"
                if self.holiday_country == "US"
                else (f" except {self.holiday_country} public holidays")
            )
        if self.lag_days == 1:
            text += ", each time with the previous day's figures"
        elif self.lag_days > 1:
            text += f", each time with the figures of {self.lag_days} days before"
        return text


@dataclass(frozen=True)
class MonthlyCalendar:
    """A publisher that releases month M's figures once, around a day of a later month.

    ``release_day`` of month M + ``lag_months`` is the nominal release day (clamped to the
    month's last day); month M counts as missing from local midnight at the end of
    ``grace_days`` days after it. Periods are month starts (``dt.date(2025, 5, 1)`` = May 2025).
    """

    timezone: str = "America/New_York"
    release_day: int = 15
    lag_months: int = 1
    grace_days: int = 7

    def __post_init__(self) -> None:
        if not 1 <= self.release_day <= 31:
            raise ValueError(f"release_day {self.release_day} is not a day of a month")
        if self.lag_months < 0 or self.grace_days < 0:
            raise ValueError("lag_months and grace_days cannot be negative")
        ZoneInfo(self.timezone)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def frequency(self) -> str:
        return "month"

    # ------------------------------------------------------------------ months

    def is_period(self, day: dt.date) -> bool:
        return day.day == 1

    def release_date(self, period: dt.date) -> dt.date:
        """The nominal day the figures for month ``period`` come out."""
        year, month = _add_months(period.year, period.month, self.lag_months)
        return dt.date(
            year, month, min(self.release_day, calendar_module.monthrange(year, month)[1])
        )

    def periods(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Month starts from ``start``'s month to ``end``'s month, inclusive."""
        out: list[dt.date] = []
        year, month = start.year, start.month
        while (year, month) <= (end.year, end.month):
            out.append(dt.date(year, month, 1))
            year, month = _add_months(year, month, 1)
        return out

    # ------------------------------------------------------------------ moments

    def due_at(self, period: dt.date) -> dt.datetime:
        """The moment from which month ``period`` counts as missing if absent."""
        last_grace_day = self.release_date(period) + dt.timedelta(days=self.grace_days)
        return dt.datetime.combine(last_grace_day + ONE_DAY, dt.time(), tzinfo=self.tz)

    def newest_due_period(self, at: dt.datetime) -> dt.date | None:
        """The newest month whose figures should exist at moment ``at``."""
        _check_aware(at)
        local = at.astimezone(self.tz).date()
        year, month = local.year, local.month
        for _ in range(MAX_LOOKBACK_MONTHS):
            period = dt.date(year, month, 1)
            if self.due_at(period) <= at:
                return period
            year, month = _add_months(year, month, -1)
        return None

    def missed_periods(self, newest: dt.date | None, at: dt.datetime) -> list[dt.date]:
        """Months due by ``at`` that are newer than ``newest`` (the newest month held)."""
        due = self.newest_due_period(at)
        if due is None:
            return []
        local = at.astimezone(self.tz).date()
        floor = dt.date(*_add_months(local.year, local.month, -MAX_LOOKBACK_MONTHS), 1)
        if newest is None:
            start = floor
        else:
            start = dt.date(*_add_months(newest.year, newest.month, 1), 1)
        if start > due:
            return []
        return self.periods(max(start, floor), due)

    def missed_publishing_days(self, newest: dt.date | None, at: dt.datetime) -> int:
        """How many monthly releases are missing (the daily calendar's name, kept for both)."""
        return len(self.missed_periods(newest, at))

    def describe(self) -> str:
        """Plain words for alert messages: 'each month, month M's figures around 15 M+1'."""
        later = {0: "the same month", 1: "the next month", 2: "the month after next"}.get(
            self.lag_months, f"{self.lag_months} months later"
        )
        return (
            f"once a month, each month's figures around day {self.release_day} of {later} "
            f"(counted missing {self.grace_days} days after that)"
        )


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    count = (end - start).days + 1
    return [start + dt.timedelta(days=i) for i in range(max(count, 0))]


def _check_aware(moment: dt.datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"calendar moments must be time-zone aware, got {moment!r}")


Calendar = DailyCalendar | MonthlyCalendar


def hhs_daily() -> DailyCalendar:
    """The HHS/DHS daily UC figures calendar with its defaults (config/monitors.yaml may override)."""
    return DailyCalendar()
