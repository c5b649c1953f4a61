"""The SEGOB/UPM bulletin parsers and discovery, without a network.

Workbooks are written here, with xlwt, from small cell grids that show the layout a test is
about (and that do not go through the replay mirror's writer, so the parser is not only
tested against the assumptions of its own mirror). Grids whose figures are real say which
IOM rows they come from; their subtotals are sums of the rows shown, so those tables are
constructed. Pages and the microdata CSV come from tests/fixtures/segob/ (all constructed).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import xlwt

from returnwatch import settings
from returnwatch.sources import segob_bulletin_monthly
from returnwatch.sources.base import Link
from returnwatch.sources.errors import BadValue, LayoutChanged

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "segob"
REPLAY = Path(__file__).resolve().parents[3] / "include" / "replay" / "segob_upm"

Cell = str | int | float | None


def xls(
    rows: Sequence[Sequence[Cell]], *, sheet: str = "Cuadro 3.1.1", other_sheets: Sequence[str] = ()
) -> bytes:
    """A BIFF8 workbook with ``rows`` from row 1, their cells from column C (A-B empty)."""
    book = xlwt.Workbook(encoding="utf-8")
    for name in other_sheets:
        book.add_sheet(name).write(0, 0, "otra hoja")
    ws = book.add_sheet(sheet)
    for r, row in enumerate(rows):
        for c, value in enumerate(row, start=2):
            if value is not None and value != "":
                ws.write(r, c, value)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def line(label: str, *months: int | str) -> list[Cell]:
    """A table row: label, months, and its Total (a '-' counts as zero)."""
    return [label, *months, sum(0 if m == "-" else int(m) for m in months)]


def total_of(*rows: list[Cell]) -> list[int]:
    """The figures of a subtotal row over ``rows``: each month's sum, then their Total."""
    width = len(rows[0]) - 2
    months = [sum(0 if r[1 + i] == "-" else int(r[1 + i]) for r in rows) for i in range(width)]
    return [*months, sum(months)]


TITLE = (
    "Cuadro 3.1.1 Eventos de extranjeros presentados ante la autoridad migratoria, según "
    "continente y país de nacionalidad, enero-febrero de 2019"
)
HEADER = ["Continente y país de nacionalidad", "Enero", "Febrero", "Total"]

# Real January / February 2019 figures of IOM's series of table 3.1.1 (irreg_mexico_nat) for the
# countries shown; the subtotals are sums of these rows only, so the table is constructed.
USA = line("Estados Unidos 1", 59, 74)
SLV = line("El Salvador", 674, 992)
GTM = line("Guatemala", 2830, 2634)
HND = line("Honduras", 3711, 5252)
CUB = line("Cuba", 77, 36)
DOM = line("Dominicana, Rep.", 1, "-")
VEN = line("Venezuela", 32, 25)
ESP = line("España", 0, 2)  # a stored 0 (shown as '-' by its number format)


def table_3_1_1(
    *,
    page_break: bool = True,
    total_row: list[Cell] | None = None,
    header: list[Cell] | None = None,
    extra_header: list[Cell] | None = None,
    title: str = TITLE,
) -> list[list[Cell]]:
    header = header or HEADER
    america = [USA, SLV, GTM, HND, CUB, DOM, VEN]
    rows: list[list[Cell]] = [
        [],
        [title],
        [],
        extra_header or [],
        header,
        [],
        total_row or ["Total general", *total_of(*america, ESP)],
        [],
        ["América", *total_of(*america)],
        ["América del Norte", *total_of(USA)],
        USA,
        ["América Central", *total_of(SLV, GTM, HND)],
        SLV,
        GTM,
    ]
    if page_break:
        rows += [
            ["(-) Significa cero."],
            ["Ver notas al final del cuadro.", None, None, "Continúa"],
            [],
            [title + " (Concluye)"],
            [],
            extra_header or [],
            header,
            [],
        ]
    rows += [
        HND,
        ["El Caribe", *total_of(CUB, DOM)],
        CUB,
        DOM,
        ["América del Sur", *total_of(VEN)],
        VEN,
        [],
        ["Europa", *total_of(ESP)],
        ESP,
        [],
        ["(-) Significa cero."],
        ["Notas:"],
        ["1 Incluye una llamada de nota construida para la prueba."],
        ["Fuente: construida para la prueba, con cifras de la serie de OIM."],
    ]
    return rows


def parse_3_1_1(rows: list[list[Cell]], **kwargs: Any) -> segob_bulletin_monthly.ParsedTable:
    return segob_bulletin_monthly.parse_cuadro_3_1_1(xls(rows, **kwargs), file="test.xls")


def by_country(parsed: segob_bulletin_monthly.ParsedTable) -> dict[tuple[str, int], int]:
    return {(r["country"], r["month"].month): r["events"] for r in parsed.rows}


# ------------------------------------------------------------------ table 3.1.1 quirks


def test_countries_are_loaded_and_subtotals_are_not() -> None:
    parsed = parse_3_1_1(table_3_1_1())
    countries = {r["country"] for r in parsed.rows}
    assert countries == {
        "Estados Unidos",
        "El Salvador",
        "Guatemala",
        "Honduras",
        "Cuba",
        "Dominicana, Rep.",
        "Venezuela",
        "España",
    }
    # Real IOM figures, one row per country and month.
    figures = by_country(parsed)
    assert figures[("Guatemala", 1)] == 2830 and figures[("Honduras", 2)] == 5252
    assert figures[("Venezuela", 1)] == 32
    assert len(parsed.rows) == 8 * 2
    assert parsed.year == 2019 and parsed.months == [1, 2]
    assert parsed.stats["subtotal_rows"] == 7  # Total general, América, 4 regions, Europa


def test_footnote_digits_dash_zero_and_iso3() -> None:
    parsed = parse_3_1_1(table_3_1_1())
    rows = {(r["country"], r["month"].month): r for r in parsed.rows}
    assert rows[("Estados Unidos", 1)]["iso3"] == "USA"  # 'Estados Unidos 1'
    assert rows[("Dominicana, Rep.", 2)]["events"] == 0  # '-' means zero
    assert rows[("Dominicana, Rep.", 1)]["iso3"] == "DOM"
    assert rows[("España", 1)]["events"] == 0  # a stored 0
    assert rows[("Guatemala", 1)]["continent"] == "América"
    assert rows[("Guatemala", 1)]["region"] == "América Central"
    assert rows[("España", 2)]["region"] is None


