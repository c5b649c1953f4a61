"""``returnwatch demo`` as a newcomer runs it: the story it prints, the alerts it raises, and
that running it again on the same clone sends nothing.

The demo runs as ``make demo`` runs it, in its own process, twice on the same data folder and
Airflow home, with Slack pointed at the loopback stand-in. Alerts are checked by kind,
audience and series, not by their wording (which has its own tests).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from returnwatch import settings

pytestmark = pytest.mark.e2e

# What the demo's story is made of, line by line, before its summary starts.
STORY = [
    re.compile(r"^Preparing the embedded Airflow in "),
    re.compile(r"^Replay mirror of the publishers on http://127\.0\.0\.1:\d+ "),
    re.compile(r"^The monthly sources as they stood on "),
    re.compile(r"^June 2025, \d+ days: "),
    re.compile(r"^Catching up to "),
    re.compile(r"^  (Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d\d [A-Z][a-z]{2} \d{4}  "),  # a replayed day
    re.compile(r"^    alert "),  # an alert sent to Slack, one line under its day
]
SUMMARY_HEADING = re.compile(r"^returnwatch — summary \(demo: ")


def non_story_lines(output: str) -> list[str]:
    """Lines of the demo's output that are neither its story nor its summary: noise."""
    noise = []
    for line in output.splitlines():
        if SUMMARY_HEADING.match(line):
            break
        if line and not any(p.match(line) for p in STORY):
            noise.append(line)
    return noise


def run_demo(tmp: Path, slack_env: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "RETURNWATCH"))}
    env.update(slack_env)
    env["RETURNWATCH_DATA_DIR"] = str(tmp / "data")
    env["AIRFLOW_HOME"] = str(tmp / "airflow")
    returnwatch = Path(sys.executable).parent / "returnwatch"  # the console script make demo runs
    return subprocess.run(
        [str(returnwatch), "demo"],
        env=env,
        cwd=settings.PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=1700,
    )


def alerts(data: Path) -> list[tuple]:
    """(event, audience, incident kind, source, series, text) of every alert, in order."""
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        return con.execute("""
            select a.event, a.audience, i.kind, i.source, i.series, a.text, a.status
            from monitor.alerts a left join monitor.incidents i using (incident_id)
            order by a.seq""").fetchall()


# Two whole demos: about 3 minutes on an idle 2-core machine, far more on a shared one.
@pytest.mark.timeout(3600)
def test_the_demo_tells_its_story_alerts_advocates_and_sends_nothing_twice(
    tmp_path: Path, slack_standin
) -> None:
    slack_env = {
        "RETURNWATCH_SLACK_BASE_URL": slack_standin.base_url,
        "SLACK_BOT_TOKEN": slack_standin.token,
    }
    first = run_demo(tmp_path, slack_env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert non_story_lines(first.stdout) == []
    assert first.stderr.strip() == ""

    raised = alerts(tmp_path / "data")
    assert not [r for r in raised if r[6] == "failed"], raised
    told = {(event, audience, source) for event, audience, _, source, *_ in raised}
    # Ops: the HHS daily figures stop for 11–16 June 2025 and resume; HHS's monthly pages (the
    # mirror has them up to FY 2021) have stopped.
    assert {
        ("opened", "ops", "hhs_uc_daily"),
        ("resolved", "ops", "hhs_uc_daily"),
        ("opened", "ops", "hhs_uc_monthly"),
    } <= told
    # Advocates, from real published figures judged while new: January 2021 on 20 March 2021
    # (CBP's children expelled under Title 42 after the court order, a policy rule), resolved
    # once later months are in; SEGOB's April 2025 on 7 June 2025, the day it was published.
    advocates = [r for r in raised if r[1] == "advocates"]
    # January 2021 was contested (court order, its stay and CDC's exception in one month): the
    # rule alert says so and never calls it a violation.
    assert ("opened", "rule_contested_period") in {(r[0], r[2]) for r in advocates}
    assert any(r[0] == "resolved" and r[2] == "rule_contested_period" for r in advocates)
    assert not [r for r in advocates if "violation" in r[5].lower()]
    segob = [r for r in advocates if r[3] == "segob_bulletin_monthly" and r[0] == "opened"]
    assert any(r[2].startswith("anomaly_") and "April 2025" in r[5] for r in segob), segob
    # ... and no advocate alert stands on the demo's constructed figures.
    assert not [r for r in advocates if "constructed" in r[4].lower()]

    posts = len(slack_standin.posted())
    uploads = len(slack_standin.calls("files.completeUploadExternal"))
    assert posts == len([r for r in raised if r[6] == "sent"])
    assert uploads >= len(segob)  # every advocate alert carries its chart
    updates = len(slack_standin.calls("chat.update"))

    again = run_demo(tmp_path, slack_env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert non_story_lines(again.stdout) == []
    assert alerts(tmp_path / "data") == raised
    assert len(slack_standin.posted()) == posts
    assert len(slack_standin.calls("files.completeUploadExternal")) == uploads
    assert len(slack_standin.calls("chat.update")) == updates


def test_non_story_lines_are_found() -> None:
    """The noise counter itself: a library warning between two day lines is counted."""
    output = "\n".join(
        [
            "Preparing the embedded Airflow in /x …",
            "  Sat 07 Jun 2025  hhs_uc_daily: new file(s)  (1.0 s)",
            "2026-12-06T11:01:16.940098Z [warning  ] No tasks to run. [airflow.sdk.definitions.dag]",
            "returnwatch — summary (demo: 3 DAG runs in 9 s)",
            "anything goes in the summary",
        ]
    )
    assert non_story_lines(output) == [
        "2026-12-06T11:01:16.940098Z [warning  ] No tasks to run. [airflow.sdk.definitions.dag]"
    ]


def test_asset_events_start_the_dags_scheduled_on_them(dags, data_dir: Path) -> None:
    """The demo's scheduler stand-in reads the DAGs' own schedules: a raw table's Asset starts
    transform, the marts Asset starts monitor (asset-or-time), a cron DAG never by an Asset."""
    import datetime as dt

    from returnwatch_replay.demo import DemoReport, SchedulerStandIn, cron_time

    scheduler = SchedulerStandIn(dags, mirror=None, report=DemoReport())
    assert scheduler.triggered_by(frozenset({"raw.hhs_uc_daily"})) == ["transform"]
    assert scheduler.triggered_by(
        frozenset({"raw.segob_bulletin_monthly", "raw.cbp_encounters_monthly"})
    ) == ["transform"]
    assert scheduler.triggered_by(frozenset({"marts"})) == ["monitor"]
    assert scheduler.triggered_by(frozenset()) == []
    day = dt.date(2025, 6, 7)
    assert cron_time(dags["monitor"], day) == dt.datetime(2025, 6, 7, 16, tzinfo=dt.UTC)
    assert cron_time(dags["segob_bulletin_monthly"], day) == dt.datetime(
        2025, 6, 7, 14, 30, tzinfo=dt.UTC
    )
