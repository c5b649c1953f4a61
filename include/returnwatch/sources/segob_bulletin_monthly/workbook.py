"""Reading one bulletin workbook (legacy BIFF8 ``.xls``): its sheet, header, title and rows.

Everything is matched by label, never by position; the layout rules and the quirks they
handle are in docs/sources.md (section C, "How a workbook is read").
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from typing import Any

from returnwatch.sources.errors import (
    BadValue,
    LayoutChanged,
    check_count,
)
from returnwatch.sources.segob_bulletin_monthly.labels import (
    DASHES,
    EXTRA_HEADER_TEXTS,
    MONTH_NAMES,
    MONTHS,
    PAGE_MARKER,
    TITLE_REPEAT,
    YEAR,
    clean_label,
    label_key,
    table_number,
)
from returnwatch.sources.segob_bulletin_monthly.schema import SOURCE, TableSpec

log = logging.getLogger(__name__)


OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def refuse_non_workbook(content: bytes, file: str, expected: str) -> None:
    """An empty body or an HTML page where a workbook should be: the site's usual failures."""
    if not content.strip():
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            row=None,
            problem="the file is empty",
            expected=expected,
            seen="",
        )
    head = content[:512].lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<?xml", b"<")) or b"<html" in head:
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            row=None,
            problem="the publisher served an HTML page instead of the file",
            expected=expected,
            seen=content[:200].decode("latin-1", "replace").strip(),
        )


class _XlrdLog:
    """xlrd's warnings about a damaged file ("file size not 512 + multiple of sector size")
    go to the debug log, not to stdout: the error raised says what matters."""

    def write(self, text: str) -> None:
        if text.strip():
            log.debug("xlrd: %s", text.strip())

    def flush(self) -> None:
        pass


_XLRD_LOG = _XlrdLog()


def read_workbook(content: bytes, file: str) -> Any:
    import xlrd

    expected = "a legacy Excel workbook (.xls, BIFF8)"
    refuse_non_workbook(content, file, expected)
    if not content.startswith(OLE_MAGIC):
        kind = "an .xlsx (zip) workbook" if content.startswith(b"PK") else "not a workbook"
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            row=None,
            problem=f"the file is {kind}",
            expected=expected,
            seen=content[:16].hex(" "),
        )
    try:
        # ragged_rows: a stray cell in a far column (or a damaged index) then costs one
        # long row, not a rectangle of every row times that width.
        return xlrd.open_workbook(
            file_contents=content, on_demand=True, ragged_rows=True, logfile=_XLRD_LOG
        )
    # xlrd reports a damaged or cut file with many exception types (CompDocError, XLRDError,
    # struct.error, IndexError, AssertionError...); all mean the same thing here.
    except Exception as exc:  # noqa: BLE001
        raise BadValue(
            source=SOURCE,
            file=file,
            row=None,
            problem="the workbook cannot be read (truncated or damaged download?)",
            expected=expected,
            seen=f"{type(exc).__name__}: {exc}",
        ) from None


def pick_sheet(book: Any, spec: TableSpec, file: str) -> Any:
    """The sheet named after the table; a single sheet is accepted when its title agrees."""
    names = book.sheet_names()
    for name in names:
        if table_number(name) == spec.number:
            return book.sheet_by_name(name)
    if len(names) == 1 and table_number(names[0]) is None:
        return book.sheet_by_index(0)  # e.g. "Hoja1": the title decides (checked later)
    raise LayoutChanged(
        source=SOURCE,
        file=file,
        sheet=", ".join(names),
        row=None,
        problem=f"no sheet for table {spec.number}",
        expected=f"a sheet named 'Cuadro {spec.number}'",
        seen=", ".join(names),
    )


def column_name(index: int) -> str:
    import xlrd.formula

    return xlrd.formula.colname(index)


@dataclass
class Cell:
    text: str | None  # stripped text, or None
    number: float | None