def test_page_break_repeat_notes_and_spacers_are_skipped() -> None:
    parsed = parse_3_1_1(table_3_1_1())
    summary = parsed.summary()
    assert summary["page_breaks"] == 1 and summary["header_repeats"] == 1
    assert summary["blank_rows"] >= 4
    assert summary["notes"][0].startswith("1 Incluye")
    # Honduras comes after the repeated header: its sheet row is kept for tracing.
    honduras = next(r for r in parsed.rows if r["country"] == "Honduras")
    assert honduras["source_row"] == 23
    assert parsed.frame()["source_row"].min() == 11  # Estados Unidos, row 11


def test_the_same_table_without_page_break_gives_the_same_figures() -> None:
    with_break = by_country(parse_3_1_1(table_3_1_1()))
    without = by_country(parse_3_1_1(table_3_1_1(page_break=False)))
    assert with_break == without


def test_extra_header_row_is_accepted() -> None:
    rows = table_3_1_1(extra_header=[None, "Mes"])
    assert by_country(parse_3_1_1(rows)) == by_country(parse_3_1_1(table_3_1_1()))


def test_header_row_moves_and_columns_reorder() -> None:
    rows = table_3_1_1(page_break=False)
    rows.insert(1, [])  # header in row 6 instead of 5
    # Total before the months, as some editions print it.
    reordered = [[r[0], r[-1], *r[1:-1]] if len(r) == 4 else r for r in rows]
    assert by_country(parse_3_1_1(reordered)) == by_country(parse_3_1_1(table_3_1_1()))


def test_unknown_extra_header_row_is_a_layout_change() -> None:
    rows = table_3_1_1(extra_header=[None, "Presentadas", "Canalizadas"])
    with pytest.raises(LayoutChanged) as caught:
        parse_3_1_1(rows)
    error = caught.value
    assert (error.file, error.sheet, error.row) == ("test.xls", "Cuadro 3.1.1", 4)
    assert "Presentadas" in error.seen


def test_unknown_column_header_names_file_sheet_row_and_header() -> None:
    rows = table_3_1_1(header=["Continente y país de nacionalidad", "Ene.", "Febrero", "Total"])
    with pytest.raises(LayoutChanged) as caught:
        parse_3_1_1(rows)
    error = caught.value
    assert (error.file, error.sheet, error.row, error.column) == (
        "test.xls",
        "Cuadro 3.1.1",
        5,
        "D",
    )
    assert "Ene." in error.seen and "Ene." in str(error)


def test_unknown_row_label_header_is_a_layout_change() -> None:
    rows = table_3_1_1(header=["Entidad federativa", "Enero", "Febrero", "Total"])
    with pytest.raises(LayoutChanged, match="no row-label header") as caught:
        parse_3_1_1(rows)
    assert caught.value.row == 5 and "Entidad federativa" in caught.value.seen


def test_no_month_header_is_a_layout_change() -> None:
    rows = table_3_1_1(header=["Continente y país de nacionalidad", "Ene", "Feb", "Total"])
    with pytest.raises(LayoutChanged, match="no header row with month names"):
        parse_3_1_1(rows)


def test_a_different_header_at_a_page_break_is_a_layout_change() -> None:
    rows = table_3_1_1()
    rows[rows.index(HEADER, 6)] = ["Continente y país de nacionalidad", "Febrero", "Enero", "Total"]
    with pytest.raises(LayoutChanged, match="differs from the table's header") as caught:
        parse_3_1_1(rows)
    assert caught.value.row == 21


def test_sheet_named_after_another_table_is_a_layout_change() -> None:
    with pytest.raises(LayoutChanged, match="no sheet for table 3.1.1") as caught:
        parse_3_1_1(table_3_1_1(), sheet="Cuadro 3.1.2")
    assert caught.value.sheet == "Cuadro 3.1.2"


def test_sheet_found_by_name_among_others() -> None:
    parsed = parse_3_1_1(table_3_1_1(), other_sheets=["Índice"])
    assert parsed.sheet == "Cuadro 3.1.1"


def test_single_unnamed_sheet_is_accepted_when_the_title_names_the_table() -> None:
    assert parse_3_1_1(table_3_1_1(), sheet="Hoja1").sheet == "Hoja1"
    with pytest.raises(LayoutChanged, match="the title names table 3.2.1"):
        parse_3_1_1(table_3_1_1(title=TITLE.replace("3.1.1", "3.2.1")), sheet="Hoja1")


def test_title_without_a_year_is_a_layout_change() -> None:
    with pytest.raises(LayoutChanged, match="which year"):
        parse_3_1_1(table_3_1_1(title="Cuadro 3.1.1 Eventos, enero-febrero"))


def test_total_column_must_equal_the_months() -> None:
    rows = table_3_1_1()
    row = rows.index(GTM)
    rows[row] = ["Guatemala", 2830, 2634, 5465]
    with pytest.raises(BadValue, match="Total is not the sum of its months") as caught:
        parse_3_1_1(rows)
    error = caught.value
    assert (error.row, error.column, error.seen, error.expected) == (row + 1, "F", "5465", "5464")


def test_total_general_must_equal_the_countries() -> None:
    # Guatemala +1 in January (and in its own Total): the table's Total general disagrees.
    rows = table_3_1_1()
    rows[rows.index(GTM)] = line("Guatemala", 2831, 2634)
    with pytest.raises(BadValue, match="'Total general' row is not the sum") as caught:
        parse_3_1_1(rows)
    assert (caught.value.row, caught.value.column) == (7, "D")


def test_a_region_not_recognised_would_double_count_and_is_caught() -> None:
    rows = table_3_1_1()
    rows[rows.index(["El Caribe", *total_of(CUB, DOM)])] = ["Caribe insular", *total_of(CUB, DOM)]
    with pytest.raises(BadValue, match="Total general"):
        parse_3_1_1(rows)


