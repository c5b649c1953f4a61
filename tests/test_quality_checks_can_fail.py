"""Every expectation of every GX suite can fail on a frame its file kind could hand it.

A check that no input can violate is dead weight: it looks like a guarantee and guards nothing.
What a parser already guarantees (no negative count, no blank cell, its own columns, months in
their fiscal year, ...) is tested in ``tests/sources/test_parser_guarantees.py`` instead, and the
suites keep only what the parsers let through. This test holds them to that.

For each suite it takes a parsed file of its kind (``tests/support/parsed_files.py``), drops the
rows the suite already objects to, and gives each expectation its own row, mutated in the
smallest way that breaks just that expectation (a value out of range, a category the suite does
not know, an empty cell, a repeated key, ...). One validation then runs all of them at once,
and each expectation must report exactly its own row(s), and no other expectation those rows.
Table-level expectations (row counts, distinct-value counts) get a frame of their own.
A new expectation type without a mutation here fails the test: say how it can fail.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

from returnwatch import quality, settings
from tests.support import parsed_files

# Rows of each parsed file the mutations start from: enough for one row per expectation, few
# enough that GX stays quick.
BASE_ROWS = 200
UNKNOWN = "(constructed) unknown value!"  # in no value set, matches no regex of the suites
ENCOUNTER_TYPE_INPUTS = {"component", "title_of_authority", "encounter_type"}
TABLE_LEVEL = {
    "expect_table_row_count_to_be_between",
    "expect_column_unique_value_count_to_be_between",
}


@dataclasses.dataclass(frozen=True)
class Mutation:
    """Breaks one expectation on the rows it is given; returns the positions that must fail."""

    rows: int  # how many rows it needs
    apply: Callable[[pd.DataFrame, list[int]], list[int]]
    row_filter: Callable[[pd.DataFrame], pd.Series] | None = None  # rows it may use
    # Expectations on a column derived from the mutated one, which must fail on its row too.
    also: tuple[tuple[str, str | None], ...] = ()


def _set(column: str, value: Any) -> Callable[[pd.DataFrame, list[int]], list[int]]:
    def apply(frame: pd.DataFrame, at: list[int]) -> list[int]:
        frame.loc[at[0], column] = value
        return at

    return apply


def _repeat_row(frame: pd.DataFrame, at: list[int]) -> list[int]:
    """Row ``at[1]`` becomes a copy of row ``at[0]`` (its own file row kept): a repeated key."""
    figures = [c for c in frame.columns if c != "source_row"]
    frame.loc[at[1], figures] = frame.loc[at[0], figures].to_numpy()
    return at


def _day(value: Any) -> dt.date:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def _out_of_range(spec: dict[str, Any], latest: dt.date) -> Callable[..., list[int]]:
    """A value just outside ``expect_column_values_to_be_between``'s bounds."""
    column = spec["column"]
    low, high = spec.get("min_value"), spec.get("max_value")
    if isinstance(high, dict):  # {"$PARAMETER": "latest_possible_date"}
        high = latest
    if isinstance(high, int | float) and not isinstance(high, bool):
        value: Any = high + 1
    elif low is not None:
        value = _day(low) - dt.timedelta(days=1) if isinstance(low, str) else low - 1
    else:
        value = _day(high) + dt.timedelta(days=1)
        if column == "month":  # months are first days: the first month after the bound
            value = (value.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    if column == "month" and low is not None:  # the last month before the bound
        value = value.replace(day=1)

    def apply(frame: pd.DataFrame, at: list[int]) -> list[int]:
        if isinstance(value, dt.date) and column == "report_date" and "release_date" in frame:
            # A daily report's release moves with its data day, so that only the date's own
            # range is broken, not the release lag.
            frame.loc[at[0], "release_date"] += value - frame.loc[at[0], column]
        frame.loc[at[0], column] = value
        return at

    return apply


def _saturday(frame: pd.DataFrame, at: list[int]) -> list[int]:
    """A report date on a Saturday (the figures are published Sunday to Thursday)."""
    taken = set(frame["report_date"])
    day = frame.loc[at[0], "report_date"]
    while day.weekday() != 5 or day in taken:
        day -= dt.timedelta(days=1)
    frame.loc[at[0], "report_date"] = day
    return at


def _is_percent(frame: pd.DataFrame) -> pd.Series:
    return (frame["number_type"] == "Percent") & frame["value"].notna()


# Expectations on columns the file kind's prepare step derives: the mutation is made to the
# parsed columns the derived one is computed from. Keyed by (column, bound or value set).
def _derived(spec: dict[str, Any]) -> Mutation | None:
    column = spec.get("column") or spec.get("column_B")
    if column == "title_42_month":  # a Title 42 row before Title 42 existed

        def title_42(frame: pd.DataFrame, at: list[int]) -> list[int]:
            frame.loc[at[0], "title_of_authority"] = "Title 42"
            if "encounter_type" in frame:
                frame.loc[at[0], "encounter_type"] = "Expulsions"
            frame.loc[at[0], "month"] = dt.date(2019, 6, 1)
            return at

        return Mutation(1, title_42)
    if column == "encounter_type_expected":  # what the other component records

        def swapped(frame: pd.DataFrame, at: list[int]) -> list[int]:
            now = frame.loc[at[0], "encounter_type"]
            frame.loc[at[0], "encounter_type"] = (
                "Apprehensions" if now == "Inadmissibles" else "Inadmissibles"
            )
            return at

        return Mutation(1, swapped)
    if column == "release_lag_days":
        lag = -1 if spec.get("min_value") is not None else int(spec["max_value"]) + 1

        def released(frame: pd.DataFrame, at: list[int]) -> list[int]:
            frame.loc[at[0], "release_date"] = frame.loc[at[0], "report_date"] + dt.timedelta(
                days=lag
            )
            return at

        return Mutation(1, released)
    if column == "percent_value":
        value = 0.5 if spec.get("max_value") is None else float(spec["max_value"]) + 50
        return Mutation(1, _set("value", value), row_filter=_is_percent)
    if column == "report_weekday":
        return Mutation(1, _saturday)
    if column == "country_recognised":  # a nationality label the countries table lacks

        def unknown_country(frame: pd.DataFrame, at: list[int]) -> list[int]:
            frame.loc[at[0], "country"] = "Atlantis (constructed)"
            frame.loc[at[0], "iso3"] = None
            return at

        return Mutation(1, unknown_country)
    return None


def mutation(expectation: dict[str, Any], latest: dt.date) -> Mutation:
    kind, spec = expectation["type"], expectation["kwargs"]
    derived = _derived(spec)
    if derived is not None:
        return derived
    if kind in {"expect_column_values_to_be_in_set", "expect_column_values_to_match_regex"}:
        # CBP's expected encounter type is derived from component and title: an unknown one
        # (or an unknown type) cannot match it either.
        also = (
            (("expect_column_pair_values_to_be_equal", None),)
            if spec["column"] in ENCOUNTER_TYPE_INPUTS
            else ()
        )
        return Mutation(1, _set(spec["column"], UNKNOWN), also=also)
    if kind == "expect_column_values_to_not_be_null":
        return Mutation(1, _set(spec["column"], None))
    if kind == "expect_column_values_to_be_between":
        return Mutation(1, _out_of_range(spec, latest))
    if kind in {"expect_compound_columns_to_be_unique", "expect_column_values_to_be_unique"}:
        return Mutation(2, _repeat_row)
    raise AssertionError(f"no mutation for {kind}({spec}): say how this check can fail")


def table_level_frame(expectation: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
    kind, spec = expectation["type"], expectation["kwargs"]
    if kind == "expect_table_row_count_to_be_between":
        assert spec == {"min_value": 1}, spec
        return frame.iloc[0:0]
    if kind == "expect_column_unique_value_count_to_be_between":
        assert (spec["column"], spec["max_value"]) == ("repatriation_year", 1), spec
        frame = frame.copy()  # one event dated a year before the file's year
        frame.loc[0, "repatriation_date"] -= dt.timedelta(days=366)
        return frame
    raise AssertionError(f"no table-level mutation for {kind}")


def identity(outcome_or_expectation: Any) -> tuple[str, str | None]:
    """How an outcome is matched to its expectation: type and column (GX may reorder them)."""
    if isinstance(outcome_or_expectation, dict):
        return (outcome_or_expectation["type"], outcome_or_expectation["kwargs"].get("column"))
    return (outcome_or_expectation.expectation, outcome_or_expectation.column)


def run(parsed: parsed_files.ParsedFile, frame: pd.DataFrame) -> quality.ValidationReport:
    return quality.validate(
        parsed.kind.suite,
        frame,
        source=parsed.source,
        file=parsed.name,
        parameters={"latest_possible_date": parsed.latest_possible_date},
        prepare=parsed.kind.prepare,
    )


def failing_rows(report: quality.ValidationReport) -> dict[tuple[str, str | None], list[set[int]]]:
    out: dict[tuple[str, str | None], list[set[int]]] = defaultdict(list)
    for outcome in report.outcomes:
        assert outcome.error is None, outcome.describe()
        if outcome.success:
            continue
        assert outcome.unexpected_count == len(outcome.rows), outcome.describe()
        out[identity(outcome)].append(set(outcome.rows))
    return out


def clean_base(parsed: parsed_files.ParsedFile) -> pd.DataFrame:
    """The file's first rows without those its suite already objects to (real data has a few
    odd rows, e.g. figures dated on a Friday)."""
    base = parsed.frame.head(BASE_ROWS).reset_index(drop=True)
    if "title_of_authority" in base:  # Title 8 rows: a Title 42 row is one mutation
        base = base[base["title_of_authority"] == "Title 8"].reset_index(drop=True)
    flagged = set().union(
        *(rows for found in failing_rows(run(parsed, base)).values() for rows in found)
    )
    return base[~base["source_row"].isin(flagged)].reset_index(drop=True)


def suite_of(parsed: parsed_files.ParsedFile) -> list[dict[str, Any]]:
    path = settings.expectations_dir() / f"{parsed.kind.suite}.json"
    return json.loads(path.read_text(encoding="utf-8"))["expectations"]


def test_every_file_kind_has_a_parsed_file_to_mutate() -> None:
    from returnwatch import sources

    declared = {
        (source, kind.kind)
        for source in sources.SOURCE_MODULES
        for kind in sources.module(source).KINDS.values()
    }
    assert declared - parsed_files.kinds() == set(), (
        "add a parsed file of the new kind to tests/support/parsed_files.py"
    )


@pytest.mark.parametrize("key", parsed_files.KEYS)
def test_every_expectation_fails_on_its_own_mutated_row(key: str) -> None:
    parsed = parsed_files.parsed(key)
    base = clean_base(parsed)
    assert len(base), f"{key}: no clean rows to mutate"
    planned = [
        (e, mutation(e, parsed.latest_possible_date))
        for e in suite_of(parsed)
        if e["type"] not in TABLE_LEVEL
    ]
    planned.sort(key=lambda pair: pair[1].row_filter is None)  # choosy mutations pick first
    # Pack the mutations into as few frames as the base's rows allow (one frame, mostly).
    used: list[set[int]] = []  # rows taken, per frame
    placed: list[tuple[int, dict[str, Any], Mutation, list[int]]] = []
    for expectation, change in planned:
        allowed = base.index[change.row_filter(base)] if change.row_filter else base.index
        for batch in range(len(used) + 1):
            if batch == len(used):
                used.append(set())
            free = [i for i in allowed if i not in used[batch]][: change.rows]
            if len(free) == change.rows:
                break
        assert len(free) == change.rows, f"{key}: no rows for {identity(expectation)}"
        used[batch].update(free)
        placed.append((batch, expectation, change, free))

    for batch in range(len(used)):
        frame = base.copy()
        expected: dict[tuple[str, str | None], list[set[int]]] = defaultdict(list)
        knock_on: dict[tuple[str, str | None], set[int]] = defaultdict(set)
        for where, expectation, change, rows in placed:
            if where == batch:
                positions = set(frame.loc[change.apply(frame, rows), "source_row"])
                expected[identity(expectation)].append(positions)
                for other in change.also:
                    knock_on[other] |= positions
        for name, positions in knock_on.items():
            if name not in {identity(e) for e in suite_of(parsed)}:
                continue
            assert len(expected[name]) <= 1, name
            expected[name] = [positions.union(*expected[name])]
        found = failing_rows(run(parsed, frame))
        # Table-level expectations see the whole frame; the other test gives them their own.
        for name in (set(expected) | set(found)) - {
            identity(e) for e in suite_of(parsed) if e["type"] in TABLE_LEVEL
        }:
            assert sorted(map(sorted, found.get(name, []))) == sorted(
                map(sorted, expected.get(name, []))
            ), f"{key}: {name} should fail on exactly the rows mutated for it"


@pytest.mark.parametrize("key", parsed_files.KEYS)
def test_table_level_expectations_fail_on_their_own_frame(key: str) -> None:
    parsed = parsed_files.parsed(key)
    for expectation in suite_of(parsed):
        if expectation["type"] not in TABLE_LEVEL:
            continue
        frame = table_level_frame(expectation, parsed.frame.head(BASE_ROWS).reset_index(drop=True))
        report = run(parsed, frame)
        failed = [o for o in report.outcomes if not o.success]
        assert identity(expectation) in {identity(o) for o in failed}, (
            f"{key}: {identity(expectation)} did not fail on its mutated frame"
        )


def _workbook(sheet: str, label_header: str) -> bytes:
    """A constructed table whose only row is its Total, all zeros: no leaf rows."""
    import io

    import xlwt

    rows = [
        [],
        [f"Cuadro {sheet[7:]} Eventos (construido para la prueba), enero de 2019"],
        [],
        [label_header, "Enero", "Total"],
        [],
        ["Total", 0, 0],
    ]
    book = xlwt.Workbook(encoding="utf-8")
    ws = book.add_sheet(sheet)
    for r, row in enumerate(rows):
        for c, value in enumerate(row, start=2):
            ws.write(r, c, value)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_files_the_parsers_accept_can_have_no_rows() -> None:
    """The row-count expectations guard something: a header-only CSV or a workbook with only
    its Total row parses to an empty frame, which only the suite stops."""
    from returnwatch.sources import cbp_encounters_monthly as cbp
    from returnwatch.sources import hhs_uc_daily as hhs
    from returnwatch.sources import segob_bulletin_monthly as segob
    from returnwatch.sources.base import read

    files = [
        (
            cbp.SOURCE,
            cbp.KINDS["state"],
            parsed_files.content("cbp_state").split(b"\n", 1)[0] + b"\n",
        ),
        (
            hhs.SOURCE,
            hhs.KINDS["export_csv"],
            parsed_files.content("hhs_export_csv").split(b"\r\n", 1)[0] + b"\r\n",
        ),
        (
            segob.SOURCE,
            segob.KINDS["cuadro_3_1_1"],
            _workbook("Cuadro 3.1.1", "Continente y país de nacionalidad"),
        ),
        (segob.SOURCE, segob.KINDS["cuadro_3_1_3"], _workbook("Cuadro 3.1.3", "Sexo y edad")),
    ]
    for source, kind, content in files:
        assert read(source, kind, content, file=kind.kind).frame().empty, kind.kind