def sheet_cells(sheet: Any) -> list[list[Cell]]:
    import xlrd

    rows = []
    for r in range(sheet.nrows):
        cells = []
        for c in range(sheet.row_len(r)):
            ctype, value = sheet.cell_type(r, c), sheet.cell_value(r, c)
            if ctype in (xlrd.XL_CELL_NUMBER, xlrd.XL_CELL_DATE, xlrd.XL_CELL_BOOLEAN):
                cells.append(Cell(None, float(value)))
            elif ctype == xlrd.XL_CELL_TEXT and str(value).strip():
                cells.append(Cell(" ".join(str(value).replace("\xa0", " ").split()), None))
            else:  # empty, blank, error cells
                cells.append(Cell(None, None))
        rows.append(cells)
    return rows


@dataclass(frozen=True)
class Column:
    index: int
    role: str  # "month" | "total" | "subtotal"
    month: int | None
    group: str | None  # return type (3.2.4) or None

    @property
    def month_number(self) -> int:
        """The month (1-12) of a month column; a Total or Subtotal column has none."""
        if self.month is None:
            raise ValueError(f"column {column_name(self.index)} is a {self.role}, not a month")
        return self.month


@dataclass
class _Header:
    row: int  # 0-based row of the month names
    label_col: int
    first_value_col: int
    columns: list[Column]
    group_row: int | None
    texts: dict[int, str]  # the month row's texts by column, to recognise repeats
    group_texts: dict[int, str]


def _column_role(text: str) -> tuple[str, int | None] | None:
    key = label_key(clean_label(text))
    if key in MONTHS:
        return "month", MONTHS[key]
    if key == "total" or key.startswith("total "):
        return "total", None
    if key.startswith("subtotal"):
        return "subtotal", None
    return None


def _return_type(text: str) -> str | None:
    key = label_key(clean_label(text))
    if key.startswith("deportacion"):
        return "deportation"
    if key.startswith(("retorno asistido", "retornos asistidos")):
        children = any(word in key for word in ("menor", "nina", "nino", "nna", "adolesc"))
        return "assisted_return_children" if children else "assisted_return"
    if key == "total":
        return "total"
    return None


def _row_texts(row: list[Cell]) -> list[str]:
    return [cell.text for cell in row if cell.text]