def test_subtotal_columns_since_2021() -> None:
    months = ["Enero", "Febrero", "Marzo", "Abril", "Mayo", "Junio", "Subtotal", "Julio", "Total"]
    # Constructed figures.
    gtm = ["Guatemala", 1, 2, 3, 4, 5, 6, 21, 7, 28]
    hnd = ["Honduras", "-", 1, "-", 1, "-", 1, 3, 1, 4]
    rows = [
        [],
        ["Cuadro 3.1.1 Eventos ..., enero-julio de 2021"],
        [],
        [],
        ["Continente y país de nacionalidad", *months],
        [],
        ["Total general", 1, 3, 3, 5, 5, 7, 24, 8, 32],
        gtm,
        hnd,
    ]
    parsed = parse_3_1_1(rows)
    assert parsed.months == [1, 2, 3, 4, 5, 6, 7]
    assert sum(r["events"] for r in parsed.rows if r["country"] == "Guatemala") == 28
    rows[7] = ["Guatemala", 1, 2, 3, 4, 5, 6, 20, 7, 28]
    with pytest.raises(BadValue, match="Subtotal is not the sum") as caught:
        parse_3_1_1(rows)
    assert caught.value.column == "J"


def test_months_not_yet_published_are_empty_columns() -> None:
    rows = [
        [],
        ["Cuadro 3.1.1 Eventos ..., enero-febrero de 2025"],
        [],
        [],
        ["Continente y país de nacionalidad", "Enero", "Febrero", "Marzo", "Total"],
        [],
        ["Total general", 3, 4, None, 7],
        ["Guatemala", 3, 4, None, 7],
    ]
    parsed = parse_3_1_1(rows)
    assert parsed.months == [1, 2] and len(parsed.rows) == 2
    rows[6] = ["Total general", 3, 4, 1, 8]
    with pytest.raises(BadValue, match="empty cell in a month") as caught:
        parse_3_1_1(rows)
    assert (caught.value.row, caught.value.column) == (8, "F")


@pytest.mark.parametrize(
    ("cell", "problem"), [(2.5, "not a whole number"), ("n.d.", "not a count")]
)
def test_a_cell_that_is_not_a_count(cell: Cell, problem: str) -> None:
    rows = table_3_1_1()
    rows[rows.index(VEN)] = ["Venezuela", cell, 25, 57]
    with pytest.raises(BadValue, match=problem) as caught:
        parse_3_1_1(rows)
    assert caught.value.column == "D"


def test_figures_in_a_column_without_header_are_a_layout_change() -> None:
    rows = table_3_1_1(page_break=False)
    rows[rows.index(VEN)] = [*VEN, 99]
    with pytest.raises(LayoutChanged, match="column without a header") as caught:
        parse_3_1_1(rows)
    assert caught.value.column == "G"


def test_no_total_row_is_a_layout_change() -> None:
    rows = [[], [TITLE], [], [], HEADER, [], GTM, HND]
    with pytest.raises(LayoutChanged, match="no 'Total' row"):
        parse_3_1_1(rows)


def test_others_and_stateless_rows_have_no_continent_and_no_iso3() -> None:
    rows = [
        [],
        [TITLE],
        [],
        [],
        HEADER,
        [],
        ["Total general", 6, 2, 8],
        ["Oceanía", 1, 1, 2],
        line("Australia", 1, 1),
        line("Otros 4", 5, "-"),
        line("Apátrida", "-", 1),
    ]
    parsed = parse_3_1_1(rows)
    rows_by = {r["country"]: r for r in parsed.rows}
    assert (
        rows_by["Otros"]["continent"] == segob_bulletin_monthly.NO_CONTINENT
        and rows_by["Otros"]["iso3"] is None
    )
    assert rows_by["Apátrida"]["iso3"] is None and rows_by["Australia"]["iso3"] == "AUS"


def test_frame_columns_and_types() -> None:
    frame = parse_3_1_1(table_3_1_1()).frame()
    assert list(frame.columns) == segob_bulletin_monthly.FRAME_COLUMNS["cuadro_3_1_1"]
    assert str(frame["events"].dtype) == "int64"
    assert frame["month"].iloc[0] == dt.date(2019, 1, 1)


# ------------------------------------------------------------------ not a workbook


@pytest.mark.parametrize(
    ("body", "error", "problem"),
    [
        (b"", LayoutChanged, "empty"),
        (b"   \r\n", LayoutChanged, "empty"),
        (b"<!DOCTYPE html><html><body>Sitio en mantenimiento</body></html>", LayoutChanged, "HTML"),
        (b"PK\x03\x04rest-of-an-xlsx", LayoutChanged, "xlsx"),
        (b"Continente,Enero\n", LayoutChanged, "not a workbook"),
    ],
)
def test_not_a_workbook(body: bytes, error: type[Exception], problem: str) -> None:
    with pytest.raises(error, match=problem):
        segob_bulletin_monthly.parse_cuadro_3_1_1(body, file="x.xls")


