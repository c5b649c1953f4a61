"""CBP monthly encounters (``https://www.cbp.gov/document/stats/nationwide-encounters``).

The package reads CBP's encounter CSVs into ``raw.cbp_encounters_aor``, ``_state`` and ``_sbo``
(layouts and quirks: docs/sources.md, section B). Parts: ``schema`` (id, raw tables, DDL,
revision keys), ``encounters_csv`` (the parser of the three layouts), ``discovery`` (the links
on the landing page); this module wires them into ``KINDS`` and tells a hand-downloaded file's
layout (``detect_kind``).
"""

from __future__ import annotations

import csv
import io

from returnwatch.sources.base import FileKind
from returnwatch.sources.cbp_encounters_monthly.discovery import discover
from returnwatch.sources.cbp_encounters_monthly.encounters_csv import (
    FISCAL_MONTHS,
    HEADERS,
    UC,
    ParsedFile,
    decode_csv,
    label_key,
    parse,
    parse_aor,
    parse_sbo,
    parse_state,
    refuse_non_csv,
)
from returnwatch.sources.cbp_encounters_monthly.schema import (
    FRAME_COLUMNS,
    RAW_DDL,
    RAW_TABLE_PREFIX,
    RAW_TABLES,
    REVISION_KEYS,
    SOURCE,
    prepare_for_suites,
)
from returnwatch.sources.errors import LayoutChanged

KINDS: dict[str, FileKind] = {
    "aor": FileKind(
        kind="aor",
        parse=parse_aor,
        raw_table=RAW_TABLES["aor"],
        suite="cbp_encounters_aor",
        key_columns=REVISION_KEYS["aor"],
        value_columns=("encounters",),
        prepare=prepare_for_suites,
        description="CBP Nationwide Encounters by Area of Responsibility "
        "(nationwide-encounters-fy{a}-fy{b}[-{mon}]-aor.csv): monthly encounters "
        "by component, border region, sector/field office, demographic, "
        "citizenship, title of authority and encounter type",
    ),
    "state": FileKind(
        kind="state",
        parse=parse_state,
        raw_table=RAW_TABLES["state"],
        suite="cbp_encounters_state",
        key_columns=REVISION_KEYS["state"],
        value_columns=("encounters",),
        prepare=prepare_for_suites,
        description="CBP Nationwide Encounters by State "
        "(nationwide-encounters-fy{a}-fy{b}[-{mon}]-state.csv): monthly encounters "
        "by border region, state, demographic, citizenship and title of authority",
    ),
    "sbo": FileKind(
        kind="sbo",
        parse=parse_sbo,
        raw_table=RAW_TABLES["sbo"],
        suite="cbp_encounters_sbo",
        key_columns=REVISION_KEYS["sbo"],
        value_columns=("encounters",),
        prepare=prepare_for_suites,
        description="CBP Southwest Land Border Encounters (sbo-encounters-fy{a}-fy{b}[-{mon}]"
        ".csv): monthly encounters at the Southwest land border by component, "
        "demographic, five citizenship groups, title and encounter type",
    ),
}


def detect_kind(name: str, content: bytes) -> str:
    """Which layout a hand-downloaded file is, by its header (the name is only for errors)."""
    expected = "one of the headers: " + " | ".join(",".join(h) for h in HEADERS.values())
    text = decode_csv(content[:65536], name, expected)
    refuse_non_csv(text, name, expected)
    header = next(csv.reader(io.StringIO(text.splitlines()[0], newline="")), [])
    keys = {label_key(label) for label in header}
    for kind, labels in HEADERS.items():
        if keys == {label_key(label) for label in labels}:
            return kind
    raise LayoutChanged(
        source=SOURCE,
        file=name,
        row=1,
        problem="the header is none of CBP's encounter layouts (aor, state, sbo)",
        expected=expected,
        seen=",".join(header),
    )


__all__ = [
    "FISCAL_MONTHS",
    "FRAME_COLUMNS",
    "HEADERS",
    "KINDS",
    "RAW_DDL",
    "RAW_TABLES",
    "RAW_TABLE_PREFIX",
    "SOURCE",
    "UC",
    "ParsedFile",
    "detect_kind",
    "discover",
    "parse",
    "parse_aor",
    "parse_sbo",
    "parse_state",
]
