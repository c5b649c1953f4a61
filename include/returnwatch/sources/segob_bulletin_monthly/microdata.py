"""Section 5's per-event CSV ``BDSIOMR_PUB_{YYYY}_UPMRIP.csv``: one row per repatriation event.

Codes are kept as published; read with Arrow (a year is ~250k rows), each refusal names its line.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from returnwatch.sources.errors import (
    BadValue,
    LayoutChanged,
    refuse_nul,
)
from returnwatch.sources.segob_bulletin_monthly.schema import (
    MICRODATA_COLUMNS,
    MICRODATA_FIELDS,
    MICRODATA_KIND,
    SOURCE,
)
from returnwatch.sources.segob_bulletin_monthly.workbook import OLE_MAGIC, refuse_non_workbook

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


# Published field -> raw column. Codes are kept as published: the codebook


# Date spellings, each with a pattern that also picks day and month out, because Arrow's
# strptime rolls an impossible date over (31/02 becomes 02/03) instead of refusing it.
_DATE_FORMATS = (
    ("%d/%m/%Y", r"^(?P<d>\d{1,2})/(?P<m>\d{1,2})/(?P<y>\d{4})$"),
    ("%Y-%m-%d", r"^(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})$"),
    ("%d-%m-%Y", r"^(?P<d>\d{1,2})-(?P<m>\d{1,2})-(?P<y>\d{4})$"),
)


@dataclass
class ParsedMicrodata:
    """One year of section 5 per-event microdata, as an Arrow table (250k rows are cheap)."""

    file: str
    table: pa.Table
    encoding: str
    delimiter: str
    extra_fields: list[str]

    def frame(self) -> pd.DataFrame:
        import pandas as pd
        import pyarrow as pa

        # Ages stay whole numbers with gaps (Int16), not floats.
        return self.table.to_pandas(types_mapper={pa.int16(): pd.Int16Dtype()}.get)

    def summary(self) -> dict[str, Any]:
        import pyarrow.compute as pc

        dates = self.table.column("repatriation_date")
        first, last = pc.min(dates).as_py(), pc.max(dates).as_py()
        return {
            "kind": MICRODATA_KIND,
            "rows": self.table.num_rows,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "extra_fields": self.extra_fields,
            "first_date": first.isoformat() if first else None,
            "last_date": last.isoformat() if last else None,
        }


def detect_encoding(content: bytes) -> str:
    """UTF-8 when the bytes are valid UTF-8, else Latin-1 (which every byte string is).

    The bytes decide, not a declaration: SEGOB's CSVs and pages are Latin-1 with no marker,
    and a Latin-1 text with any accented letter is never valid UTF-8."""
    import codecs

    # Decoded piece by piece: a year of microdata is ~15 MB and a whole-file decode would
    # hold a second copy of it just to learn one bit.
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(content)
    step = 1 << 20
    try:
        for start in range(0, len(content), step):
            decoder.decode(view[start : start + step], final=start + step >= len(content))
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


def parse_microdata(content: bytes, *, file: str) -> ParsedMicrodata:
    """Section 5 per-event CSV ``BDSIOMR_PUB_{YYYY}_UPMRIP.csv`` → ``raw.segob_repatriation_events``.

    pyarrow reads it with every field as text (no type guessing), then dates and ages are
    converted column-wise; a value that does not convert is a ``BadValue`` naming its line.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    expected = f"a CSV whose header has {', '.join(MICRODATA_FIELDS)}"
    refuse_non_workbook(content, file, expected)
    refuse_nul(content, source=SOURCE, file=file, expected=expected)
    if content.startswith(OLE_MAGIC):
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            row=1,
            problem="an Excel workbook (the codebook?) instead of the CSV",
            expected=expected,
            seen=content[:8].hex(" "),
        )
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    encoding = detect_encoding(content)
    end = content.find(b"\n")
    first_line = content[: end if end >= 0 else len(content)].decode(encoding).rstrip("\r")
    delimiter = max((",", ";", "|", "\t"), key=first_line.count)
    names = [n.strip().strip('"').upper() for n in first_line.split(delimiter)]
    missing = [f for f in MICRODATA_FIELDS if f not in names]
    if missing:
        raise LayoutChanged(
            source=SOURCE,
            file=file,
            row=1,
            problem=f"fields {missing} are missing from the header",
            expected=expected,
            seen=first_line,
        )
    _refuse_truncated(content, file, len(names), delimiter, encoding)

    raw_names = [n.strip().strip('"') for n in first_line.split(delimiter)]
    wanted = {
        raw: MICRODATA_FIELDS[raw.upper()] for raw in raw_names if raw.upper() in MICRODATA_FIELDS
    }
    try:
        table = pacsv.read_csv(
            io.BytesIO(content),
            # One thread, 1 MB blocks: as fast here as the threaded reader (the file is a
            # few MB) and half its peak memory, which counts under the 300 MB budget.
            read_options=pacsv.ReadOptions(
                encoding=encoding, block_size=1 << 20, use_threads=False
            ),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(
                column_types={raw: pa.string() for raw in raw_names},
                include_columns=list(wanted),
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise BadValue(
            source=SOURCE,
            file=file,
            row=_arrow_error_row(str(exc)),
            problem="the CSV cannot be read",
            expected=expected,
            seen=str(exc),
        ) from None
    table = table.rename_columns([wanted[n] for n in table.column_names])
    lines = _line_numbers(content, table.num_rows)
    columns: dict[str, pa.Array] = {}
    for name in ("sex_code", "travel_condition_code", "detention_state", "repatriation_point"):
        text = pc.utf8_trim_whitespace(table.column(name))
        if pc.any(pc.equal(text, "")).as_py():  # empty is missing, not a code
            text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
        columns[name] = text
        table = table.drop_columns([name])  # let the untrimmed copy go
    columns["repatriation_date"] = _dates(table.column("repatriation_date"), lines, file)
    columns["age"] = _ages(table.column("age"), lines, file)
    columns["source_row"] = lines
    out = pa.table({name: columns[name] for name in MICRODATA_COLUMNS})
    del table, columns
    # The intermediate columns are freed but Arrow's allocator keeps their pages; hand them
    # back so the rest of the task (Parquet, the DuckDB load) stays within its memory budget.
    pa.default_memory_pool().release_unused()
    extra = [n for n in raw_names if n.upper() not in MICRODATA_FIELDS]
    return ParsedMicrodata(
        file=file, table=out, encoding=encoding, delimiter=delimiter, extra_fields=extra
    )


def _refuse_truncated(
    content: bytes, file: str, fields: int, delimiter: str, encoding: str
) -> None:
    """A file cut mid-row (dropped download) ends without a newline on a short line."""
    if content.endswith((b"\n", b"\r")):
        return
    last = content[content.rfind(b"\n") + 1 :].decode(encoding, "replace")
    try:
        parsed = next(csv.reader([last], delimiter=delimiter), [])
    except csv.Error:  # a field over the csv module's limit: certainly not a whole line
        parsed = []
    if len(parsed) < fields or last.count('"') % 2:  # short, or cut inside a quoted field
        raise BadValue(
            source=SOURCE,
            file=file,
            row=content.count(b"\n") + 1,
            problem="the file ends in the middle of a line (truncated download?)",
            expected=f"{fields} fields on every line",
            seen=last,
        )


def _arrow_error_row(message: str) -> int | None:
    match = re.search(r"[Rr]ow #?(\d+)", message)
    return int(match.group(1)) if match else None


def _line_numbers(content: bytes, rows: int) -> pa.Array:
    """The file line (header = 1) of each parsed row; pyarrow skips blank lines."""
    import numpy as np
    import pyarrow as pa

    if b"\n\n" not in content and b"\n\r\n" not in content:
        return pa.array(np.arange(2, rows + 2, dtype=np.int32))
    numbers = [i for i, line in enumerate(content.split(b"\n")[1:], start=2) if line.strip()]
    return pa.array(np.asarray(numbers[:rows], dtype=np.int32))


def _dates(column: pa.ChunkedArray, lines: pa.Array, file: str) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.utf8_trim_whitespace(column)
    sample = next((v for v in text.slice(0, 1000).to_pylist() if v), None)
    spelling = next(((f, p) for f, p in _DATE_FORMATS if sample and re.match(p, sample)), None)
    if spelling is None:
        raise BadValue(
            source=SOURCE,
            file=file,
            row=2,
            column="FEC_REP",
            problem="the repatriation date cannot be read",
            expected="dates like 31/12/2024",
            seen=str(sample),
        )
    fmt, pattern = spelling
    parsed = pc.strptime(text, format=fmt, unit="s", error_is_null=True)
    parts = pc.extract_regex(text, pattern)  # null where the pattern does not match
    day = pc.cast(pc.struct_field(parts, "d"), pa.int8(), safe=False)
    month = pc.cast(pc.struct_field(parts, "m"), pa.int8(), safe=False)
    same = pc.and_(pc.equal(pc.day(parsed), day), pc.equal(pc.month(parsed), month))
    good = pc.fill_null(same, False)
    bad = pc.and_(pc.invert(good), pc.not_equal(text, ""))
    if pc.any(bad).as_py():
        index = pc.index(bad, True).as_py()
        raise BadValue(
            source=SOURCE,
            file=file,
            row=lines[index].as_py(),
            column="FEC_REP",
            problem="the repatriation date cannot be read",
            expected=f"dates like {sample} ({fmt})",
            seen=text[index].as_py(),
        )
    return pc.cast(parsed, pa.date32())


def _ages(column: pa.ChunkedArray, lines: pa.Array, file: str) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.utf8_trim_whitespace(column)
    ok = pc.or_(pc.equal(text, ""), pc.match_substring_regex(text, r"^\d{1,3}$"))
    if not pc.all(ok).as_py():
        index = pc.index(ok, False).as_py()
        raise BadValue(
            source=SOURCE,
            file=file,
            row=lines[index].as_py(),
            column="EDA",
            problem="the age is not a whole number of years",
            expected="an age in years (0-120)",
            seen=text[index].as_py(),
        )
    nullable = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    return pc.cast(nullable, pa.int16())