def test_truncated_workbook() -> None:
    body = xls(table_3_1_1())
    with pytest.raises(BadValue, match="truncated or damaged") as caught:
        segob_bulletin_monthly.parse_cuadro_3_1_1(body[: len(body) // 2], file="cut.xls")
    assert caught.value.file == "cut.xls"


# ------------------------------------------------------------------ table 3.1.3


def sex_age(rows: list[list[Cell]], number: str = "3.1.3") -> bytes:
    title = (
        f"Cuadro {number} Eventos según sexo, grupo de edad y condición de viaje, "
        "enero-febrero de 2019"
    )
    return xls(
        [
            [],
            [title],
            [],
            [],
            ["Sexo, grupo de edad y condición de viaje", "Total", "Enero", "Febrero"],
            [],
            *rows,
        ],
        sheet=f"Cuadro {number}",
    )


def men_women_3_1_3() -> list[list[Cell]]:
    # Real January / February 2019 figures of IOM's irreg_mexico_dmg for men; women constructed.
    def block(
        sex: str,
        adult: tuple[int, int],
        teen: tuple[int, int],
        acc: tuple[int, int],
        unacc: tuple[int, int],
    ) -> list[list[Cell]]:
        under12 = (acc[0] + unacc[0], acc[1] + unacc[1])
        under18 = (teen[0] + under12[0], teen[1] + under12[1])
        every = (adult[0] + under18[0], adult[1] + under18[1])

        def row(label: str, pair: tuple[int, int]) -> list[Cell]:
            return [label, pair[0] + pair[1], *pair]

        return [
            row(sex, every),
            row("18 años y más", adult),
            row("Menores de 18 años", under18),
            row("De 12 a 17 años", teen),
            row("Menores de 12 años", under12),
            row("Acompañados", acc),
            row("No acompañados 2", unacc),
        ]

    men = block("Hombres", (4707, 5663), (766, 987), (602, 746), (53, 67))
    women = block("Mujeres", (10, 20), (3, 4), (2, 1), (1, 0))
    total = ["Total", *[int(m) + int(w) for m, w in zip(men[0][1:], women[0][1:])]]
    return [total, [], *men, [], *women]


def test_3_1_3_leaves_by_sex_age_and_condition() -> None:
    parsed = segob_bulletin_monthly.parse_cuadro_3_1_3(sex_age(men_women_3_1_3()), file="t313.xls")
    leaves = {
        (r["sex"], r["age_group"], r["travel_condition"], r["month"].month): r["events"]
        for r in parsed.rows
    }
    assert leaves[("male", "18+", "not_split", 1)] == 4707
    assert leaves[("male", "12-17", "not_split", 2)] == 987
    assert leaves[("male", "0-11", "accompanied", 1)] == 602
    assert leaves[("male", "0-11", "unaccompanied", 2)] == 67  # 'No acompañados 2'
    assert len(leaves) == 2 * 4 * 2
    assert parsed.stats["subtotal_rows"] == 1 + 2 * 3  # Total, sex, under 18, under 12


def test_3_1_3_subtotal_must_be_the_sum_of_its_rows() -> None:
    rows = men_women_3_1_3()
    under12 = next(i for i, r in enumerate(rows) if r and r[0] == "Menores de 12 años")
    rows[under12] = ["Menores de 12 años", 1, 655, 812]  # Total column still wrong -> row check
    with pytest.raises(BadValue):
        segob_bulletin_monthly.parse_cuadro_3_1_3(sex_age(rows), file="t.xls")
    rows = men_women_3_1_3()
    rows[under12] = ["Menores de 12 años", 1466, 654, 812]  # one less in January
    with pytest.raises(BadValue, match="'Menores de 12 años' row is not the sum") as caught:
        segob_bulletin_monthly.parse_cuadro_3_1_3(sex_age(rows), file="t.xls")
    assert caught.value.column == "E"


def test_3_1_3_unknown_row_is_a_layout_change() -> None:
    rows = men_women_3_1_3()
    rows.insert(3, ["Edad no especificada", 0, 0, 0])
    with pytest.raises(LayoutChanged, match="unknown row label") as caught:
        segob_bulletin_monthly.parse_cuadro_3_1_3(sex_age(rows), file="t.xls")
    assert caught.value.seen == "Edad no especificada" and caught.value.row == 10


def test_section_5_minors_table() -> None:
    # Constructed figures: section 5's minors table has no public copy.
    def block(sex: str, base: int) -> list[list[Cell]]:
        a, b, c, d = base, base + 1, base + 2, base + 3
        return [
            [sex, 2 * (a + b + c + d), a + b + c + d, a + b + c + d],
            ["De 0 a 11 años", 2 * (a + b), a + b, a + b],
            ["Acompañados", 2 * a, a, a],
            ["No acompañados", 2 * b, b, b],
            ["De 12 a 17 años", 2 * (c + d), c + d, c + d],
            ["Acompañados", 2 * c, c, c],
            ["No acompañados", 2 * d, d, d],
        ]

    men, women = block("Hombres", 10), block("Mujeres", 20)
    rows = [
        ["Total", men[0][1] + women[0][1], men[0][2] + women[0][2], men[0][3] + women[0][3]],
        *men,
        *women,
    ]
    parsed = segob_bulletin_monthly.parse_section_5_minors(sex_age(rows, "5.2.1"), file="m.xls")
    unaccompanied = sum(
        r["events"]
        for r in parsed.rows
        if r["travel_condition"] == "unaccompanied" and r["month"].month == 1
    )
    assert unaccompanied == 11 + 13 + 21 + 23
    assert {r["age_group"] for r in parsed.rows} == {"0-11", "12-17"}


# ------------------------------------------------------------------ table 3.2.4


def returns_table(group_row: list[Cell] | None = None) -> list[list[Cell]]:
    # Real January / February 2019 figures of IOM's irreg_mexico_exp for Guatemala and
    # Honduras (deportation, assisted return, assisted return of children); totals constructed.
    groups = group_row or [
        "Continente y país de nacionalidad",
        "Deportación",
        None,
        None,
        "Retorno asistido",
        None,
        None,
        "Retorno asistido de niñas, niños y adolescentes",
        None,
        None,
    ]
    months = [None, "Enero", "Febrero", "Total"] * 1 + ["Enero", "Febrero", "Total"] * 2
    gtm = ["Guatemala", 19, 28, 47, 2733, 2880, 5613, 1151, 1208, 2359]
    hnd = ["Honduras", 0, "-", 0, 3040, 3934, 6974, 1101, 1349, 2450]
    total = [
        "Total general",
        *[(0 if a == "-" else a) + (0 if b == "-" else b) for a, b in zip(gtm[1:], hnd[1:])],
    ]
    america = ["América", *total[1:]]
    title = (
        "Cuadro 3.2.4 Eventos de extranjeros devueltos por la autoridad migratoria "
        "mexicana, según continente, país de nacionalidad y tipo de devolución, "
        "enero-febrero de 2019"
    )
    return [
        [],
        [title],
        [],
        groups,
        months,
        [],
        total,
        america,
        ["América Central", *total[1:]],
        gtm,
        hnd,
    ]


def test_3_2_4_return_types_from_the_group_row() -> None:
    parsed = segob_bulletin_monthly.parse_cuadro_3_2_4(
        xls(returns_table(), sheet="Cuadro 3.2.4"), file="r.xls"
    )
    figures = {(r["country"], r["return_type"], r["month"].month): r["events"] for r in parsed.rows}
    assert figures[("Guatemala", "assisted_return_children", 1)] == 1151
    assert figures[("Honduras", "assisted_return", 2)] == 3934
    assert figures[("Honduras", "deportation", 2)] == 0
    assert len(figures) == 2 * 3 * 2


def test_3_2_4_older_heading_for_children() -> None:
    groups = [
        "Continente y país de nacionalidad",
        "Deportación",
        None,
        None,
        "Retorno asistido",
        None,
        None,
        "Retorno asistido de menores",
        None,
        None,
    ]
    parsed = segob_bulletin_monthly.parse_cuadro_3_2_4(
        xls(returns_table(groups), sheet="Cuadro 3.2.4"), file="r.xls"
    )
    assert {r["return_type"] for r in parsed.rows} == set(segob_bulletin_monthly.RETURN_TYPES)


def test_3_2_4_unknown_return_type_is_a_layout_change() -> None:
    groups = [
        "Continente y país de nacionalidad",
        "Deportación",
        None,
        None,
        "Expulsión",
        None,
        None,
        "Retorno asistido de menores",
        None,
        None,
    ]
    with pytest.raises(LayoutChanged, match="unknown return type 'Expulsión'") as caught:
        segob_bulletin_monthly.parse_cuadro_3_2_4(
            xls(returns_table(groups), sheet="Cuadro 3.2.4"), file="r"
        )
    assert (caught.value.row, caught.value.column) == (4, "G")


def test_3_2_4_without_group_row_is_a_layout_change() -> None:
    rows = returns_table()
    rows[3] = []
    rows[4][0] = "Continente y país de nacionalidad"
    with pytest.raises(LayoutChanged, match="return type"):
        segob_bulletin_monthly.parse_cuadro_3_2_4(xls(rows, sheet="Cuadro 3.2.4"), file="r")


# ------------------------------------------------------------------ nationalities


def test_every_nationality_of_the_real_series_has_a_label() -> None:
    import csv

    codes = set()
    for name in ("iom_gdidata_irreg_mexico_nat.csv", "iom_gdidata_irreg_mexico_exp.csv"):
        with (REPLAY / name).open(encoding="utf-8") as handle:
            codes |= {row["nat"] for row in csv.DictReader(handle)}
    assert codes - set(segob_bulletin_monthly.COUNTRIES) == {
        "OOO",
        "STL",
    }  # other, stateless: no country
    for code, country in segob_bulletin_monthly.COUNTRIES.items():
        assert segob_bulletin_monthly.iso3_for(country.label) == code


@pytest.mark.parametrize(
    ("label", "iso3"),
    [
        ("Dominicana, Rep.", "DOM"),
        ("República Dominicana", "DOM"),
        ("Estados Unidos 1", "USA"),
        ("  corea, rep. de 3", "KOR"),
        ("Haití", "HTI"),
        ("HAITI", "HTI"),
        ("Otros 4", None),
        ("Atlántida", None),
    ],
)
def test_iso3_lookup(label: str, iso3: str | None) -> None:
    assert segob_bulletin_monthly.iso3_for(label) == iso3


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("Estados Unidos 1", "Estados Unidos"),
        ("Otros 4", "Otros"),
        ("Total 1/", "Total"),
        ("De 12 a 17 años", "De 12 a 17 años"),
        ("De 0 a 11", "De 0 a 11"),
        ("18 y 19", "18 y 19"),
        ("Total 2019", "Total 2019"),
        ("Guinea-Bisáu\xa0", "Guinea-Bisáu"),
        ("Menores de 12", "Menores de 12"),
        ("Corea, Rep. de 3", "Corea, Rep. de"),
    ],
)
def test_footnote_stripping_keeps_ranges_and_years(text: str, cleaned: str) -> None:
    assert segob_bulletin_monthly.clean_label(text) == cleaned


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("cuadro3.1.1.xls", "3.1.1"),
        ("cuadro_3.1.1.xls", "3.1.1"),
        ("cuadro3.1.1_.xls", "3.1.1"),
        ("Cuadro 3.2.4 Eventos", "3.2.4"),
        ("cuadro13.1.10.xls", "13.1.10"),
        ("Boletín 2019", None),
    ],
)
def test_table_numbers(text: str, number: str | None) -> None:
    assert segob_bulletin_monthly.table_number(text) == number