def find_header(grid: list[list[Cell]], spec: TableSpec, file: str, sheet: str) -> _Header:
    limit = min(len(grid), 40)
    month_row = next(
        (
            r
            for r in range(limit)
            if any(c.text and (_column_role(c.text) or ("", None))[0] == "month" for c in grid[r])
        ),
        None,
    )
    if month_row is None:
        seen = " / ".join(" | ".join(_row_texts(row)) for row in grid[:8] if _row_texts(row))
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            sheet=sheet,
            row=None,
            problem=f"no header row with month names in the first {limit} rows",
            expected="a header row with 'Enero' … 'Diciembre' and 'Total'",
            seen=seen,
        )
    row = grid[month_row]
    first_month = min(
        c
        for c, cell in enumerate(row)
        if cell.text and (_column_role(cell.text) or ("", None))[0] == "month"
    )
    # The row-label header sits left of the months, on the month row or up to two rows above
    # (merged over the header block).
    label_col = None
    for r in (month_row, month_row - 1, month_row - 2):
        if r < 0:
            continue
        for c in range(min(first_month, len(grid[r]))):  # rows are ragged
            text = grid[r][c].text
            if text and any(word in label_key(text) for word in spec.label_header_words):
                label_col = c
                break
        if label_col is not None:
            break
    if label_col is None:
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            sheet=sheet,
            row=month_row + 1,
            problem="no row-label header left of the months",
            expected=f"a header naming {' / '.join(spec.label_header_words)} "
            f"(e.g. 'Continente y país de nacionalidad')",
            seen=" | ".join(_row_texts(row)),
        )
    # Every header right of the label header is a value column and must be one we know.
    first_value = min(c for c in range(label_col + 1, len(row)) if row[c].text)
    columns: list[Column] = []
    texts: dict[int, str] = {}
    for c in range(first_value, len(row)):
        text = row[c].text
        if text is None:
            continue
        role = _column_role(text)
        if role is None:
            raise LayoutChanged(
                source=SOURCE,
                file=file,
                sheet=sheet,
                row=month_row + 1,
                column=column_name(c),
                problem=f"unknown column header {text!r}",
                expected="Enero … Diciembre, Subtotal, Total",
                seen=" | ".join(_row_texts(row)),
            )
        texts[c] = text
        columns.append(Column(c, role[0], role[1], None))
    group_row, group_texts = None, {}
    above = month_row - 1
    above_texts: dict[int, str] = (
        {c: text for c in range(first_value, len(grid[above])) if (text := grid[above][c].text)}
        if above >= 0
        else {}
    )
    if spec.column_groups:
        if not above_texts:
            raise LayoutChanged(
                source=SOURCE,
                file=file,
                sheet=sheet,
                row=month_row,
                problem="no row naming the return type above the months",
                expected="'Deportación', 'Retorno asistido', 'Retorno asistido "
                "de niñas, niños y adolescentes' over the month groups",
                seen=" | ".join(_row_texts(grid[above])) if above >= 0 else "",
            )
        group_row, group_texts = above, above_texts
        current = None
        grouped = []
        for column in columns:
            if column.index in above_texts:
                current = _return_type(above_texts[column.index])
                if current is None:
                    raise LayoutChanged(
                        source=SOURCE,
                        file=file,
                        sheet=sheet,
                        row=above + 1,
                        column=column_name(column.index),
                        problem=f"unknown return type {above_texts[column.index]!r}",
                        expected="Deportación, Retorno asistido, Retorno asistido de niñas, "
                        "niños y adolescentes (or de menores), Total",
                        seen=" | ".join(_row_texts(grid[above])),
                    )
            if current is None:
                raise LayoutChanged(
                    source=SOURCE,
                    file=file,
                    sheet=sheet,
                    row=above + 1,
                    column=column_name(column.index),
                    problem="a month column before any return-type heading",
                    expected="a return type over every column group",
                    seen=" | ".join(_row_texts(grid[above])),
                )
            grouped.append(dataclasses.replace(column, group=current))
        columns = grouped
    else:
        # Without column groups, the only row allowed over the months is an extra header row
        # such as "Mes" (some editions have one); anything else is a layout we do not know.
        unknown = [
            t
            for t in above_texts.values()
            if label_key(t) not in EXTRA_HEADER_TEXTS and not YEAR.fullmatch(t.strip())
        ]
        if unknown:
            raise LayoutChanged(
                source=SOURCE,
                file=file,
                sheet=sheet,
                row=above + 1,
                problem=f"unknown header {unknown[0]!r} above the months",
                expected="at most an extra row such as 'Mes'",
                seen=" | ".join(_row_texts(grid[above])),
            )
    return _Header(month_row, label_col, first_value, columns, group_row, texts, group_texts)


def read_title(
    grid: list[list[Cell]], header: _Header, spec: TableSpec, file: str, sheet_name: str
) -> tuple[str, int]:
    """The table's title above the header: it must name this table (or none) and the year."""
    texts = [c.text for row in grid[: header.row] for c in row if c.text]
    title = next((t for t in texts if "cuadro" in label_key(t) or table_number(t)), None)
    if title is None:
        title = next((t for t in texts if YEAR.search(t)), "")
    number = table_number(title) if title else None
    if number is not None and number != spec.number:
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            sheet=sheet_name,
            row=None,
            problem=f"the title names table {number}",
            expected=f"table {spec.number}",
            seen=title,
        )
    if number is None and table_number(sheet_name) != spec.number:
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            sheet=sheet_name,
            row=None,
            problem=f"neither the sheet name nor the title names table {spec.number}",
            expected=f"'Cuadro {spec.number}' in the sheet name or the title",
            seen=title or " / ".join(texts[:3]),
        )
    years = [int(y) for t in texts for y in YEAR.findall(t)]
    if not years:
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            sheet=sheet_name,
            row=None,
            problem="the title does not say which year the table covers",
            expected="a title ending with the year, e.g. '…, enero-marzo de 2025'",
            seen=" / ".join(texts[:3]),
        )
    # The title's year is the last year it names ("…, 2019" or "enero-junio de 2019").
    years_in_title = [int(y) for y in YEAR.findall(title)] if title else []
    return title, (years_in_title or years)[-1]


