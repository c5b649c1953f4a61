"""HHS's monthly "Latest UC Data – FY{YYYY}" pages (source ``hhs_uc_monthly``).

The package reads one page per fiscal year into long rows of ``raw.hhs_uc_monthly`` (layout
and quirks: docs/sources.md, section A.3). Parts: ``schema`` (id, raw table, DDL), ``fy_page``
(the page parser), ``discovery`` (which fiscal-year pages exist); this module wires them into
``KINDS`` and tells a hand-downloaded file's kind (``detect_kind``).
"""

from __future__ import annotations

from returnwatch.sources.base import FileKind
from returnwatch.sources.errors import LayoutChanged
from returnwatch.sources.hhs_uc_monthly.discovery import discover
from returnwatch.sources.hhs_uc_monthly.fy_page import (
    MEASURES,
    NUMBER_TYPES,
    REQUIRED_MEASURES,
    ParsedPage,
    fiscal_year_of,
    month_date,
    parse,
)
from returnwatch.sources.hhs_uc_monthly.schema import (
    COLUMNS,
    KIND_FY_PAGE,
    RAW_DDL,
    RAW_TABLE,
    RAW_TABLE_PREFIX,
    SOURCE,
    prepare_for_suites,
)


def detect_kind(name: str, content: bytes) -> str:
    """Which of this source's layouts a hand-downloaded file is (only one: the FY page)."""
    head = content[:200_000].decode("utf-8", "replace").lower()
    if "<html" in head and (
        "latest uc data" in head or "average number of children in care" in head
    ):
        return KIND_FY_PAGE
    raise LayoutChanged(
        source=SOURCE,
        file=name,
        problem="not a file this source publishes",
        expected="an HHS 'Latest UC Data – FY{YYYY}' HTML page",
        seen=content[:120].decode("utf-8", "replace"),
    )


KINDS: dict[str, FileKind] = {
    KIND_FY_PAGE: FileKind(
        kind=KIND_FY_PAGE,
        parse=parse,
        raw_table=RAW_TABLE,
        suite="hhs_uc_monthly",
        # A month's figure for a label that changes on a later fetch of the page is a revision.
        key_columns=("month", "section", "category"),
        value_columns=("value",),
        unique_keys_only=True,
        description="HHS 'Latest UC Data – FY{YYYY}' page: monthly ORR in-care statistics, "
        "one page per fiscal year, months as columns",
        prepare=prepare_for_suites,
    ),
}


__all__ = [
    "COLUMNS",
    "KINDS",
    "MEASURES",
    "NUMBER_TYPES",
    "RAW_DDL",
    "RAW_TABLE",
    "RAW_TABLE_PREFIX",
    "REQUIRED_MEASURES",
    "SOURCE",
    "ParsedPage",
    "detect_kind",
    "discover",
    "fiscal_year_of",
    "month_date",
    "parse",
]