# ------------------------------------------------------------------ microdata


def microdata(
    rows: list[str],
    header: str = "FEC_REP,SEXO,EDA,ACOM_REP,EDO_DET,PUNT_REP",
    encoding: str = "utf-8",
    ending: str = "\n",
) -> bytes:
    return (ending.join([header, *rows]) + ending).encode(encoding)


EVENTS = [
    '03/01/2024,1,16,2,Texas,"Ciudad Juárez, Chih."',
    '05/01/2024,2,9,1,Nuevo México,"Nogales, Son."',
    '11/02/2024,1,34,9,California,"Tijuana, B.C."',
]  # constructed events


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_microdata_encodings_are_detected(encoding: str) -> None:
    parsed = segob_bulletin_monthly.parse_microdata(
        microdata(EVENTS, encoding=encoding), file="m.csv"
    )
    frame = parsed.frame()
    assert parsed.encoding == encoding
    assert frame["repatriation_point"].tolist()[0] == "Ciudad Juárez, Chih."
    assert frame["detention_state"].tolist()[1] == "Nuevo México"
    assert frame["repatriation_date"].tolist() == [
        dt.date(2024, 1, 3),
        dt.date(2024, 1, 5),
        dt.date(2024, 2, 11),
    ]
    assert frame["age"].tolist() == [16, 9, 34]
    assert frame["source_row"].tolist() == [2, 3, 4]
    assert list(frame.columns) == segob_bulletin_monthly.MICRODATA_COLUMNS


