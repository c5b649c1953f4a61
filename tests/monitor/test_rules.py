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
AFTER_ORDER = [
    "2020-12",
    "2021-01",
    "2021-02",
    "2021-03",
    "2021-04",
    "2021-08",
    "2021-09",
    "2021-11",
    "2022-05",
    "2022-06",
    "2022-07",
    "2022-08",
    "2022-09",
    "2022-12",
    "2023-01",
    "2023-02",
    "2023-03",
    "2023-04",
    "2023-05",
]


@pytest.fixture(scope="module")
def cbp() -> pd.DataFrame:
    return real.cbp_uc_rows()


@pytest.fixture(scope="module")
def shipped() -> dict[str, rl.PolicyRule]:
    return rl.load_rules()


def test_title_42_rule_fires_after_the_court_order_and_never_before(cbp, shipped) -> None:
    found = rl.evaluate_rule(
        cbp, "uc_expelled_after_pjes_order", shipped["uc_expelled_after_pjes_order"], run_at=RUN_AT
    )
    assert [f.period for f in found if f.kind != "rule_partial_period"] == AFTER_ORDER
    # Graded by evidence: January 2021 (18 records) falls between the injunction, its stay and
    # CDC's exception: contested, a warning, never "violation". Every other month holds 1-5
    # records: `check`, to confirm with CBP before citing. No critical finding on this history.
    graded = {f.period: (f.kind, f.severity) for f in found}
    assert graded["2021-01"] == ("rule_contested_period", "warning")
    assert {graded[p] for p in AFTER_ORDER if p != "2021-01"} == {("rule_check", "check")}
    assert not any(f.severity == "critical" for f in found)
    # The month of the order (18 Nov 2020) cannot be split: recorded, never alerted.
    partial = [f for f in found if f.kind == "rule_partial_period"]
    assert [(f.period, f.severity, f.value) for f in partial] == [("2020-11", "info", 1519.0)]
    # Every month before: hundreds of children a month, none of them a finding.
    title_42 = cbp[cbp["title_of_authority"] == "Title 42"]
    before = title_42[title_42["month"] < "2020-11-01"].groupby("month")["encounters"].sum()
    assert len(before) == 8 and before.min() > 400
    assert not [f for f in found if f.period < "2020-11"]


def test_a_finding_on_a_few_records_says_confirm_with_cbp(cbp, shipped) -> None:
    found = rl.evaluate_rule(
        cbp, "uc_expelled_after_pjes_order", shipped["uc_expelled_after_pjes_order"], run_at=RUN_AT
    )
    dec = next(f for f in found if f.period == "2020-12")
    assert (dec.value, dec.severity, dec.details["records"]) == (2.0, "check", 2)
    assert "CBP's table shows 2 record(s); confirm with CBP before citing" in dec.message
    assert "violation" not in dec.message and not dec.opens_incident
    jan = next(f for f in found if f.period == "2021-01")
    assert "legal status of this period was contested" in jan.message
    assert "violation" not in jan.message
    assert jan.details["contested"]["from"] == "2021-01-01" and jan.opens_incident
    # The threshold is configurable: with min_records 1 December would be a violation.
    strict = shipped["uc_expelled_after_pjes_order"].model_copy(update={"min_records": 1})
    again = rl.evaluate_rule(cbp, "uc_expelled_after_pjes_order", strict, run_at=RUN_AT)
    assert next(f for f in again if f.period == "2020-12").severity == "critical"


def test_a_finding_cites_rule_source_and_rows(cbp, shipped) -> None:
    found = rl.evaluate_rule(
        cbp, "uc_expelled_after_pjes_order", shipped["uc_expelled_after_pjes_order"], run_at=RUN_AT
    )
    feb = next(f for f in found if f.period == "2021-02")
    assert feb.value == 5 and feb.details["row_count"] == feb.details["rows"].__len__()
    assert sum(r["encounters"] for r in feb.details["rows"]) == 5
    assert {r["citizenship"] for r in feb.details["rows"]} == {"MEXICO", "GUATEMALA", "HONDURAS"}
    assert feb.details["rows"][0]["encounter_type"] == "Expulsions"
    citations = [s["citation"] for s in feb.details["sources"]]
    assert citations[0].startswith("P.J.E.S. v. Wolf") and "86 FR 9942" in citations[2]
    assert any("86 FR 38717" in c for c in citations) and any("87 FR 15243" in c for c in citations)
    assert all(s["url"].startswith("https://") for s in feb.details["sources"])
    assert "recording or reclassification artefacts" in feb.details["caveat"]
    assert feb.details["applies"] == {"from": "2020-11-18", "until": "2023-05-11"}
    assert feb.details["condition"] == "sum(encounters) > 0"
    assert feb.series == "uc_expelled_after_pjes_order" and feb.monitor == rl.MONITOR


