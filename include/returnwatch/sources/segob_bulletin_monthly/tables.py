"""The bulletin's tables (3.1.1, 3.1.3, 3.2.4, section 5's minors): leaf rows out of a workbook.

Subtotal rows are recognised, checked against the sum of their leaves and kept out of the raw
tables, so a sum over a raw table never double counts.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from returnwatch.sources.errors import (
    BadValue,
    LayoutChanged,
    SourceFileError,
)
from returnwatch.sources.segob_bulletin_monthly.countries import iso3_for
from returnwatch.sources.segob_bulletin_monthly.labels import (
    CONDITION_LABELS,
    CONTINENTS,
    NO_CONTINENT,
    NON_COUNTRY_LABELS,
    NOT_SPLIT,
    REGIONS,
    SEX_LABELS,
    SPLIT_LABELS,
    TOTAL_LABELS,
    label_key,
)
from returnwatch.sources.segob_bulletin_monthly.schema import (
    FRAME_COLUMNS,
    SOURCE,
    TABLES,
    TableSpec,
)
from returnwatch.sources.segob_bulletin_monthly.workbook import (
    Cell,
    Column,
    DataRow,
    check_columns,
    check_sum,
    column_name,
    data_rows,
    find_header,
    pick_sheet,
    read_title,
    read_workbook,
    sheet_cells,
)

if TYPE_CHECKING:
    import pandas as pd


# ------------------------------------------------------------------------------ parsed files


@dataclass
class ParsedTable:
    """One bulletin workbook: leaf rows, one per (row label, month[, return type])."""

    kind: str
    file: str
    sheet: str
    year: int
    title: str
    rows: list[dict[str, Any]]
    months: list[int]
    stats: dict[str, Any] = field(default_factory=dict)

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        frame = pd.DataFrame.from_records(self.rows, columns=FRAME_COLUMNS[self.kind])
        frame["events"] = frame["events"].astype("int64")
        frame["source_row"] = frame["source_row"].astype("int64")
        return frame

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "table": TABLES[self.kind].number,
            "sheet": self.sheet,
            "year": self.year,
            "months": self.months,
            "rows": len(self.rows),
            "title": self.title,
            **self.stats,
        }


def _nationality_leaves(
    rows: list[DataRow], columns: list[Column], file: str, sheet: str, stats: dict[str, Any]
) -> list[tuple[DataRow, dict[str, Any]]]:
    leaves: list[tuple[DataRow, dict[str, Any]]] = []
    totals: list[DataRow] = []
    continent: str | None = None
    region: str | None = None
    for row in rows:
        key = label_key(row.label)
        if key in TOTAL_LABELS:
            totals.append(row)
        elif key in SPLIT_LABELS:
            stats["subtotal_rows"] += 1
        elif key in CONTINENTS:
            continent, region = row.label, None
            stats["subtotal_rows"] += 1
        elif key in REGIONS:
            region = row.label
            stats["subtotal_rows"] += 1
        elif key in NON_COUNTRY_LABELS:
            leaves.append(
                (
                    row,
                    {"continent": NO_CONTINENT, "region": None, "country": row.label, "iso3": None},
                )
            )
        else:
            leaves.append(
                (
                    row,
                    {
                        "continent": continent or NO_CONTINENT,
                        "region": region,
                        "country": row.label,
                        "iso3": iso3_for(row.label),
                    },
                )
            )
    if not totals:
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            sheet=sheet,
            row=None,
            problem="no 'Total' row to check the countries against",
            expected="a 'Total' or 'Total general' row",
            seen=", ".join(r.label for r in rows[:5]),
        )
    for total in totals:
        check_sum(total, [leaf for leaf, _ in leaves], columns, file, sheet, "the countries")
    stats["subtotal_rows"] += len(totals)
    return leaves


def _age_group(key: str) -> str | None:
    """'18+', '12-17', '0-11' or 'under18' (a subtotal) from an age label.

    By meaning, not by one spelling: SEGOB renames the groups between editions (the under-18
    group is "Menores de 18 años" or "Niñas, niños y adolescentes"; under-12s "Menores de 12
    años" or "De 0 a 11 años", sometimes with "niñas y niños" before the range)."""
    key = key.replace(" anos", "").replace(" ano", "")
    key = re.sub(r"^(personas |adultos |adolescentes |ninas y ninos |ninos y ninas )", "", key)
    if re.fullmatch(
        r"(de |mayores de )?18 y mas|18 o mas|mayores de 17|18|adultos|mayores de edad", key
    ):
        return "18+"
    if re.fullmatch(r"(de )?12 ?a ?17|12 17", key):
        return "12-17"
    if re.fullmatch(r"(de )?0 ?a ?11|0 11|menores de 12", key):
        return "0-11"
    if re.fullmatch(
        r"menores de 18|(de )?0 ?a ?17|menores|menores de edad|nna|"
        r"ninas ninos y adolescentes|ninos ninas y adolescentes|"
        r"ninas ninos y adolescentes de 0 a 17",
        key,
    ):
        return "under18"
    return None


# "Menores de 12 años no acompañados": an age group and a travel condition in one label (some
# editions have no separate "De 0 a 11 años" row above "Acompañados / No acompañados").
_CONDITION_SUFFIX = re.compile(r"^(?P<age>.+?) (?P<condition>(no )?acompanad(o|a)s( as)?)$")


def _age_and_condition(key: str) -> tuple[str, str] | None:
    """(age group, travel condition) of a combined label such as 'Menores de 12 años
    acompañados'; None when the label is not one (or its age part is not a known group)."""
    found = _CONDITION_SUFFIX.fullmatch(key)
    if not found:
        return None
    group = _age_group(found["age"])
    if group is None:
        return None
    return group, CONDITION_LABELS[found["condition"]]


def _sex_age_leaves(
    rows: list[DataRow], columns: list[Column], file: str, sheet: str, stats: dict[str, Any]
) -> list[tuple[DataRow, dict[str, Any]]]:
    """Rows nest Total > sex > age group > travel condition; the leaves are loaded."""
    expected = (
        "Total, Hombres / Mujeres, an age group (18 años y más, De 12 a 17 años, "
        "De 0 a 11 años / Menores de 12 años, Menores de 18 años / Niñas, niños y "
        "adolescentes), Acompañados / No acompañados (alone or after the age group)"
    )
    nodes: list[tuple[DataRow, dict[str, str]]] = []  # every row with its context
    sex: str | None = None
    age: str | None = None
    for row in rows:
        key = label_key(row.label)
        if key in TOTAL_LABELS:
            sex = age = None
            nodes.append((row, {"level": "total"}))
        elif key in SEX_LABELS:
            sex, age = SEX_LABELS[key], None
            nodes.append((row, {"level": "sex", "sex": sex}))
        elif (group := _age_group(key)) is not None:
            if sex is None:
                raise LayoutChanged(
                    source=SOURCE,
                    file=file,
                    sheet=sheet,
                    row=row.row,
                    problem=f"age group {row.label!r} outside a sex block",
                    expected="Hombres / Mujeres above the age groups",
                    seen=row.label,
                )
            if group != "under18":
                age = group
            nodes.append((row, {"level": "age", "sex": sex, "age_group": group}))
        elif (combined := _age_and_condition(key)) is not None:
            group, condition = combined
            if sex is None or group in ("under18", "18+"):
                # Children split by condition only as a whole (or adults split at all) is a
                # layout whose leaves the raw table has no place for: a person must look.
                raise LayoutChanged(
                    source=SOURCE,
                    file=file,
                    sheet=sheet,
                    row=row.row,
                    problem=f"row {row.label!r} splits {group} by travel condition"
                    if sex
                    else f"{row.label!r} outside a sex block",
                    expected="a travel condition under 0-11 or 12-17 within Hombres / Mujeres",
                    seen=row.label,
                )
            age = group
            nodes.append(
                (
                    row,
                    {
                        "level": "condition",
                        "sex": sex,
                        "age_group": group,
                        "travel_condition": condition,
                    },
                )
            )
        elif key in CONDITION_LABELS:
            if sex is None or age is None:
                raise LayoutChanged(
                    source=SOURCE,
                    file=file,
                    sheet=sheet,
                    row=row.row,
                    problem=f"{row.label!r} outside a sex and age block",
                    expected="Acompañados / No acompañados under an age group",
                    seen=row.label,
                )
            nodes.append(
                (
                    row,
                    {
                        "level": "condition",
                        "sex": sex,
                        "age_group": age,
                        "travel_condition": CONDITION_LABELS[key],
                    },
                )
            )
        else:
            raise LayoutChanged(
                source=SOURCE,
                file=file,
                sheet=sheet,
                row=row.row,
                problem=f"unknown row label {row.label!r}",
                expected=expected,
                seen=row.label,
            )
    split = {(n["sex"], n["age_group"]) for _, n in nodes if n["level"] == "condition"}
    leaves: list[tuple[DataRow, dict[str, Any]]] = []
    for row, node in nodes:
        if node["level"] == "condition":
            leaves.append((row, {k: node[k] for k in ("sex", "age_group", "travel_condition")}))
        elif (
            node["level"] == "age"
            and node["age_group"] != "under18"
            and (node["sex"], node["age_group"]) not in split
        ):
            leaves.append(
                (
                    row,
                    {
                        "sex": node["sex"],
                        "age_group": node["age_group"],
                        "travel_condition": NOT_SPLIT,
                    },
                )
            )
    # Every row that is not a leaf is a subtotal of the leaves below it: check it.
    leaf_ids = {id(row) for row, _ in leaves}
    for row, node in nodes:
        if id(row) in leaf_ids:
            continue
        stats["subtotal_rows"] += 1
        if node["level"] == "total":
            members = leaves
        elif node["level"] == "sex":
            members = [leaf for leaf in leaves if leaf[1]["sex"] == node["sex"]]
        elif node["age_group"] == "under18":
            members = [
                leaf
                for leaf in leaves
                if leaf[1]["sex"] == node["sex"] and leaf[1]["age_group"] in ("12-17", "0-11")
            ]
        else:
            members = [
                leaf
                for leaf in leaves
                if leaf[1]["sex"] == node["sex"] and leaf[1]["age_group"] == node["age_group"]
            ]
        check_sum(row, [m for m, _ in members], columns, file, sheet, "the rows below it")
    if not any(node["level"] == "total" for _, node in nodes):
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            sheet=sheet,
            row=None,
            problem="no 'Total' row to check the groups against",
            expected="a 'Total' row",
            seen=", ".join(r.label for r in rows[:5]),
        )
    return leaves


