"""Replaying the real HHS daily file as it looked on a given day, for monitor and alert tests.

``HhsHistory`` cuts the real healthdata.gov copy (include/replay/hhs_uc) down to the rows
published by a day, stores those real bytes in the archive like the fetcher would (manifest
row ``new``), parses them with the real parser and loads them with ``warehouse.load_file``.
``check()`` adds the other manifest rows a fetch can leave (same bytes again, 304, failure).
Nothing here invents a figure: every row is a real published row.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from returnwatch import settings, warehouse
from returnwatch.archive import Archive
from returnwatch.sources import hhs_uc_daily as hhs

REAL_HHS_CSV = settings.replay_data_dir() / "hhs_uc" / "healthdata_ehpz-xc9n_copy_mihirg42.csv"

SOURCE = "hhs_uc_daily"
URL = "https://healthdata.gov/api/views/ehpz-xc9n/rows.csv?accessType=DOWNLOAD"
UTC = dt.UTC


def at(day: dt.date | str, hour: int = 16) -> dt.datetime:
    """A run time: ``hour`` o'clock UTC on ``day`` (the monitor DAG runs at 16:00 UTC)."""
    day = dt.date.fromisoformat(day) if isinstance(day, str) else day
    return dt.datetime.combine(day, dt.time(hour), tzinfo=UTC)


@functools.cache
def _real_lines() -> tuple[str, tuple[tuple[dt.date, str], ...]]:
    text = REAL_HHS_CSV.read_text(encoding="utf-8-sig")
    lines = text.splitlines(keepends=True)
    rows = []
    for line in lines[1:]:
        cells = next(csv.reader(io.StringIO(line)), [])
        if not cells or not cells[0].strip():
            continue
        rows.append((dt.datetime.strptime(cells[0].strip(), "%B %d, %Y").date(), line))
    return lines[0], tuple(rows)


def real_file_through(last: dt.date) -> bytes:
    """The real file's header and its rows dated up to ``last``, as bytes (same format)."""
    header, rows = _real_lines()
    body = "".join(line for day, line in rows if day <= last)
    return (header + body).encode("utf-8")


def real_dates() -> list[dt.date]:
    return sorted({day for day, _ in _real_lines()[1]})


class HhsHistory:
    """Loads real HHS rows into a warehouse connection and writes the archive manifest."""

    def __init__(self, con, archive: Archive | None = None) -> None:
        self.con = con
        self.archive = archive or Archive()

    def publish(self, last: dt.date | str, *, received: dt.datetime) -> str:
        """The fetcher received the real file holding figures through ``last`` at ``received``.

        Archives the bytes (manifest ``new`` unless seen before), loads them; returns sha256.
        """
        last = dt.date.fromisoformat(last) if isinstance(last, str) else last
        content = real_file_through(last)
        entry = self.archive.store(
            SOURCE,
            URL,
            content,
            fetched_at=received,
            run_at=received,
            vintage=last + dt.timedelta(days=1),
            content_type="text/csv",
        )
        parsed = hhs.parse(content, file=entry.sha256)
        warehouse.load_file(
            self.con,
            table="hhs_uc_daily",
            frame=parsed.frame(),
            source=SOURCE,
            sha256=entry.sha256,
            url=URL,
            vintage=entry.vintage,
            fetched_at=entry.fetched_at,
        )
        return entry.sha256

    def check(
        self, when: dt.datetime, outcome: str = "unchanged", *, http_status: int | None = None
    ) -> None:
        """A later fetch check: ``unchanged`` (same bytes), ``not_modified`` or ``failed``."""
        if outcome == "unchanged":
            latest = self.archive.latest_file(SOURCE)
            content = self.archive.read(latest.sha256, SOURCE)
            self.archive.store(
                SOURCE,
                URL,
                content,
                fetched_at=when,
                run_at=when,
                vintage=latest.vintage,
                content_type="text/csv",
            )
        elif outcome == "not_modified":
            self.archive.record_not_modified(SOURCE, URL, fetched_at=when, run_at=when)
        elif outcome == "failed":
            self.archive.record_failure(
                SOURCE,
                URL,
                fetched_at=when,
                run_at=when,
                error="HTTP 503 Service Unavailable",
                http_status=http_status or 503,
            )
        else:
            raise ValueError(outcome)


# ------------------------------------------------------------------ fixtures (imported by conftests)


@pytest.fixture(autouse=True)
def no_outside_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """No Slack token and no Airflow link from the developer's shell (autouse: runs first, so
    ``slack_standin`` can set its own)."""
    for name in (
        "SLACK_BOT_TOKEN",
        "AIRFLOW_CONN_SLACK_DEFAULT",
        "AIRFLOW_CONN_SLACK_API_DEFAULT",
        "RETURNWATCH_AIRFLOW_BASE_URL",
        "RETURNWATCH_SLACK_BASE_URL",
        "RETURNWATCH_CONFIG_DIR",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def con(data_dir: Path) -> Iterator:
    """The warehouse of a fresh RETURNWATCH_DATA_DIR, schemas created."""
    with warehouse.session() as connection:
        yield connection


@pytest.fixture
def history(con) -> HhsHistory:
    return HhsHistory(con)