def _value(cell: Cell, *, file: str, sheet: str, row: int, col: int) -> int | None:
    if cell.number is not None:
        if not math.isfinite(cell.number) or abs(cell.number - round(cell.number)) > 1e-9:
            raise BadValue(
                source=SOURCE,
                file=file,
                sheet=sheet,
                row=row,
                column=column_name(col),
                problem="the count is not a whole number",
                expected="a whole number of events or '-'",
                seen=repr(cell.number),
            )
        return check_count(
            int(round(cell.number)),
            source=SOURCE,
            file=file,
            sheet=sheet,
            row=row,
            column=column_name(col),
        )
    if cell.text is None:
        return None
    text = cell.text.strip()
    if text in DASHES:
        return 0  # "(-) Significa cero."
    digits = text.replace(",", "").replace(" ", "")
    if digits.isdigit() and digits.isascii():  # isdigit alone lets '²' and '٣' through
        return check_count(
            int(digits), source=SOURCE, file=file, sheet=sheet, row=row, column=column_name(col)
        )
    raise BadValue(
        source=SOURCE,
        file=file,
        sheet=sheet,
        row=row,
        column=column_name(col),
        problem="the cell is not a count",
        expected="a whole number of events or '-'",
        seen=text,
    )


def _is_value_like(cell: Cell) -> bool:
    if cell.number is not None:
        return True
    return cell.text is not None and (
        cell.text.strip() in DASHES or cell.text.replace(",", "").replace(" ", "").isdigit()
    )


@dataclass
class DataRow:
    row: int  # 1-based sheet row
    label: str
    values: dict[int, int | None]  # column index -> count (None = empty cell)


def data_rows(
    grid: list[list[Cell]], header: _Header, file: str, sheet: str, stats: dict[str, Any]
) -> list[DataRow]:
    """Rows with figures, past the header; title/header repeats, markers and notes skipped."""
    value_cols = [col.index for col in header.columns]
    out: list[DataRow] = []
    notes: list[str] = []
    for r in range(header.row + 1, len(grid)):
        row = grid[r]
        cells = {c: row[c] if c < len(row) else Cell(None, None) for c in value_cols}
        label = next(
            (
                row[c].text
                for c in range(header.label_col, header.first_value_col)
                if c < len(row) and row[c].text
            ),
            None,
        )
        if not any(cell.text or cell.number is not None for cell in row):
            stats["blank_rows"] += 1
            continue
        if not any(_is_value_like(cell) for cell in cells.values()):
            _text_row(row, r, header, file, sheet, stats, notes)
            continue
        if label is None:
            raise LayoutChanged(
                source=SOURCE,
                file=file,
                sheet=sheet,
                row=r + 1,
                problem="a row of figures without a label",
                expected=f"a nationality or group label in column {column_name(header.label_col)}",
                seen=" | ".join(_row_texts(row)) or "numbers only",
            )
        stray = next(
            (
                c
                for c in range(header.first_value_col, len(row))
                if c not in cells and _is_value_like(row[c])
            ),
            None,
        )
        if stray is not None:
            raise LayoutChanged(
                source=SOURCE,
                file=file,
                sheet=sheet,
                row=r + 1,
                column=column_name(stray),
                problem="figures in a column without a header",
                expected=" | ".join(header.texts.values()),
                seen=" | ".join(_row_texts(grid[header.row])),
            )
        values = {
            c: _value(cell, file=file, sheet=sheet, row=r + 1, col=c) for c, cell in cells.items()
        }
        out.append(DataRow(r + 1, clean_label(label), values))
        notes.clear()  # notes that were followed by data were page notes, not the bottom's
    stats["notes"] = notes[:6]
    return out


