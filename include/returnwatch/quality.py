"""Great Expectations suites (``expectations/<raw table>.json``) run on parsed DataFrames.

This module owns the "validate" step between parsing and loading. Each expectation in a suite
carries ``meta.severity``: ``fail`` stops the load with an error naming the source, the file,
the expectation and the offending file rows; ``warn`` lets the load go on and becomes a finding
in ``monitor.findings``.

Why DataFrames and not GX's SQL datasource: GX on DuckDB through duckdb-engine fails with
MetricResolutionError, and validating before the load is what keeps bad files out of the
warehouse anyway. great_expectations is heavy (≈8 s to import) and chatty, so it is imported
here lazily, with its logger quietened, and one ephemeral context is reused per process.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from returnwatch import settings
from returnwatch.sources.errors import SourceFileError

if TYPE_CHECKING:
    import pandas as pd

    from returnwatch.monitor.findings import Finding

# How many offending rows an error or finding lists; the count is always complete.
SAMPLE_ROWS = 10


class ValidationFailed(SourceFileError):
    """A ``fail`` expectation did not hold: the file is not loaded."""

    kind = "validation_failed"


@dataclass
class ExpectationOutcome:
    expectation: str
    column: str | None
    severity: str
    why: str
    success: bool
    unexpected_count: int = 0
    rows: list[int] = field(default_factory=list)  # file rows (header = 1), first SAMPLE_ROWS
    values: list[str] = field(default_factory=list)
    error: str | None = None

    def describe(self) -> str:
        target = f"{self.expectation}({self.column})" if self.column else self.expectation
        if self.error:
            return f"{target} could not be evaluated: {self.error}"
        rows = ", ".join(map(str, self.rows))
        more = "" if self.unexpected_count <= len(self.rows) else ", …"
        values = ", ".join(self.values)
        return (
            f"{target} failed for {self.unexpected_count} row(s)"
            + (f" at file rows {rows}{more}" if rows else "")
            + (f" (values: {values})" if values else "")
            + f" — {self.why}"
        )


@dataclass
class ValidationReport:
    source: str
    file: str
    suite: str
    outcomes: list[ExpectationOutcome]

    @property
    def failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success and o.severity == "fail"]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success and o.severity == "warn"]

    def raise_for_failures(self) -> None:
        if not self.failures:
            return
        first = self.failures[0]
        problem = "; ".join(o.describe() for o in self.failures)
        raise ValidationFailed(
            source=self.source,
            file=self.file,
            row=first.rows[0] if first.rows else None,
            column=first.column,
            problem=f"{len(self.failures)} 'fail' expectation(s) of suite "
            f"{self.suite} did not hold: {problem}",
        )

    def findings(self, *, run_at: dt.datetime) -> list[Finding]:
        """One info finding per failed ``warn`` expectation."""
        from returnwatch.monitor.findings import Finding

        return [
            Finding(
                monitor="quality",
                kind="quality_warning",
                source=self.source,
                series=f"{self.suite}:{o.expectation}:{o.column or ''}",
                severity="info",
                message=f"{self.source} file {self.file[:12]}: {o.describe()}",
                run_at=run_at,
                value=float(o.unexpected_count),
                details={
                    "file": self.file,
                    "rows": o.rows,
                    "values": o.values,
                    "expectation": o.expectation,
                    "column": o.column,
                },
            )
            for o in self.warnings
        ]

    def summary(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "expectations": len(self.outcomes),
            "failed": [o.describe() for o in self.failures],
            "warnings": [o.describe() for o in self.warnings],
        }


def validate(
    suite_name: str,
    frame: pd.DataFrame,
    *,
    source: str,
    file: str,
    parameters: dict[str, Any] | None = None,
    prepare: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> ValidationReport:
    """Run suite ``expectations/<suite_name>.json`` on ``frame`` (which has ``source_row``).

    ``prepare`` adds derived columns the suite needs (the file kind's ``prepare``)."""
    prepared = prepare(frame) if prepare else frame
    prepared = prepared.set_index("source_row", drop=False)
    batch = _batch_definition(suite_name).get_batch(batch_parameters={"dataframe": prepared})
    result = batch.validate(
        _suite(suite_name),
        result_format="COMPLETE",
        expectation_parameters=_gx_parameters(parameters or {}),
    )
    outcomes = []
    for res in result.results:
        config = res.expectation_config
        meta = config.meta or {}
        rows = (res.result or {}).get("unexpected_index_list") or []
        values = (res.result or {}).get("partial_unexpected_list") or []
        outcomes.append(
            ExpectationOutcome(
                expectation=config.type,
                column=config.kwargs.get("column"),
                severity=meta.get("severity", "fail"),
                why=meta.get("why", ""),
                success=bool(res.success),
                unexpected_count=int((res.result or {}).get("unexpected_count") or 0),
                rows=[_file_row(r) for r in rows[:SAMPLE_ROWS]],
                values=[_show(v) for v in values[:SAMPLE_ROWS]],
                error=_exception_message(res.exception_info),
            )
        )
    return ValidationReport(source=source, file=file, suite=suite_name, outcomes=outcomes)


@functools.cache
def load_suite(name: str) -> dict[str, Any]:
    """The suite as written in ``expectations/``; every expectation must say its severity."""
    path = settings.expectations_dir() / f"{name}.json"
    spec = json.loads(path.read_text(encoding="utf-8"))
    for number, expectation in enumerate(spec["expectations"], start=1):
        severity = expectation.get("meta", {}).get("severity")
        if severity not in {"fail", "warn"}:
            raise ValueError(
                f"{path}: expectation {number} ({expectation['type']}) must set "
                f"meta.severity to 'fail' or 'warn', not {severity!r}"
            )
    return spec


def _exception_message(info: Any) -> str | None:
    """GX nests exception info per metric; return the first raised exception's message."""
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for value in info.values():
        message = _exception_message(value)
        if message:
            return message
    return None


def _file_row(index_entry: Any) -> int:
    # GX reports the DataFrame index; we index by source_row, and GX wraps it in a dict.
    if isinstance(index_entry, dict):
        return int(index_entry["source_row"])
    return int(index_entry)


def _show(value: Any) -> str:
    if hasattr(value, "isoformat"):
        return value.isoformat()[:10]
    return str(value)


def _gx_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    # Date columns hold datetime.date objects; a datetime would not compare with them.
    return {k: v.date() if isinstance(v, dt.datetime) else v for k, v in parameters.items()}


def quiet_gx_logging() -> None:
    """Silence GX's import-time chatter ("Skipping registering function ...", hundreds of lines
    under Airflow's logging) and its usage analytics. Call before importing great_expectations."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    for name in ("great_expectations", "great_expectations._docs_decorators"):
        logging.getLogger(name).setLevel(logging.WARNING)


def warm_up() -> None:
    """Import GX and make this process's context now (the demo does it while it waits)."""
    _context()


@functools.cache
def _context() -> Any:
    quiet_gx_logging()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    context.data_sources.add_pandas("returnwatch")
    return context


@functools.cache
def _batch_definition(suite_name: str) -> Any:
    asset = _context().data_sources.get("returnwatch").add_dataframe_asset(name=suite_name)
    return asset.add_batch_definition_whole_dataframe("parsed_file")


@functools.cache
def _suite(suite_name: str) -> Any:
    from great_expectations.core.expectation_suite import ExpectationSuite

    spec = load_suite(suite_name)
    suite = ExpectationSuite(
        name=suite_name, expectations=spec["expectations"], meta=spec.get("meta")
    )
    return _context().suites.add(suite)
