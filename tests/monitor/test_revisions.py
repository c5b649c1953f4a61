"""Revisions: a figure that changes between two vintages becomes one monitor.revisions row,
recorded in the same transaction as the new file's rows."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from returnwatch import ingest, warehouse

RUN_AT = dt.datetime(2025, 12, 22, 15, tzinfo=dt.UTC)


def ingest_bytes(tmp_path: Path, name: str, content: bytes, vintage: dt.date) -> dict:
    path = tmp_path / name
    path.write_bytes(content)
    return ingest.ingest_file(
        "hhs_uc_daily", path, vintage=vintage, run_at=RUN_AT, run_id=f"test/{name}"
    )


def revisions() -> list[tuple]:
    with warehouse.session() as con:
        return con.execute(
            "SELECT figure, key, old_value, new_value, change, old_vintage, "
            "new_vintage FROM monitor.revisions ORDER BY figure"
        ).fetchall()


def restate(content: bytes, date_text: str, old: bytes, new: bytes) -> bytes:
    """A later export in which the publisher changed one day's figure (constructed edit of the
    real file: the real copy we hold has no restatement)."""
    lines = content.split(b"\n")
    [index] = [i for i, line in enumerate(lines) if line.startswith(date_text.encode())]
    assert old in lines[index]
    lines[index] = lines[index].replace(old, new, 1)
    return b"\n".join(lines)


def test_a_restated_figure_is_one_revision(
    data_dir: Path, tmp_path: Path, real_hhs_bytes: bytes
) -> None:
    first = ingest_bytes(tmp_path, "export_2025-12-22.csv", real_hhs_bytes, dt.date(2025, 12, 22))
    assert first["revisions"] == 0  # nothing older to compare with
    # 21 December 2025 in the real file: "December 21, 2025",6,18,11,"2,484",14 (HHS care 2,484).
    later = restate(real_hhs_bytes, '"December 21, 2025"', b'"2,484"', b'"2,492"')
    second = ingest_bytes(tmp_path, "export_2025-12-23.csv", later, dt.date(2025, 12, 23))
    assert second["revisions"] == 1
    [(figure, key, old, new, change, old_vintage, new_vintage)] = revisions()
    assert figure == "in_hhs_care" and json.loads(key) == {"report_date": "2025-12-21"}
    assert (old, new, change) == (2484, 2492, 8)
    assert (old_vintage, new_vintage) == (dt.date(2025, 12, 22), dt.date(2025, 12, 23))


def test_the_same_figures_again_are_no_revision(
    data_dir: Path, tmp_path: Path, real_hhs_bytes: bytes
) -> None:
    ingest_bytes(tmp_path, "a.csv", real_hhs_bytes, dt.date(2025, 12, 22))
    # Same figures, different bytes (a BOM in front): a new file, no revision.
    again = ingest_bytes(tmp_path, "b.csv", b"\xef\xbb\xbf" + real_hhs_bytes, dt.date(2025, 12, 23))
    assert again["rows_loaded"] > 0 and again["revisions"] == 0 and revisions() == []


def test_revisions_commit_with_the_rows_or_not_at_all(
    data_dir: Path, tmp_path: Path, real_hhs_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest_bytes(tmp_path, "a.csv", real_hhs_bytes, dt.date(2025, 12, 22))
    from returnwatch.monitor import revisions as revisions_module

    def broken(*args, **kwargs):
        raise RuntimeError("disk full while recording revisions")

    monkeypatch.setattr(revisions_module, "record", broken)
    later = restate(real_hhs_bytes, '"December 21, 2025"', b'"2,484"', b'"2,492"')
    with pytest.raises(RuntimeError):
        ingest_bytes(tmp_path, "b.csv", later, dt.date(2025, 12, 23))
    with warehouse.session() as con:
        files = con.execute("SELECT count(*) FROM raw.files").fetchone()[0]
    assert files == 1 and revisions() == []