def _text_row(
    row: list[Cell],
    r: int,
    header: _Header,
    file: str,
    sheet: str,
    stats: dict[str, Any],
    notes: list[str],
) -> None:
    """A row without figures: a repeated title or header, a page marker, a note or a label."""
    texts = {c: cell.text for c, cell in enumerate(row) if cell.text}
    if all(PAGE_MARKER.search(t) for t in texts.values()):
        # "(-) Significa cero.", "Ver notas al final del cuadro.", "Continúa", the title
        # repeated with "(Continúa)" / "(Concluye)", "Fuente: ..."
        if any(TITLE_REPEAT.search(t) for t in texts.values()):
            stats["page_breaks"] += 1
        return
    in_values = {c: t for c, t in texts.items() if c >= header.first_value_col}
    if in_values and len(texts) > 1:
        # Several texts over the value columns: a header row. It must be the one we know
        # (repeated at a page break); another one means the columns changed mid-sheet.
        if in_values == header.texts or (header.group_texts and in_values == header.group_texts):
            stats["header_repeats"] += 1
            return
        if all(label_key(t) in EXTRA_HEADER_TEXTS for t in in_values.values()):
            return
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            sheet=sheet,
            row=r + 1,
            problem="a header row that differs from the table's header",
            expected=" | ".join(header.texts.values()),
            seen=" | ".join(texts.values()),
        )
    notes.append(" ".join(texts.values()))


def check_columns(rows: list[DataRow], header: _Header, file: str, sheet: str) -> list[Column]:
    """Drop months not yet published (empty everywhere); check Total / Subtotal columns."""
    months = [c for c in header.columns if c.role == "month"]
    published = []
    for column in months:
        filled = [r for r in rows if r.values[column.index] is not None]
        if not filled:
            continue  # a month the workbook has a column for but no figures yet
        if len(filled) != len(rows):
            empty = next(r for r in rows if r.values[column.index] is None)
            raise BadValue(
                source=SOURCE,
                file=file,
                sheet=sheet,
                row=empty.row,
                column=column_name(column.index),
                problem="an empty cell in a month that other rows have figures for",
                expected="a count or '-' (zero)",
                seen="",
            )
        published.append(column)
    published_ids = {c.index for c in published}
    for group in {c.group for c in header.columns}:
        in_group = [c for c in header.columns if c.group == group]
        since_subtotal: list[Column] = []
        for column in in_group:
            if column.role == "month":
                if column.index in published_ids:
                    since_subtotal.append(column)
                continue
            parts = (
                since_subtotal
                if column.role == "subtotal"
                else [c for c in in_group if c.index in published_ids]
            )
            for row in rows:
                seen = row.values[column.index]
                expected = sum(row.values[c.index] or 0 for c in parts)
                if seen is None and not parts:
                    continue  # a subtotal of months not published yet
                if seen != expected:
                    names = ", ".join(MONTH_NAMES[c.month_number - 1] for c in parts) or "none"
                    raise BadValue(
                        source=SOURCE,
                        file=file,
                        sheet=sheet,
                        row=row.row,
                        column=column_name(column.index),
                        problem=f"the row's {column.role.title()} is not the sum of "
                        f"its months ({names})",
                        expected=str(expected),
                        seen=str(seen),
                    )
            if column.role == "subtotal":
                since_subtotal = []
    return published


def check_sum(
    parent: DataRow,
    leaves: list[DataRow],
    columns: list[Column],
    file: str,
    sheet: str,
    what: str,
) -> None:
    for column in columns:
        expected = sum(leaf.values[column.index] or 0 for leaf in leaves)
        seen = parent.values[column.index]
        if seen != expected:
            raise BadValue(
                source=SOURCE,
                file=file,
                sheet=sheet,
                row=parent.row,
                column=column_name(column.index),
                problem=f"the {parent.label!r} row is not the sum of {what} "
                f"({MONTH_NAMES[column.month_number - 1]}"
                f"{', ' + column.group if column.group else ''})",
                expected=str(expected),
                seen=str(seen),
            )