def test_microdata_semicolons_crlf_blank_line_extra_field_and_empty_age() -> None:
    content = (FIXTURES / "BDSIOMR_PUB_2024_UPMRIP_semicolon_latin1_constructed.csv").read_bytes()
    parsed = segob_bulletin_monthly.parse_microdata(content, file="f")
    frame = parsed.frame()
    assert (parsed.delimiter, parsed.encoding, parsed.extra_fields) == (
        ";",
        "latin-1",
        ["id_evento"],
    )
    assert frame["source_row"].tolist() == [2, 3, 5, 6]  # line 4 is blank
    assert frame["age"].isna().tolist() == [False, False, False, True]
    assert frame["repatriation_point"].iloc[3] == "San Luis Río Colorado, Son."


def test_microdata_byte_order_mark_and_iso_dates() -> None:
    rows = ["2024-01-03,1,16,2,Texas,Reynosa"]
    parsed = segob_bulletin_monthly.parse_microdata(b"\xef\xbb\xbf" + microdata(rows), file="m")
    assert parsed.frame()["repatriation_date"].tolist() == [dt.date(2024, 1, 3)]


def test_microdata_missing_field_is_a_layout_change() -> None:
    with pytest.raises(LayoutChanged, match="FEC_REP") as caught:
        segob_bulletin_monthly.parse_microdata(
            microdata(EVENTS, header="FECHA_REP,SEXO,EDA,ACOM_REP,EDO_DET,PUNT_REP"), file="m"
        )
    assert caught.value.row == 1 and "FECHA_REP" in caught.value.seen


def test_microdata_bad_date_and_bad_age_name_their_line() -> None:
    with pytest.raises(BadValue, match="repatriation date") as caught:
        segob_bulletin_monthly.parse_microdata(
            microdata([*EVENTS, "31/02/2024,1,5,1,Texas,Reynosa"]), file="m"
        )
    assert (caught.value.row, caught.value.column) == (5, "FEC_REP")
    with pytest.raises(BadValue, match="age") as caught:
        segob_bulletin_monthly.parse_microdata(
            microdata([EVENTS[0], "03/01/2024,1,diez,1,Texas,Reynosa"]), file="m"
        )
    assert caught.value.row == 3


def test_microdata_truncated_html_and_empty() -> None:
    content = microdata(EVENTS)
    with pytest.raises(BadValue, match="truncated"):
        segob_bulletin_monthly.parse_microdata(content[:-25], file="m")
    with pytest.raises(LayoutChanged, match="HTML"):
        segob_bulletin_monthly.parse_microdata(b"<html><body>Error</body></html>", file="m")
    with pytest.raises(LayoutChanged, match="empty"):
        segob_bulletin_monthly.parse_microdata(b"", file="m")


def test_microdata_complete_last_line_without_newline_is_fine() -> None:
    content = microdata(EVENTS).rstrip(b"\n")
    assert segob_bulletin_monthly.parse_microdata(content, file="m").table.num_rows == 3


# ------------------------------------------------------------------ detect_kind


def test_detect_kind_by_content() -> None:
    assert segob_bulletin_monthly.detect_kind("descarga.xls", xls(table_3_1_1())) == "cuadro_3_1_1"
    assert (
        segob_bulletin_monthly.detect_kind("x.xls", xls(returns_table(), sheet="Cuadro 3.2.4"))
        == "cuadro_3_2_4"
    )
    assert segob_bulletin_monthly.detect_kind("x.xls", sex_age(men_women_3_1_3())) == "cuadro_3_1_3"
    assert segob_bulletin_monthly.detect_kind("x.xls", sex_age([], "5.2.1")) == "section_5_minors"
    assert segob_bulletin_monthly.detect_kind("datos.csv", microdata(EVENTS)) == "microdata"
    # A sheet without a number: the title, then the name, decide.
    assert (
        segob_bulletin_monthly.detect_kind("cuadro3.1.1.xls", xls(table_3_1_1(), sheet="Hoja1"))
        == "cuadro_3_1_1"
    )


def test_detect_kind_refuses_other_files() -> None:
    with pytest.raises(LayoutChanged, match="none of the tables"):
        segob_bulletin_monthly.detect_kind(
            "cuadro1.3.1.xls", xls([[], ["Cuadro 1.3.1 Entradas aéreas"]], sheet="Cuadro 1.3.1")
        )
    with pytest.raises(LayoutChanged, match="HTML"):
        segob_bulletin_monthly.detect_kind(
            "cuadro3.1.1.xls", b"<html>Sitio en mantenimiento</html>"
        )
    with pytest.raises(LayoutChanged, match="neither"):
        segob_bulletin_monthly.detect_kind("notas.txt", b"a,b,c\n1,2,3\n")


# ------------------------------------------------------------------ discovery (no network)

SEC3_2021 = (FIXTURES / "cuadros_2021_secc3_latin1_constructed.html").read_bytes()
SEC5_2024 = (FIXTURES / "cuadros_2024_secc5_latin1_constructed.html").read_bytes()
BASE = "https://portales.segob.gob.mx"
LANDING = f"{BASE}/es/PoliticaMigratoria/Boletines_Estadisticos"


def landing_page(
    years: Sequence[int], sections: Sequence[int] = (1, 3, 5), encoding: str = "latin-1"
) -> bytes:
    links = "".join(
        f'<a href="CuadrosBOLETIN?Anual={y}&amp;Secc={s}">{y} Sección {s}</a>\n'
        for y in years
        for s in sections
    )
    return (
        f'<html><head><meta charset="{encoding}"></head><body><h1>Boletín Mensual de '
        f"Estadísticas Migratorias</h1>{links}</body></html>"
    ).encode(encoding)


def fake_site(pages: dict[str, bytes | list[bytes]]) -> tuple[Callable[[str], bytes], list[str]]:
    """``get_page`` over a dict of URL -> body (a list: one body per request, in order)."""
    asked: list[str] = []

    def get_page(url: str) -> bytes:
        asked.append(url)
        body = pages.get(url, b"<html><body>Sin cuadros</body></html>")
        if isinstance(body, list):
            return body.pop(0) if len(body) > 1 else body[0]
        return body

    return get_page, asked