def test_non_mexican_children_expelled(cbp, shipped) -> None:
    rule = shipped["non_contiguous_uc_expelled"]
    found = rl.evaluate_rule(cbp, "non_contiguous_uc_expelled", rule, run_at=RUN_AT)
    months = [f.period for f in found]
    # Every month of Title 42 in 2020 (hundreds of Central American children), then a few.
    assert months[:9] == [
        "2020-03",
        "2020-04",
        "2020-05",
        "2020-06",
        "2020-07",
        "2020-08",
        "2020-09",
        "2020-10",
        "2020-11",
    ]
    # March - November 2020: no court had ruled; contested, never "violation".
    assert {(f.kind, f.severity) for f in found[:9]} == {("rule_contested_period", "warning")}
    assert all("was contested" in f.message and "violation" not in f.message for f in found[:9])
    # Afterwards: 1-2 records a month, to confirm with CBP.
    assert {(f.kind, f.severity) for f in found[9:]} == {("rule_check", "check")}
    assert len(found) == 19
    assert "2020-12" not in months and "2021-01" not in months  # only Mexican children then
    assert all(
        r["citizenship"] not in ("MEXICO", "CANADA") for f in found for r in f.details["rows"]
    )
    assert next(f for f in found if f.period == "2020-10").value > 500
    # The TVPRA provision for children of non-contiguous countries is 1232(a)(3).
    assert "1232(a)(3)" in rule.sources[0].citation and "(a)(2)" not in rule.sources[0].citation
    # An empty citizenship is not evidence of a non-Mexican child.
    unnamed = cbp[cbp["title_of_authority"] == "Title 42"].head(3).assign(citizenship=None)
    assert rl.evaluate_rule(unnamed, "non_contiguous_uc_expelled", rule, run_at=RUN_AT) == []


def _rates(months: list[str], rates: list[float], encounters: int = 2000) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "month": pd.to_datetime(months),
            "min_return_rate": rates,
            "cbp_mexican_uc_encounters": encounters,
            "segob_unaccompanied_minor_repatriations": [round(r * encounters) for r in rates],
        }
    )


def test_minimum_return_rate_rule_level_from_published_aggregates(shipped) -> None:
    rule = shipped["mexican_uc_min_return_rate"]
    assert rule.condition.at_least == 0.65  # UPM Jan-Mar 2023: 5,293 / 8,094
    assert round(5293 / 8094, 2) == 0.65 and round(8632 / 12514, 2) == 0.69
    assert "recalibrate on the first year of real data" in rule.caveat
    # Amnesty's window (Nov 2020 - Apr 2021) at its published 0.69 fires on the level; the old
    # rule (> 0.90 on a "share returned") stayed silent there.
    found = rl.evaluate_rule(
        _rates(["2021-01-01"], [8632 / 12514]), "mexican_uc_min_return_rate", rule, run_at=RUN_AT
    )
    assert [(f.period, f.kind, f.severity) for f in found] == [
        ("2021-01", "rule_violation", "warning")
    ]
    assert found[0].details["level_broken"] and found[0].details["history"] is None


def test_minimum_return_rate_rule_judges_the_rate_against_its_own_history(shipped) -> None:
    # The loaded series (mart min_return_rate, Jan 2024 - Apr 2025; its SEGOB side is the
    # CONSTRUCTED section 5, so these months say which months fire, not what happened).
    months = pd.date_range("2024-01-01", "2025-04-01", freq="MS").strftime("%Y-%m-%d")
    rates = [
        0.494,
        0.391,
        0.375,
        0.394,
        0.398,
        0.539,
        0.541,
        0.403,
        0.469,
        0.523,
        0.649,
        0.689,
        0.528,
        1.335,
        1.164,
        0.974,
    ]
    found = rl.evaluate_rule(
        _rates(list(months), rates),
        "mexican_uc_min_return_rate",
        shipped["mexican_uc_min_return_rate"],
        run_at=RUN_AT,
    )
    fired = {f.period: (f.details["level_broken"], f.details["history"] is not None) for f in found}
    assert fired == {
        "2024-07": (False, True),  # 0.54: +0.14 on the median of its first 6 months
        "2024-10": (False, True),  # 0.52 vs median 0.40
        "2024-11": (False, True),  # 0.649: just under the level, well above its history
        "2024-12": (True, True),
        "2025-02": (True, True),
        "2025-03": (True, True),
        "2025-04": (True, True),
    }
    # June 2024 (0.539) is judged only from July: fewer than 6 past months before it.
    assert "2024-06" not in fired
    # A month resting on fewer than 10 CBP encounters is a check, not a warning.
    thin = rl.evaluate_rule(
        _rates(["2025-02-01"], [1.335], encounters=6),
        "mexican_uc_min_return_rate",
        shipped["mexican_uc_min_return_rate"],
        run_at=RUN_AT,
    )
    assert [(f.kind, f.severity) for f in thin] == [("rule_check", "check")]
    assert "CBP's table shows 6 record(s)" in thin[0].message


