"""Policy-rule and revision alerts composed and delivered end to end on the Slack stand-in:
real findings (the real CBP history; the real HHS export and a constructed restatement of one
day), through incidents, composition and delivery, with their wording checked."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from returnwatch import ingest, warehouse
from returnwatch.alerts import deliver_pending
from returnwatch.monitor import rules as rl
from returnwatch.monitor import run_monitors
from returnwatch.monitor.incidents import process_findings
from returnwatch_replay import series as real
from tests.monitor.test_revisions import restate


def test_a_policy_rule_alert_reaches_advocates_with_rule_period_rows_and_source(
    con, slack_standin
) -> None:
    # January 2021 in the real CBP history: 18 Title 42 records of unaccompanied children, in a
    # month that holds days under the court order, its stay and CDC's exception. Enough records
    # to alert (min_records), but the month's legal status was contested: never "violation".
    run_at = dt.datetime(2021, 3, 20, 16, tzinfo=dt.UTC)
    rule = rl.load_rules()["uc_expelled_after_pjes_order"]
    found = rl.evaluate_rule(
        real.cbp_uc_rows(), "uc_expelled_after_pjes_order", rule, run_at=run_at
    )
    newest = [f for f in found if f.kind == "rule_contested_period"][-1]
    assert (newest.period, newest.value, newest.severity) == ("2021-01", 18.0, "warning")
    process_findings(con, [newest], run_at=run_at, run_id="monitor/rule", evaluated=[newest.key])
    assert len(deliver_pending(con, now=run_at).sent) == 1
    [post] = slack_standin.calls("chat.postMessage")
    text = post.payload["text"]
    assert post.payload["channel"] == "#returnwatch-alerts"
    assert post.payload["blocks"][0]["text"]["text"] == (
        "Unaccompanied children counted as expelled under Title 42 after the court order of "
        "18 Nov 2020: January 2021 (legal status contested)"
    )
    assert "violation" not in text.lower()
    assert "In January 2021 the figure was 18, above 0." in text
    assert "The legal status of this period was contested" in text
    assert "citizenship MEXICO, component U.S. Border Patrol" in text
    assert "P.J.E.S. v. Wolf, No. 1:20-cv-02245 (EGS)" in text
    assert "86 FR 9942" in text  # the CDC exception the caveat rests on
    assert "Source: CBP Nationwide Encounters (monthly)" in text


def test_a_rule_finding_on_a_few_records_is_a_check_and_pages_nobody(con, slack_standin) -> None:
    # May 2023: one record. Recorded as a check ("confirm with CBP before citing"), never sent.
    run_at = dt.datetime(2023, 6, 20, 16, tzinfo=dt.UTC)
    rule = rl.load_rules()["uc_expelled_after_pjes_order"]
    found = rl.evaluate_rule(
        real.cbp_uc_rows(), "uc_expelled_after_pjes_order", rule, run_at=run_at
    )
    newest = found[-1]
    assert (newest.period, newest.value, newest.severity) == ("2023-05", 1.0, "check")
    assert "confirm with CBP before citing" in newest.message
    process_findings(con, [newest], run_at=run_at, run_id="monitor/rule", evaluated=[newest.key])
    deliver_pending(con, now=run_at)
    assert slack_standin.calls("chat.postMessage") == []


def test_a_revision_alert_names_both_files_the_day_and_old_and_new_figures(
    data_dir: Path, tmp_path: Path, real_hhs_bytes: bytes, slack_standin
) -> None:
    first_at = dt.datetime(2025, 12, 22, 15, tzinfo=dt.UTC)
    later_at = dt.datetime(2026, 1, 5, 15, tzinfo=dt.UTC)

    def ingest_bytes(name: str, content: bytes, vintage: dt.date, run_at: dt.datetime) -> None:
        path = tmp_path / name
        path.write_bytes(content)
        ingest.ingest_file(
            "hhs_uc_daily", path, vintage=vintage, run_at=run_at, run_id=f"test/{name}"
        )

    ingest_bytes("export_2025-12-22.csv", real_hhs_bytes, dt.date(2025, 12, 22), first_at)
    run_monitors(run_at=first_at, run_id="monitor/first", monitors=["revision"])
    # 10 December 2025 in the real file: "December 10, 2025",10,54,5,"2,439",9; the later
    # export restates HHS's 2,439 as 2,600 (a constructed edit: the real copy has none).
    restated = restate(real_hhs_bytes, '"December 10, 2025"', b'"2,439"', b'"2,600"')
    ingest_bytes("export_2026-01-05_constructed.csv", restated, dt.date(2026, 1, 5), later_at)
    report = run_monitors(run_at=later_at, run_id="monitor/later", monitors=["revision"])
    assert [f["kind"] for f in report.findings] == ["revision_restated"]
    with warehouse.session() as con:
        assert len(deliver_pending(con, now=later_at).sent) == 1
    [post] = slack_standin.calls("chat.postMessage")
    text = post.payload["text"]
    assert post.payload["channel"] == "#returnwatch-alerts"
    assert post.payload["blocks"][0]["text"]["text"] == (
        "HHS/DHS daily figures: published figures were changed"
    )
    assert (
        "The publisher changed 1 figure it had already published, between the files of "
        "Monday 22 December 2025 and Monday 5 January 2026."
    ) in text
    assert "Wednesday 10 December 2025: 2,439 → 2,600" in text
    assert "File published 5 January 2026" in text
