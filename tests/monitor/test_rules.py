"""Policy rules on the real CBP history (include/replay/cbp_encounters, IOM's copy of CBP)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from returnwatch import config, settings
from returnwatch.monitor import rules as rl
from returnwatch_replay import series as real

RUN_AT = dt.datetime(2025, 7, 1, 12, tzinfo=dt.UTC)

# Months with Title 42 expulsions of unaccompanied children after November 2020, read off
# the real file (any nationality).
AFTER_ORDER = ["2020-12", "2021-01", "2021-02", "2021-03", "2021-04", "2021-08", "2021-09",
               "2021-11", "2022-05", "2022-06", "2022-07", "2022-08", "2022-09", "2022-12",
               "2023-01", "2023-02", "2023-03", "2023-04", "2023-05"]


@pytest.fixture(scope="module")
def cbp() -> pd.DataFrame:
    return real.cbp_uc_rows()


@pytest.fixture(scope="module")
def shipped() -> dict[str, rl.PolicyRule]:
    return rl.load_rules()


def test_title_42_rule_fires_after_the_court_order_and_never_before(cbp, shipped) -> None:
    found = rl.evaluate_rule(cbp, "uc_expelled_after_pjes_order",
                             shipped["uc_expelled_after_pjes_order"], run_at=RUN_AT)
    violations = [f for f in found if f.kind == "rule_violation"]
    assert [f.period for f in violations] == AFTER_ORDER
    assert all(f.severity == "critical" for f in violations)
    # The month of the order (18 Nov 2020) cannot be split: recorded, never alerted.
    partial = [f for f in found if f.kind == "rule_partial_period"]
    assert [(f.period, f.severity, f.value) for f in partial] == [("2020-11", "info", 1519.0)]
    # Every month before: hundreds of children a month, none of them a finding.
    title_42 = cbp[cbp["title_of_authority"] == "Title 42"]
    before = title_42[title_42["month"] < "2020-11-01"].groupby("month")["encounters"].sum()
    assert len(before) == 8 and before.min() > 400
    assert not [f for f in found if f.period < "2020-11"]


def test_a_finding_cites_rule_source_and_rows(cbp, shipped) -> None:
    found = rl.evaluate_rule(cbp, "uc_expelled_after_pjes_order",
                             shipped["uc_expelled_after_pjes_order"], run_at=RUN_AT)
    feb = next(f for f in found if f.period == "2021-02")
    assert feb.value == 5 and feb.details["row_count"] == feb.details["rows"].__len__()
    assert sum(r["encounters"] for r in feb.details["rows"]) == 5
    assert {r["citizenship"] for r in feb.details["rows"]} == {"MEXICO", "GUATEMALA",
                                                               "HONDURAS"}
    assert feb.details["rows"][0]["encounter_type"] == "Expulsions"
    citations = [s["citation"] for s in feb.details["sources"]]
    assert citations[0].startswith("P.J.E.S. v. Wolf") and "86 Fed. Reg. 9942" in citations[1]
    assert feb.details["applies"] == {"from": "2020-11-18", "until": "2023-05-11"}
    assert feb.details["condition"] == "sum(encounters) > 0"
    assert "P.J.E.S. v. Wolf" in feb.message and feb.series == "uc_expelled_after_pjes_order"
    assert feb.monitor == rl.MONITOR and feb.opens_incident


def test_non_mexican_children_expelled(cbp, shipped) -> None:
    rule = shipped["non_contiguous_uc_expelled"]
    found = rl.evaluate_rule(cbp, "non_contiguous_uc_expelled", rule, run_at=RUN_AT)
    months = [f.period for f in found]
    # Every month of Title 42 in 2020 (hundreds of Central American children), then a few.
    assert months[:9] == ["2020-03", "2020-04", "2020-05", "2020-06", "2020-07", "2020-08",
                          "2020-09", "2020-10", "2020-11"]
    assert "2020-12" not in months and "2021-01" not in months  # only Mexican children then
    assert all(r["citizenship"] not in ("MEXICO", "CANADA")
               for f in found for r in f.details["rows"])
    assert next(f for f in found if f.period == "2020-10").value > 500
    # An empty citizenship is not evidence of a non-Mexican child.
    unnamed = cbp[cbp["title_of_authority"] == "Title 42"].head(3).assign(citizenship=None)
    assert rl.evaluate_rule(unnamed, "non_contiguous_uc_expelled", rule, run_at=RUN_AT) == []


def test_return_rate_rule_uses_the_set_level(shipped) -> None:
    # CONSTRUCTED rates (no public copy of SEGOB section 5 exists): only 0.95 is above 0.90.
    frame = pd.DataFrame({"month": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
                          "return_rate": [0.50, 0.95, 0.90]})
    found = rl.evaluate_rule(frame, "mexican_uc_return_rate_high",
                             shipped["mexican_uc_return_rate_high"], run_at=RUN_AT)
    assert [(f.period, f.value, f.severity) for f in found] == [("2024-02", 0.95, "warning")]


def test_since_keeps_recent_periods(cbp, shipped) -> None:
    found = rl.evaluate_rule(cbp, "uc_expelled_after_pjes_order",
                             shipped["uc_expelled_after_pjes_order"], run_at=RUN_AT,
                             since="2023-01-01")
    assert [f.period for f in found] == AFTER_ORDER[-5:]


def test_a_missing_column_names_the_rule(shipped) -> None:
    with pytest.raises(KeyError, match="uc_expelled_after_pjes_order"):
        rl.evaluate_rule(pd.DataFrame({"month": []}), "uc_expelled_after_pjes_order",
                         shipped["uc_expelled_after_pjes_order"], run_at=RUN_AT)


def test_duckdb_adapter_gives_the_same_findings(cbp, shipped) -> None:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    con.register("cbp_df", cbp)
    con.execute("CREATE TABLE marts.cbp_uc_encounters_monthly AS SELECT * FROM cbp_df")
    wanted = {k: v for k, v in shipped.items() if v.table == "marts.cbp_uc_encounters_monthly"}
    from_db = rl.evaluate_rules(con, run_at=RUN_AT, rules=wanted)
    from_frame = [f for name, rule in wanted.items()
                  for f in rl.evaluate_rule(cbp, name, rule, run_at=RUN_AT)]
    assert [f.as_dict() for f in from_db] == [f.as_dict() for f in from_frame]


def test_latest_vintage_on_a_raw_table(shipped) -> None:
    # Two real vintages of one row (real-data/PROVENANCE.md, file
    # usbp_uc_fy21_oct_jan_mar2021_deltas_constructed.csv): Rio Grande Valley, Mexican UC,
    # Title 42, October 2020: 613 in the March 2021 file, 616 in the June 2025 file.
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    con.execute("""CREATE TABLE raw.cbp_uc AS SELECT * FROM (VALUES
        (DATE '2020-10-01', 'MEXICO', 'Title 42', 'Expulsions', 'U.S. Border Patrol',
         'Southwest Land Border', 'Rio Grande Valley Sector', 613, DATE '2021-03-03'),
        (DATE '2020-10-01', 'MEXICO', 'Title 42', 'Expulsions', 'U.S. Border Patrol',
         'Southwest Land Border', 'Rio Grande Valley Sector', 616, DATE '2025-06-19'))
        t(month, citizenship, title_of_authority, encounter_type, component,
          land_border_region, area_of_responsibility, encounters, vintage)""")
    rule = shipped["uc_expelled_after_pjes_order"].model_copy(update={
        "table": "raw.cbp_uc",
        "applies": rl.Applies.model_validate({"from": "2020-10-01"}),
        "latest_vintage": rl.LatestVintage(key_columns=[
            "month", "citizenship", "title_of_authority", "encounter_type", "component",
            "area_of_responsibility"])})
    found = rl.evaluate_rules(con, run_at=RUN_AT, rules={"t42": rule})
    assert [(f.period, f.value) for f in found] == [("2020-10", 616.0)]


def test_shipped_rules_parse_and_cite_sources(shipped) -> None:
    assert set(shipped) == {"uc_expelled_after_pjes_order", "non_contiguous_uc_expelled",
                            "mexican_uc_return_rate_high"}
    assert all(rule.sources for rule in shipped.values())
    assert shipped["uc_expelled_after_pjes_order"].applies.from_ == dt.date(2020, 11, 18)


@pytest.mark.parametrize("change, complaint", [
    ("    sources:\n      - citation: \"P.J.E.S. v. Wolf, No. 1:20-cv-02245 (D.D.C.), order of 18",
     "sources"),
    ("    source: cbp_encounters_monthly\n    table: marts.cbp_uc_encounters_monthly\n", "table"),
    ("      title_of_authority: {in: [Title 42]}\n", "title_of_authority"),
])
def test_a_bad_rule_fails_loudly(tmp_path: Path, change: str, complaint: str) -> None:
    text = (settings.config_dir() / "monitors.yaml").read_text()
    assert change in text
    if complaint == "sources":
        broken = text.replace(change, "    sources: []\n    x_citation: \"P.J.E.S. v. Wolf, "
                                      "No. 1:20-cv-02245 (D.D.C.), order of 18", 1)
    elif complaint == "table":
        broken = text.replace(change, "    source: cbp_encounters_monthly\n    table: cbp uc\n", 1)
    else:
        broken = text.replace(change, "      title_of_authority: {in: [Title 42], "
                                      "not_in: [Title 8]}\n", 1)
    (tmp_path / "monitors.yaml").write_text(broken)
    rl._load.cache_clear()
    with pytest.raises(config.ConfigError, match="monitors.yaml"):
        rl.load_rules(tmp_path)