def page_url(year: int, section: int) -> str:
    return f"{BASE}/es/PoliticaMigratoria/CuadrosBOLETIN?Anual={year}&Secc={section}"


RUN_AT = dt.datetime(2025, 6, 10, 12, tzinfo=dt.UTC)
OPTIONS = {"sections": [3, 5], "first_year": 2018}


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(segob_bulletin_monthly.discovery, "EMPTY_PAGE_PAUSES", (0.0, 0.0))


def test_discovery_reads_table_numbers_from_text_or_file_name() -> None:
    get_page, asked = fake_site({LANDING: landing_page([2021]), page_url(2021, 3): SEC3_2021})
    links = segob_bulletin_monthly.discover(
        get_page, landing_url=LANDING, run_at=RUN_AT, options=OPTIONS
    )
    by_kind = {link.kind: link for link in links}
    assert set(by_kind) == {"cuadro_3_1_1", "cuadro_3_1_3", "cuadro_3_2_4"}
    folder = f"{BASE}/work/models/PoliticaMigratoria/CEM/Estadisticas/Boletines_Estadisticos/2021"
    assert by_kind["cuadro_3_1_1"].url == f"{folder}/Cuadros2021/cuadro_3.1.1.xls"
    assert by_kind["cuadro_3_1_3"].url == f"{folder}/Cuadros2021/cuadro3.1.3_.xls"  # href only
    assert by_kind["cuadro_3_2_4"].url.endswith("/cuadro3.2.4.xls")
    assert all(link.period == "2021" for link in links)
    # Latin-1 link text read right, accents and all.
    assert by_kind["cuadro_3_1_1"].label.startswith(
        "Cuadro 3.1.1 Eventos de personas en situación migratoria irregular"
    )
    assert by_kind["cuadro_3_2_4"].extra["table"] == "3.2.4"
    # Section 1 is not configured: its page is never asked for.
    assert page_url(2021, 1) not in asked


def test_discovery_finds_the_minors_table_and_the_microdata() -> None:
    get_page, _ = fake_site({LANDING: landing_page([2024]), page_url(2024, 5): SEC5_2024})
    links = segob_bulletin_monthly.discover(
        get_page, landing_url=LANDING, run_at=RUN_AT, options=OPTIONS
    )
    assert [(link.kind, link.period) for link in links] == [
        ("microdata", "2024"),
        ("section_5_minors", "2024"),
    ]
    micro = links[0]
    assert micro.url == (
        f"{BASE}/work/models/PoliticaMigratoria/CEM/Estadisticas/BDatos/"
        "DevMexEUU/DwnldBD.php?f=BDSIOMR_PUB_2024_UPMRIP.csv"
    )
    assert Link.from_dict(micro.as_dict()) == micro


def test_discovery_utf8_landing_years_and_sections_filtered() -> None:
    landing = (FIXTURES / "landing_utf8_constructed.html").read_bytes()
    get_page, asked = fake_site({LANDING: landing})
    assert (
        segob_bulletin_monthly.discover(
            get_page, landing_url=LANDING, run_at=RUN_AT, options=OPTIONS
        )
        == []
    )
    # 2024 sections 3 and 5 (absolute and relative hrefs, any parameter case); not 2017 (before
    # first_year), 2026 (not begun in Mexico City), section 1 (not configured).
    assert asked[1:] == [
        page_url(2024, 3),
        f"{BASE}/es/PoliticaMigratoria/CuadrosBOLETIN?anual=2024&secc=5",
    ]


def test_current_year_is_mexico_city_s() -> None:
    # 03:00 UTC on 1 January 2025 is still 31 December 2024 in Mexico City.
    run_at = dt.datetime(2025, 1, 1, 3, tzinfo=dt.UTC)
    get_page, asked = fake_site({LANDING: landing_page([2024, 2025], sections=[3])})
    segob_bulletin_monthly.discover(get_page, landing_url=LANDING, run_at=run_at, options=OPTIONS)
    assert asked[1:] == [page_url(2024, 3)]


def test_landing_page_without_tables_pages_is_a_layout_change() -> None:
    get_page, _ = fake_site({LANDING: b"<html><body><p>Nuevo portal</p></body></html>"})
    with pytest.raises(LayoutChanged, match="lists no CuadrosBOLETIN pages") as caught:
        segob_bulletin_monthly.discover(
            get_page, landing_url=LANDING, run_at=RUN_AT, options=OPTIONS
        )
    assert caught.value.file == LANDING and "Nuevo portal" in caught.value.seen
    get_page, _ = fake_site({LANDING: landing_page([2010, 2011])})
    with pytest.raises(LayoutChanged, match="no tables page for 2018-2025"):
        segob_bulletin_monthly.discover(
            get_page, landing_url=LANDING, run_at=RUN_AT, options=OPTIONS
        )


def test_a_page_empty_once_is_asked_again() -> None:
    get_page, asked = fake_site(
        {LANDING: landing_page([2021], sections=[3]), page_url(2021, 3): [b"", SEC3_2021]}
    )
    links = segob_bulletin_monthly.discover(
        get_page, landing_url=LANDING, run_at=RUN_AT, options=OPTIONS
    )
    assert len(links) == 3 and asked.count(page_url(2021, 3)) == 2


def test_a_page_that_stays_empty_is_a_layout_change() -> None:
    get_page, asked = fake_site(
        {LANDING: landing_page([2021], sections=[3]), page_url(2021, 3): [b""]}
    )
    with pytest.raises(LayoutChanged, match="came back empty 3 times") as caught:
        segob_bulletin_monthly.discover(
            get_page, landing_url=LANDING, run_at=RUN_AT, options=OPTIONS
        )
    assert caught.value.file == page_url(2021, 3)
    assert asked.count(page_url(2021, 3)) == segob_bulletin_monthly.discovery.EMPTY_PAGE_ATTEMPTS


