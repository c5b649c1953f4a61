"""What every source module provides, so ingest, the DAGs and the CLI treat them alike.

A source module (``sources/hhs.py``, ``sources/cbp.py``, ``sources/segob.py``, ...) owns one
publisher's formats. It exposes:

- ``SOURCE``: its key in ``config/sources.yaml``;
- ``KINDS``: ``{kind: FileKind}``, one entry per file layout it reads (a CBP AOR file, a SEGOB
  cuadro 3.1.1 workbook, ...), each with its parser, raw table, GX suite and revision key;
- ``RAW_DDL``: the ``CREATE TABLE IF NOT EXISTS raw.<table>`` statements for those tables;
- ``discover(get_page, *, landing_url, run_at, options) -> list[Link]`` (sources whose file
  links change): the links to fetch, read off the publisher's pages, never built from a
  pattern the publisher controls. ``get_page(url) -> bytes`` is supplied by ``fetch.py``
  (allowlisted hosts, size cap, timeouts, bounded retries; raises ``FetchError``); ``url`` is
  absolute. ``options`` is the source's ``options:`` block in ``config/sources.yaml``.
- ``detect_kind(name, content)``: which kind a file is, for the manual ingest of a file that
  somebody downloaded by hand (raises ``LayoutChanged`` when it is none of them).

Parsers are pure: bytes in, a ``Parsed`` out, no I/O. They raise ``LayoutChanged`` /
``BadValue`` (``sources/errors.py``) naming source, file, sheet, row and what they saw.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

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
class Link:
    """A file to fetch, as found on a publisher's page."""

    url: str  # absolute
    kind: str  # a key of the module's KINDS
    label: str = ""  # the link text or the table number, for logs
    # What the file covers, where the page says it (e.g. year 2024 for a SEGOB table).
    period: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "kind": self.kind, "label": self.label, "period": self.period,
                "extra": dict(self.extra)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Link:
        return cls(url=data["url"], kind=data["kind"], label=data.get("label", ""),
                   period=data.get("period"), extra=dict(data.get("extra") or {}))


def file_label(link: dict[str, Any]) -> str:
    """How a listed file is named to people: its kind and period ("cuadro_3_1_1 2024"), else
    its URL. The Airflow grid's mapped tasks and ``returnwatch backfill`` both use it."""
    return " ".join(str(p) for p in (link.get("kind"), link.get("period")) if p) or link["url"]


GetPage = Callable[[str], bytes]
