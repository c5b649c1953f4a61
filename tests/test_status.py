"""`returnwatch status`: one line per source from the monitor tables, open incidents listed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from returnwatch import status, warehouse
from returnwatch.monitor import run_monitors
from returnwatch.sources import SOURCE_MODULES


def test_no_monitor_run_yet_lists_every_source_as_unknown(data_dir: Path) -> None:
    with warehouse.session() as con:
        text = status.render(con)
    lines = text.splitlines()
    assert [line.split()[0] for line in lines[2:2 + len(SOURCE_MODULES)]] == list(SOURCE_MODULES)
    assert all(" unknown " in line for line in lines[2:2 + len(SOURCE_MODULES)])
    assert "no monitor run yet" in text


def test_a_source_that_never_loaded_is_reported_after_a_monitor_run(data_dir: Path) -> None:
    at = dt.datetime(2025, 12, 22, 16, tzinfo=dt.UTC)
    with warehouse.session() as con:
        run_monitors(run_at=at, run_id="test/status", con=con)
        text = status.render(con)
    assert "judged by the monitor run of 2025-12-22 16:00 UTC" in text
    hhs = next(line for line in text.splitlines() if line.startswith("hhs_uc_daily "))
    # Nothing was ever loaded: not "ok", and no newest period.
    assert hhs.split()[1] == "NO-DATA" and hhs.split()[2] == "-"