def _sheet_grid(book: Any, spec: TableSpec, file: str) -> tuple[Any, list[list[Cell]]]:
    """The table's sheet and its cells. xlrd reads a sheet only when asked (``on_demand``), so
    a damaged sheet fails here, not when the workbook opened: refused like a damaged book."""
    try:
        sheet = pick_sheet(book, spec, file)
        return sheet, sheet_cells(sheet)
    except SourceFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - as in read_workbook
        raise BadValue(
            source=SOURCE,
            file=file,
            sheet=", ".join(book.sheet_names()),
            row=None,
            problem="the table's sheet cannot be read (truncated or damaged download?)",
            expected=f"a readable sheet 'Cuadro {spec.number}'",
            seen=f"{type(exc).__name__}: {exc}",
        ) from None


def _parse_workbook(content: bytes, file: str, spec: TableSpec) -> ParsedTable:
    book = read_workbook(content, file)
    sheet, grid = _sheet_grid(book, spec, file)
    header = find_header(grid, spec, file, sheet.name)
    title, year = read_title(grid, header, spec, file, sheet.name)
    stats: dict[str, Any] = {
        "blank_rows": 0,
        "header_repeats": 0,
        "page_breaks": 0,
        "subtotal_rows": 0,
        "header_row": header.row + 1,
    }
    rows = data_rows(grid, header, file, sheet.name, stats)
    if not rows:
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            sheet=sheet.name,
            row=header.row + 2,
            problem="the table has a header but no rows with figures",
            expected="rows of counts under the header",
            seen=" | ".join(header.texts.values()),
        )
    published = check_columns(rows, header, file, sheet.name)
    if spec.column_groups:
        # A "Total" column group (all return types) is a subtotal of the others: check, skip.
        total_cols = [c for c in published if c.group == "total"]
        for column in total_cols:
            parts = [c for c in published if c.group != "total" and c.month == column.month]
            for row in rows:
                expected = sum(row.values[c.index] or 0 for c in parts)
                if row.values[column.index] != expected:
                    raise BadValue(
                        source=SOURCE,
                        file=file,
                        sheet=sheet.name,
                        row=row.row,
                        column=column_name(column.index),
                        problem="the 'Total' group is not the sum of the return types",
                        expected=str(expected),
                        seen=str(row.values[column.index]),
                    )
        published = [c for c in published if c.group != "total"]
    if spec.rows == "nationality":
        leaves = _nationality_leaves(rows, published, file, sheet.name, stats)
    else:
        leaves = _sex_age_leaves(rows, published, file, sheet.name, stats)
    out: list[dict[str, Any]] = []
    for row, attributes in leaves:
        for column in published:
            record = {
                "month": dt.date(year, column.month_number, 1),
                **attributes,
                "events": row.values[column.index],
                "source_row": row.row,
            }
            if spec.column_groups:
                record["return_type"] = column.group
            out.append(record)
    stats["leaf_rows"] = len(leaves)
    months = sorted({c.month_number for c in published})
    return ParsedTable(
        kind=spec.kind,
        file=file,
        sheet=sheet.name,
        year=year,
        title=title,
        rows=out,
        months=months,
        stats=stats,
    )


def parse_cuadro_3_1_1(content: bytes, *, file: str) -> ParsedTable:
    """Table 3.1.1 (presented by nationality) → ``raw.segob_presented_by_nationality``."""
    return _parse_workbook(content, file, TABLES["cuadro_3_1_1"])


def parse_cuadro_3_1_3(content: bytes, *, file: str) -> ParsedTable:
    """Table 3.1.3 (presented by sex and age) → ``raw.segob_presented_by_sex_age``."""
    return _parse_workbook(content, file, TABLES["cuadro_3_1_3"])


def parse_cuadro_3_2_4(content: bytes, *, file: str) -> ParsedTable:
    """Table 3.2.4 (returns by nationality and type) → ``raw.segob_returns_by_nationality``."""
    return _parse_workbook(content, file, TABLES["cuadro_3_2_4"])


def parse_section_5_minors(content: bytes, *, file: str) -> ParsedTable:
    """Section 5's minors table → ``raw.segob_mexican_minor_repatriations``."""
    return _parse_workbook(content, file, TABLES["section_5_minors"])
