"""HHS/DHS daily figures on unaccompanied children (source ``hhs_uc_daily``).

Two file kinds fill this source: the healthdata.gov dataset ``ehpz-xc9n``'s CSV export
(``export_csv``, fetched daily from a fixed address, so there is no ``discovery`` module) and
the "Unaccompanied Children Daily Report" PDF (``report_pdf``, manual ingest only). ``schema``
holds the id, the raw tables and their DDL; this module wires them into ``KINDS`` and tells a
hand-downloaded file's kind (``detect_kind``). Layouts and quirks: docs/sources.md, section A.
"""

from __future__ import annotations

from returnwatch.sources.base import FileKind
from returnwatch.sources.errors import LayoutChanged
from returnwatch.sources.hhs_uc_daily import export_csv, report_pdf
from returnwatch.sources.hhs_uc_daily.export_csv import (
    COUNT_COLUMNS,
    MEXICO_FOOTNOTE,
    ParsedFile,
    parse,
)
from returnwatch.sources.hhs_uc_daily.schema import (
    RAW_DDL,
    RAW_TABLE,
    RAW_TABLE_PREFIX,
    REPORT_RAW_TABLE,
    SOURCE,
    prepare_export_for_suite,
    prepare_report_for_suite,
)

KINDS: dict[str, FileKind] = {
    "export_csv": FileKind(
        kind="export_csv",
        parse=export_csv.parse,
        raw_table=RAW_TABLE,
        suite="hhs_uc_daily",
        # A date whose figures change in a later export is a revision. A date repeated
        # with different figures inside one file is an in-file conflict (a quality
        # warning), not a revision, so revision checks skip keys repeated in a file.
        key_columns=("report_date",),
        value_columns=tuple(export_csv.COUNT_COLUMNS),
        unique_keys_only=True,
        description="Socrata CSV export of dataset ehpz-xc9n (the whole history, daily)",
        prepare=prepare_export_for_suite,
    ),
    # The daily report PDF: manual ingest only (no stable public URL for it is known).
    "daily_report_pdf": FileKind(
        kind="daily_report_pdf",
        parse=report_pdf.parse,
        raw_table=REPORT_RAW_TABLE,
        suite="hhs_uc_daily_report",
        # A data day whose figures differ in another report (a re-issued PDF) is a revision.
        key_columns=("report_date",),
        value_columns=(*report_pdf.COUNT_COLUMNS, *report_pdf.AVERAGE_COLUMNS),
        unique_keys_only=True,
        description="HHS/DHS 'Unaccompanied Children Daily Report' PDF: one data day's five "
        "figures and three 30-day averages (manual ingest)",
        prepare=prepare_report_for_suite,
    ),
}


def detect_kind(name: str, content: bytes) -> str:
    """Which of this source's layouts a hand-downloaded file is."""
    if report_pdf.looks_like(content):
        return "daily_report_pdf"
    head = content[:4096].decode("utf-8-sig", "replace").lower()
    if "children in cbp custody" in head and "date" in head:
        return "export_csv"
    raise LayoutChanged(
        source=SOURCE,
        file=name,
        row=1,
        problem="not a file this source publishes",
        expected="the ehpz-xc9n CSV export or the daily report PDF",
        seen=head[:120],
    )


__all__ = [
    "COUNT_COLUMNS",
    "KINDS",
    "MEXICO_FOOTNOTE",
    "RAW_DDL",
    "RAW_TABLE",
    "RAW_TABLE_PREFIX",
    "REPORT_RAW_TABLE",
    "SOURCE",
    "ParsedFile",
    "detect_kind",
    "export_csv",
    "parse",
    "report_pdf",
]