def test_a_year_without_tables_yet_gives_no_links() -> None:
    empty_year = (
        b"<html><body><p>A\xfan no hay cuadros publicados de este a\xf1o.</p></body></html>"
    )
    get_page, _ = fake_site(
        {
            LANDING: landing_page([2021, 2025], sections=[3]),
            page_url(2021, 3): SEC3_2021,
            page_url(2025, 3): empty_year,
        }
    )
    links = segob_bulletin_monthly.discover(
        get_page, landing_url=LANDING, run_at=RUN_AT, options=OPTIONS
    )
    assert {link.period for link in links} == {"2021"}


def test_two_workbooks_for_one_table_and_year_is_a_layout_change() -> None:
    page = SEC3_2021.replace(b"cuadro3.2.4.xls", b"cuadro_3.1.1_v2.xls")
    get_page, _ = fake_site({LANDING: landing_page([2021], sections=[3]), page_url(2021, 3): page})
    with pytest.raises(LayoutChanged, match="two files for cuadro_3_1_1 2021"):
        segob_bulletin_monthly.discover(
            get_page, landing_url=LANDING, run_at=RUN_AT, options=OPTIONS
        )


# ------------------------------------------------------------------ the contract


def test_kinds_tables_and_ddl_agree(tmp_path: Path) -> None:
    import duckdb

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE SCHEMA raw")
    for statement in segob_bulletin_monthly.RAW_DDL:
        con.execute(statement)
    for kind, file_kind in segob_bulletin_monthly.KINDS.items():
        columns = [
            r[0]
            for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'raw' "
                "AND table_name = ? ORDER BY ordinal_position",
                [file_kind.raw_table],
            ).fetchall()
        ]
        frame_columns = (
            segob_bulletin_monthly.MICRODATA_COLUMNS
            if kind == "microdata"
            else segob_bulletin_monthly.FRAME_COLUMNS[kind]
        )
        assert [c for c in columns if c not in ("source_file", "vintage")] == frame_columns
        assert columns[-3:] == ["source_file", "source_row", "vintage"]
        assert set(file_kind.key_columns) <= set(frame_columns)
        assert (settings.expectations_dir() / f"{file_kind.suite}.json").is_file()
    con.close()


# ------------------------------------------------------------------ label variants by meaning


def _real_3_1_3(relabel: Callable[[list[Any]], list[Any]] | None = None) -> bytes:
    """The real 2019 table 3.1.3 (IOM's series, as the replay mirror writes it), its rows
    optionally relabelled the way other editions label them; figures untouched."""
    from returnwatch_replay.sites import segob as site

    mirror = site.SegobSite(settings.replay_data_dir())
    layout = site.LAYOUTS["3.1.3"](mirror.series, 2019, [1, 2, 3])
    if relabel:
        layout.lines = relabel(layout.lines)
    return site.write_workbook(layout)


def _renamed(names: dict[str, str]) -> Callable[[list[Any]], list[Any]]:
    import dataclasses

    return lambda lines: [
        dataclasses.replace(ln, label=names.get(ln.label, ln.label)) for ln in lines
    ]


def _under_12_in_one_label(lines: list[Any]) -> list[Any]:
    """'Menores de 12 años' > 'Acompañados' / 'No acompañados' as two rows
    'Menores de 12 años acompañados' / '... no acompañados', without the parent row."""
    import dataclasses

    out, under12 = [], False
    for ln in lines:
        if ln.label == "Menores de 12 años":
            under12 = True
            continue
        if under12 and ln.label in ("Acompañados", "No acompañados"):
            out.append(dataclasses.replace(ln, label=f"Menores de 12 años {ln.label.lower()}"))
            under12 = ln.label == "Acompañados"
            continue
        under12 = False
        out.append(ln)
    return out


def _without_rows(parsed: segob_bulletin_monthly.ParsedTable) -> list[tuple[Any, ...]]:
    return sorted(tuple(v for k, v in row.items() if k != "source_row") for row in parsed.rows)


@pytest.mark.parametrize(
    "relabel",
    [
        _renamed({"Menores de 18 años": "Niñas, niños y adolescentes"}),
        _renamed({"Menores de 12 años": "De 0 a 11 años"}),
        _renamed(
            {
                "Menores de 18 años": "Niñas, niños y adolescentes 1",  # with a footnote call
                "Menores de 12 años": "Niñas y niños de 0 a 11 años",
                "De 12 a 17 años": "Adolescentes de 12 a 17 años",
            }
        ),
        _under_12_in_one_label,
        lambda lines: _renamed({"Menores de 18 años": "Niñas, niños y adolescentes"})(
            _under_12_in_one_label(lines)
        ),
    ],
    ids=["nna", "de_0_a_11", "spelled_out", "under_12_in_one_label", "both"],
)
def test_label_variants_of_other_editions_give_the_same_figures(
    relabel: Callable[[list[Any]], list[Any]],
) -> None:
    real = segob_bulletin_monthly.parse_cuadro_3_1_3(_real_3_1_3(), file="cuadro3.1.3.xls")
    variant = segob_bulletin_monthly.parse_cuadro_3_1_3(_real_3_1_3(relabel), file="variant.xls")
    assert _without_rows(variant) == _without_rows(real)
    assert len(real.rows) == 2 * 4 * 3  # 2 sexes x 4 leaves x 3 months


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        ({"Menores de 12 años": "Menores de 12 años con discapacidad"}, "unknown row label"),
        ({"De 12 a 17 años": "Adolescentes embarazadas"}, "unknown row label"),
        ({"Acompañados": "Menores de 18 años acompañados"}, "splits under18 by travel condition"),
        ({"Acompañados": "Adultos mayores acompañados"}, "unknown row label"),
    ],
)
def test_labels_that_mean_something_unknown_are_still_refused(
    names: dict[str, str], problem: str
) -> None:
    with pytest.raises(LayoutChanged, match=problem) as caught:
        segob_bulletin_monthly.parse_cuadro_3_1_3(_real_3_1_3(_renamed(names)), file="variant.xls")
    assert caught.value.sheet == "Cuadro 3.1.3" and caught.value.row
