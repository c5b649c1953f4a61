"""End to end through Airflow: the real DAGs, the real fetch code, the replay mirror.

One test goes through the ``airflow dags test`` command line, as an operator would; the others
drive ``dag.test()`` in this process (one CLI call costs ~18 s of start-up, one in-process run
well under a second after the first), replaying real days with the mirror's clock.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from returnwatch import settings, warehouse
from returnwatch.archive import Archive
from returnwatch.sources import hhs_uc_daily as hhs
from returnwatch_replay.mirror import ReplayMirror

pytestmark = pytest.mark.e2e

UTC = dt.UTC


@pytest.fixture
def mirror(data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    with ReplayMirror(as_of=dt.date(2025, 12, 11)) as running:
        monkeypatch.setenv("RETURNWATCH_HHS_UC_DAILY_BASE_URL", running.base_url("hhs_uc_daily"))
        yield running


def run(dags: dict, dag_id: str, day: dt.date, hour: int = 15) -> str:
    from returnwatch_replay.demo import run_dag

    return run_dag(dags[dag_id], dt.datetime.combine(day, dt.time(hour), tzinfo=UTC))


def replay(
    dags: dict, mirror: ReplayMirror, first: dt.date, last: dt.date, *, frozen: bool = False
) -> list[str]:
    """Run the source and monitor DAGs for every day; the mirror follows the clock unless frozen."""
    states = []
    day = first
    while day <= last:
        if not frozen:
            mirror.set_as_of(day)
        states += [run(dags, "hhs_uc_daily", day), run(dags, "monitor", day, hour=16)]
        day += dt.timedelta(days=1)
    return states


def query(sql: str) -> list[tuple]:
    with warehouse.session(read_only=True) as con:
        return con.execute(sql).fetchall()


def published_by(real_hhs_bytes: bytes, day: dt.date) -> set[dt.date]:
    """Days the real file holds that healthdata.gov had published by ``day`` (one-day lag)."""
    rows = hhs.parse(real_hhs_bytes, file="real").rows
    return {r["report_date"] for r in rows if r["report_date"] < day}


def test_airflow_dags_test_cli_then_transform(dags, mirror, data_dir, real_hhs_bytes) -> None:
    """`airflow dags test hhs_uc_daily` against the mirror, then dbt through Cosmos."""
    mirror.set_as_of(dt.date(2025, 12, 18))
    env = {**os.environ, "RETURNWATCH_DATA_DIR": str(data_dir)}
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "airflow"),
            "dags",
            "test",
            "hhs_uc_daily",
            "2025-12-18T15:00:00+00:00",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=settings.PROJECT_DIR,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]

    expected_days = published_by(real_hhs_bytes, dt.date(2025, 12, 18))
    [(rows, days, first, last)] = query(
        "select count(*), count(distinct report_date), min(report_date), max(report_date) "
        "from raw.hhs_uc_daily"
    )
    assert rows == days == len(expected_days)
    assert (
        (first, last)
        == (min(expected_days), max(expected_days))
        == (dt.date(2023, 1, 12), dt.date(2025, 12, 17))
    )
    [entry] = [e for e in Archive().entries("hhs_uc_daily") if e.outcome == "new"]
    # Vintage = publication date: the mirror published 17 December's figures on the 18th.
    assert query("select sha256, vintage from raw.files") == [(entry.sha256, dt.date(2025, 12, 18))]

    assert run(dags, "transform", dt.date(2025, 12, 18), hour=16) == "success"
    [(mart_days, traced)] = query(
        "select count(*), count(*) filter (where source_file = (select sha256 from raw.files)) "
        "from marts.hhs_uc_daily"
    )
    assert mart_days == traced == len(expected_days)
    assert settings.snapshot_path().exists(), "transform publishes the analysts' snapshot"


def test_rerun_changes_nothing(dags, mirror) -> None:
    day = dt.date(2025, 12, 11)
    assert replay(dags, mirror, day, day) == ["success", "success"]
    before = query("select count(*), (select count(*) from raw.files) from raw.hhs_uc_daily")
    assert replay(dags, mirror, day, day) == ["success", "success"]
    assert (
        query("select count(*), (select count(*) from raw.files) from raw.hhs_uc_daily") == before
    )
    outcomes = [e.outcome for e in Archive().entries("hhs_uc_daily")]
    assert outcomes == ["new", "not_modified"], "the second check is recorded, nothing reloaded"


def test_normal_weekend_gives_no_alert(dags, mirror) -> None:
    # Thursday 11 to Monday 15 December 2025: no figures dated Friday or Saturday, as usual.
    states = replay(dags, mirror, dt.date(2025, 12, 11), dt.date(2025, 12, 15))
    assert set(states) == {"success"}
    assert query("select count(*) from monitor.alerts") == [(0,)]
    assert query(
        "select distinct state from monitor.source_freshness where source = 'hhs_uc_daily'"
    ) == [("fresh",)]


def test_stopped_source_gives_exactly_one_slack_alert(dags, mirror, slack_standin) -> None:
    # The mirror freezes on Thursday 11 December 2025; the clock moves 10 days on. Slack is
    # the loopback stand-in speaking the Web API; the token is a fake from the environment.
    mirror.set_as_of(dt.date(2025, 12, 11))
    states = replay(dags, mirror, dt.date(2025, 12, 11), dt.date(2025, 12, 21), frozen=True)
    assert set(states) == {"success"}
    alerts = query("select event, status, delivered_via, slack_ts from monitor.alerts order by seq")
    assert [a[:3] for a in alerts] == [("opened", "sent", "slack")]

    [message] = slack_standin.posted()
    assert message["channel"] == "#returnwatch-ops"
    blocks = message["blocks"]
    assert blocks[0]["type"] == "header" and "HHS daily figures" in blocks[0]["text"]["text"]
    body = json.dumps(blocks)
    assert "healthdata.gov/National/HHS-Unaccompanied-Alien-Children-Program/ehpz-xc9n" in body
    # Data frozen with 10 December's figures (published on the 11th).
    assert "since those for Wednesday 10 December 2025" in message["text"]
    assert slack_standin.token not in body and slack_standin.token not in message["text"]
    assert alerts[0][3], "the message's ts is kept, for the incident's thread"
    freshness = dict(
        query(
            "select run_at::date, state from monitor.source_freshness where source = 'hhs_uc_daily'"
        )
    )
    assert freshness[dt.date(2025, 12, 14)] == "fresh"  # a weekend is not late
    assert freshness[dt.date(2025, 12, 21)] == "stopped"
    assert query("select state, severity from monitor.incidents") == [("open", "critical")]


def test_changed_layout_fails_the_run_keeps_the_file_and_tells_ops_once(dags, mirror) -> None:
    day = dt.date(2025, 12, 11)
    assert replay(dags, mirror, day, day) == ["success", "success"]
    before = query("select count(*) from raw.hhs_uc_daily")

    mirror.set_fault("hhs_uc_daily", "renamed_column")
    for next_day in (dt.date(2025, 12, 12), dt.date(2025, 12, 15)):
        mirror.set_as_of(next_day)
        assert run(dags, "hhs_uc_daily", next_day) == "failed"
    assert query("select count(*) from raw.hhs_uc_daily") == before, "warehouse unchanged"
    kept = [e for e in Archive().entries("hhs_uc_daily") if e.outcome == "new"]
    assert len(kept) == 3, "the broken files stay in the archive"
    alerts = query("select audience, event, text from monitor.alerts")
    assert len(alerts) == 1 and alerts[0][:2] == ("ops", "opened")
    assert "Children in ORR Care" in alerts[0][2]

    mirror.set_fault("hhs_uc_daily", None)
    mirror.set_as_of(dt.date(2025, 12, 16))
    assert run(dags, "hhs_uc_daily", dt.date(2025, 12, 16)) == "success"
    assert query("select event from monitor.alerts order by created_at") == [
        ("opened",),
        ("resolved",),
    ]
