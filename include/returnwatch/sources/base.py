"""What every source package provides, so ingest, the DAGs and the CLI treat them alike.

A source is a package ``sources/<source_id>/`` (the id is its key in ``config/sources.yaml``)
whose ``__init__`` exposes: ``SOURCE`` (the id), ``RAW_TABLE_PREFIX``, ``KINDS`` (one
``FileKind`` per file layout: parser, raw table, GX suite, revision key), ``RAW_DDL``,
``detect_kind(name, content)`` for files loaded by hand, and ``discover(get_page, *,
landing_url, run_at, options) -> list[Link]`` when the file links change (read off the
publisher's pages through the ``get_page`` that ``fetch.py`` supplies, never built).
CONTRIBUTING.md ("Adding a source") lists the modules inside the package.

Parsers are pure (bytes in, a ``Parsed`` out) and raise ``LayoutChanged`` / ``BadValue``
(``sources/errors.py``). Callers go through ``read``, ``detect`` and ``discover`` here, which
turn anything else a parser lets out into a ``SourceFileError`` and range-check the rows
against their warehouse columns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from returnwatch.sources.errors import INTEGER_RANGES, BadValue, refusing

if TYPE_CHECKING:
    import pandas as pd


class Parsed(Protocol):
    """One parsed file: rows shaped like its raw table, plus what the parser noticed."""

    def frame(self) -> pd.DataFrame:
        """The raw table's columns except ``source_file`` and ``vintage`` (added at load),
        including ``source_row`` (where in the file the row came from, for error messages)."""

    def summary(self) -> dict[str, Any]:
        """Small JSON-able facts for the log and the run summary (rows, periods covered, ...)."""


@dataclass(frozen=True)
class FileKind:
    """One file layout of a source and where its rows go."""

    kind: str
    parse: Callable[..., Parsed]  # parse(content: bytes, *, file: str) -> Parsed
    raw_table: str  # table name inside schema raw
    suite: str  # expectations/<suite>.json
    # A figure is identified by these columns across vintages; when a newer vintage's
    # ``value_columns`` differ for the same key, a row goes to monitor.revisions.
    key_columns: Sequence[str] = ()
    value_columns: Sequence[str] = ()
    # True: a key repeated inside one file is that file's own conflict (reported by its
    # parser/suite), so revision checks ignore it. False: rows of a key are summed per file.
    unique_keys_only: bool = False
    # Free text for the runbook and docs: what the file is.
    description: str = ""
    # Derived columns some expectations need (e.g. weekday of a date), added to the frame
    # that GX validates and never loaded.
    prepare: Callable[[pd.DataFrame], pd.DataFrame] | None = None


@dataclass(frozen=True)
class ReadFile:
    """A parsed file whose rows and summary were computed inside the guard (some parsers
    build them lazily, and a damaged file must fail in ``read``, not later)."""

    rows: pd.DataFrame
    facts: dict[str, Any]

    def frame(self) -> pd.DataFrame:
        return self.rows

    def summary(self) -> dict[str, Any]:
        return self.facts


def read(source: str, kind: FileKind, content: bytes, *, file: str) -> ReadFile:
    """Parse ``content`` as ``kind``: rows, or one ``SourceFileError`` naming ``file``.

    ``file`` is how people know the file: the path given to ``returnwatch ingest`` or the URL
    it was fetched from (with its sha256). Integer columns are checked against the types of
    their warehouse columns, so a count too large for an INTEGER is refused here, with its row,
    instead of failing (and being retried) at insert.
    """
    expected = f"{kind.description or kind.kind} ({source}, file kind {kind.kind})"
    with refusing(source=source, file=file, expected=expected):
        parsed = kind.parse(content, file=file)
        frame, facts = parsed.frame(), parsed.summary()
        _check_ranges(frame, column_types(source, kind.raw_table), source=source, file=file)
    return ReadFile(frame, facts)


def detect(source: str, name: str, content: bytes) -> str:
    """The source's ``detect_kind``, with the same guarantee as ``read``."""
    from returnwatch.sources import module

    with refusing(source=source, file=name, expected=f"a file {source} publishes"):
        return module(source).detect_kind(name, content)


def discover(
    source: str, get_page: GetPage, *, landing_url: str, run_at: Any, options: dict[str, Any]
) -> list[Link]:
    """The source's ``discover``, with the same guarantee as ``read``: a page that breaks the
    reader is a ``SourceFileError`` naming the page (``landing_url`` or the page it links).
    A ``FetchError`` (the site is down) goes through, to be retried."""
    from returnwatch.fetch import FetchError
    from returnwatch.sources import module

    with refusing(
        source=source, file=landing_url, expected=f"{source}'s listing pages", passing=(FetchError,)
    ):
        return module(source).discover(
            get_page, landing_url=landing_url, run_at=run_at, options=options
        )


_COLUMN = re.compile(r"^\s*(\w+)\s+(TINYINT|SMALLINT|INTEGER|BIGINT)\b", re.MULTILINE)


def column_types(source: str, raw_table: str) -> dict[str, str]:
    """Integer columns of ``raw.<raw_table>`` and their types, read off the source's DDL."""
    from returnwatch.sources import module

    for statement in module(source).RAW_DDL:
        if re.search(rf"raw\.{re.escape(raw_table)}\s*\(", statement):
            return dict(_COLUMN.findall(statement))
    return {}


def _check_ranges(frame: pd.DataFrame, types: dict[str, str], *, source: str, file: str) -> None:
    for column, sql_type in types.items():
        if column not in frame.columns or frame.empty:
            continue
        values = frame[column]
        low, high = INTEGER_RANGES[sql_type]
        if values.dtype.kind == "O":  # Python ints or None
            numbers = values.dropna()
            bad = numbers[[not (low <= int(v) <= high) for v in numbers]]
        elif values.dtype.kind in "iuf":
            bad = values[(values < low) | (values > high)]
        else:
            continue
        if len(bad):
            where = bad.index[0]
            row = frame["source_row"].get(where) if "source_row" in frame.columns else None
            raise BadValue(
                source=source,
                file=file,
                column=column,
                row=int(row) if row is not None else None,
                problem=f"the value does not fit its warehouse column ({sql_type})",
                expected=f"a whole number from {low:,} to {high:,}",
                seen=str(bad.iloc[0]),
            )


@dataclass(frozen=True)
class Link:
    """A file to fetch, as found on a publisher's page."""

    url: str  # absolute
    kind: str  # a key of the module's KINDS
    label: str = ""  # the link text or the table number, for logs
    # What the file covers, where the page says it (e.g. year 2024 for a SEGOB table).
    period: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "kind": self.kind,
            "label": self.label,
            "period": self.period,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Link:
        return cls(
            url=data["url"],
            kind=data["kind"],
            label=data.get("label", ""),
            period=data.get("period"),
            extra=dict(data.get("extra") or {}),
        )


def file_label(link: dict[str, Any]) -> str:
    """How a listed file is named to people: its kind and period ("cuadro_3_1_1 2024"), else
    its URL. The Airflow grid's mapped tasks and ``returnwatch backfill`` both use it."""
    return " ".join(str(p) for p in (link.get("kind"), link.get("period")) if p) or link["url"]


GetPage = Callable[[str], bytes]