def test_since_keeps_recent_periods(cbp, shipped) -> None:
    found = rl.evaluate_rule(
        cbp,
        "uc_expelled_after_pjes_order",
        shipped["uc_expelled_after_pjes_order"],
        run_at=RUN_AT,
        since="2023-01-01",
    )
    assert [f.period for f in found] == AFTER_ORDER[-5:]


def test_a_missing_column_names_the_rule(shipped) -> None:
    with pytest.raises(KeyError, match="uc_expelled_after_pjes_order"):
        rl.evaluate_rule(
            pd.DataFrame({"month": []}),
            "uc_expelled_after_pjes_order",
            shipped["uc_expelled_after_pjes_order"],
            run_at=RUN_AT,
        )


def test_duckdb_adapter_gives_the_same_findings(cbp, shipped) -> None:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    con.register("cbp_df", cbp)
    con.execute("CREATE TABLE marts.cbp_uc_encounters_monthly AS SELECT * FROM cbp_df")
    wanted = {k: v for k, v in shipped.items() if v.table == "marts.cbp_uc_encounters_monthly"}
    from_db = rl.evaluate_rules(con, run_at=RUN_AT, rules=wanted)
    from_frame = [
        f for name, rule in wanted.items() for f in rl.evaluate_rule(cbp, name, rule, run_at=RUN_AT)
    ]
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
    rule = shipped["uc_expelled_after_pjes_order"].model_copy(
        update={
            "table": "raw.cbp_uc",
            "applies": rl.Applies.model_validate({"from": "2020-10-01"}),
            "latest_vintage": rl.LatestVintage(
                key_columns=[
                    "month",
                    "citizenship",
                    "title_of_authority",
                    "encounter_type",
                    "component",
                    "area_of_responsibility",
                ]
            ),
        }
    )
    found = rl.evaluate_rules(con, run_at=RUN_AT, rules={"t42": rule})
    assert [(f.period, f.value) for f in found] == [("2020-10", 616.0)]


def test_shipped_rules_parse_and_cite_sources(shipped) -> None:
    assert set(shipped) == {
        "uc_expelled_after_pjes_order",
        "non_contiguous_uc_expelled",
        "mexican_uc_min_return_rate",
    }
    for name, rule in shipped.items():
        # Every rule has a caveat and at least one source with a URL; a source without one
        # says so in its note.
        assert rule.caveat.strip(), name
        assert any(s.url and s.url.startswith("https://") for s in rule.sources), name
        assert all(s.url or (s.note and "URL" in s.note) for s in rule.sources), name
        assert rule.min_records == 10, name
    assert shipped["uc_expelled_after_pjes_order"].applies.from_ == dt.date(2020, 11, 18)


@pytest.mark.parametrize(
    "change, complaint",
    [
        (
            '    sources:\n      - citation: "P.J.E.S. v. Wolf, No. 1:20-cv-02245 (EGS) (D.D.C. 18 Nov',
            "sources",
        ),
        (
            "    source: cbp_encounters_monthly\n    table: marts.cbp_uc_encounters_monthly\n",
            "table",
        ),
        ("      title_of_authority: {in: [Title 42]}\n", "title_of_authority"),
    ],
)
def test_a_bad_rule_fails_loudly(tmp_path: Path, change: str, complaint: str) -> None:
    text = (settings.config_dir() / "monitors.yaml").read_text()
    assert change in text
    if complaint == "sources":
        broken = text.replace(
            change,
            '    sources: []\n    x_citation: "P.J.E.S. v. Wolf, '
            "No. 1:20-cv-02245 (EGS) (D.D.C. 18 Nov",
            1,
        )
    elif complaint == "table":
        broken = text.replace(change, "    source: cbp_encounters_monthly\n    table: cbp uc\n", 1)
    else:
        broken = text.replace(
            change, "      title_of_authority: {in: [Title 42], not_in: [Title 8]}\n", 1
        )
    (tmp_path / "monitors.yaml").write_text(broken)
    with pytest.raises(config.ConfigError, match="monitors.yaml"):
        rl.load_rules(tmp_path)
