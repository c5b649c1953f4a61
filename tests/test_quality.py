"""The GX suite for raw.hhs_uc_daily on the real export: what fails the load, what only warns."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from returnwatch import quality, settings
from returnwatch.sources import hhs_uc_daily as hhs

RUN_DATE = {"latest_possible_date": dt.date(2025, 12, 22)}


def validate(suite: str, frame, **kwargs):
    """The suite as ingest runs it: with the export kind's derived columns (report weekday)."""
    return quality.validate(suite, frame, prepare=hhs.KINDS["export_csv"].prepare, **kwargs)


@pytest.fixture(scope="module")
def real_frame(real_hhs_bytes: bytes):
    return hhs.parse(real_hhs_bytes, file="real").frame()


def test_every_expectation_says_fail_or_warn_and_why() -> None:
    for path in settings.expectations_dir().glob("*.json"):
        suite = json.loads(path.read_text())
        for expectation in suite["expectations"]:
            assert expectation["meta"]["severity"] in {"fail", "warn"}, (path, expectation)
            assert expectation["meta"]["why"], (path, expectation)


def test_real_file_passes_with_the_two_real_friday_rows_as_warnings(real_frame) -> None:
    report = validate(
        "hhs_uc_daily", real_frame, source="hhs_uc_daily", file="real", parameters=RUN_DATE
    )
    assert report.failures == []
    assert [(w.expectation, w.rows) for w in report.warnings] == [
        ("expect_column_values_to_be_in_set", [169, 315])
    ]
    findings = report.findings(run_at=dt.datetime(2025, 12, 22, 15, tzinfo=dt.UTC))
    assert len(findings) == 1 and findings[0].severity == "info"
    assert findings[0].details["rows"] == [169, 315]


def test_a_failed_expectation_names_source_file_row_and_why(real_frame) -> None:
    # A negative count never gets this far: the parser refuses it (tests/sources/hhs_uc_daily/test_export_csv.py).
    frame = real_frame.copy()
    frame.loc[frame["source_row"] == 7, "report_date"] = dt.date(2020, 6, 1)  # constructed
    report = validate(
        "hhs_uc_daily", frame, source="hhs_uc_daily", file="abc123", parameters=RUN_DATE
    )
    with pytest.raises(quality.ValidationFailed) as caught:
        report.raise_for_failures()
    message = str(caught.value)
    assert "source hhs_uc_daily" in message and "file abc123" in message
    assert "report_date" in message and "file rows 7" in message
    assert "The dataset starts in 2021" in message


def test_dates_after_the_run_date_fail(real_frame) -> None:
    report = validate(
        "hhs_uc_daily",
        real_frame,
        source="hhs_uc_daily",
        file="real",
        parameters={"latest_possible_date": dt.date(2025, 12, 17)},
    )
    [failure] = report.failures
    # The real file's newest rows are 21 and 18 December 2025 (rows 2 and 3).
    assert failure.column == "report_date" and failure.unexpected_count == 2
    assert failure.rows == [2, 3] and failure.values == ["2025-12-21", "2025-12-18"]


def test_empty_export_fails(real_frame) -> None:
    report = validate(
        "hhs_uc_daily",
        real_frame.iloc[0:0],
        source="hhs_uc_daily",
        file="empty",
        parameters=RUN_DATE,
    )
    assert any(f.expectation == "expect_table_row_count_to_be_between" for f in report.failures)
