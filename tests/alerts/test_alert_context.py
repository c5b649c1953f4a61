"""Data alerts on real slices: one series in plain words, the policy in force and what changed,
the very file and table the figure came from, and severity from each figure's policy."""

from __future__ import annotations

import dataclasses
import datetime as dt

import duckdb
import pandas as pd

from returnwatch.alerts import compose
from returnwatch.alerts.messages import incident_message
from returnwatch.monitor import figures
from returnwatch.monitor import rules as rl
from returnwatch.monitor.findings import Finding
from returnwatch_replay import series as real
from returnwatch_replay.example import example

RUN_AT = dt.datetime(2025, 6, 20, tzinfo=dt.UTC)
SEGOB = "segob_bulletin_monthly"


def test_december_2020_alert_says_the_court_order_moved_children_between_titles() -> None:
    """The showcase alert (real CBP figures): Title 8 rose because Title 42 stopped for
    children; the total of Mexican UC encounters fell (Nov 2,033 -> Dec 1,754)."""
    message, _ = example()
    text = message.text
    assert text.startswith(
        "CBP encounters of unaccompanied children from Mexico under "
        "Title 8 (Southwest border) rose to 1,752 in December 2020"
    )
    assert "Court order (P.J.E.S. v. Wolf) barring Title 42 expulsion" in text
    assert "18 November 2020" in text
    assert (
        "Title 8 encounters rose while total encounters (all titles) fell: 2,033 in "
        "November 2020 → 1,754 in December 2020" in text
    )
    assert "https://clearinghouse.net/case/17771/" in text
    assert "events, not people" in text


def test_totals_for_a_title_series_come_from_the_mart() -> None:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    con.register("rows", real.cbp_uc_rows())
    con.execute("CREATE TABLE marts.cbp_uc_encounters_monthly AS SELECT * FROM rows")
    incident = {
        "monitor": "anomaly",
        "series": "cbp_uc_encounters:encounters:MEXICO:Title 8",
        "source": "cbp_encounters_monthly",
    }
    totals = compose._title_totals(con, incident, {"period": "2020-12"})
    assert totals == {"title": "Title 8", "value": 1754.0, "previous": 2033.0}


def test_the_segob_april_2025_alert_names_one_series_links_table_3_1_3_and_is_no_critical():
    """The one advocate alert of the replayed history: minors presented to INM fell in April
    2025. Before: "... (SEGOB) (ALL) fell to 719", critical, linking the section-5 CSV."""
    series = "segob_minors:minors_presented:ALL"
    finding = Finding(
        monitor="anomaly",
        kind="anomaly_drop",
        source=SEGOB,
        series=series,
        severity="critical",
        message="m",
        run_at=RUN_AT,
        period="2025-04",
        value=719.0,
        details={
            "metric": "segob_minors",
            "label": "Minors presented",
            "value": 719.0,
            "band": [1800.0, 3200.0],
            "baseline": 2500.0,
            "direction": "down",
            "baseline_periods": ["2025-01", "2025-03"],
        },
    )
    graded = figures.apply_severity_policy(finding)
    assert graded.severity == "warning"  # a fall in minors presented to INM is not critical
    assert "severity_policy" in graded.details
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    con.execute("""CREATE TABLE raw.files AS SELECT * FROM (VALUES
        ('a', 'segob_bulletin_monthly', 'https://portal/Cuadros2025/cuadro3.1.3_.xls',
         DATE '2025-06-07', 'segob_presented_by_sex_age', TIMESTAMPTZ '2025-06-08 00:00+00'),
        ('b', 'segob_bulletin_monthly', 'https://portal/microdatos/section5_2025.csv',
         DATE '2025-06-07', 'segob_repatriation_events', TIMESTAMPTZ '2025-06-08 01:00+00'))
        t(sha256, source, url, vintage, raw_table, loaded_at)""")
    incident = {"monitor": "anomaly", "series": series, "source": SEGOB}
    vintage, url = compose._figure_file(con, incident, graded.as_dict())
    assert url.endswith("cuadro3.1.3_.xls") and vintage == dt.date(2025, 6, 7)
    # Before, the newest file of the source won, whatever its table.
    assert compose._newest_file(con, SEGOB)[1].endswith("section5_2025.csv")
    message = incident_message(
        "opened",
        incident={**incident, "kind": graded.kind},
        finding=graded.as_dict(),
        vintage=vintage,
        document_url=url,
    )
    header = message.text.split("\n", 1)[0]
    assert header.startswith(
        "Minors presented to Mexico's migration authority, all "
        "nationalities fell to 719 in April 2025"
    )
    assert "ALL" not in header and "(SEGOB)" not in header
    assert "table 3.1.3" in message.text and "cuadro3.1.3_.xls" in message.text
    assert "Southern border" not in message.text
    assert "Proclamation 10888" in message.text  # the regime in force in April 2025


def test_a_rule_alert_carries_its_caveat_grading_and_source_urls() -> None:
    rule = rl.load_rules()["uc_expelled_after_pjes_order"]
    found = rl.evaluate_rule(
        real.cbp_uc_rows(), "uc_expelled_after_pjes_order", rule, run_at=RUN_AT
    )
    jan = next(f for f in found if f.period == "2021-01").as_dict()
    incident = {
        "monitor": "policy_rule",
        "series": "uc_expelled_after_pjes_order",
        "source": "cbp_encounters_monthly",
        "kind": jan["kind"],
    }
    text = incident_message("opened", incident=incident, finding=jan).text
    assert "(legal status contested)" in text.split("\n", 1)[0]
    assert "violation" not in text.lower()
    assert "Before citing:" in text and "recording or reclassification artefacts" in text
    for source in rule.sources:
        assert source.url and source.url in text
    assert "D.C. Circuit stays the P.J.E.S. injunction" in text  # the month's own changes
    feb = dataclasses.replace(next(f for f in found if f.period == "2021-02"))
    text = incident_message(
        "opened", incident={**incident, "kind": feb.kind}, finding=feb.as_dict()
    ).text
    assert "CBP's table shows 5 record(s); confirm with CBP before citing." in text


def test_every_figure_has_a_name_a_table_and_a_severity_policy() -> None:
    from returnwatch.monitor import anomalies as an

    cfg = an.load_config()
    wanted = {
        f"{metric}:{column}" for metric, m in cfg.metrics.items() for column in m.value_columns
    }
    shipped = figures.load_figures()
    assert wanted <= set(shipped)
    for key, figure in shipped.items():
        assert "ALL" not in figure.name and figure.counts and figure.raw_tables, key
        assert figure.severity.why, key
    assert shipped["segob_minors:minors_presented"].severity.down == "warning"
    assert pd.Series([figures.group_words(v) for v in ("ALL", "GTM", "MEXICO")]).tolist() == [
        "all nationalities",
        "Guatemala",
        "Mexico",
    ]
