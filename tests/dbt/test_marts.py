"""The marts on the replay mirror's real files: figures checked against the files by hand.

One warehouse for the module (``tests/dbt/realdata.py``): the demo's history — CBP's files of
2 March 2021, 15 October 2024 and 16 June 2025; SEGOB's workbooks as of 20 March 2021 and 17
June 2025; HHS's monthly pages as of 20 March 2021; the real healthdata.gov copy. Then one
``dbt build`` and one ``dbt docs generate`` (which also compiles the analyses).

Figures below were computed from the real files with nothing but the csv module (the
computation is in each test, next to the figure), never read back from the warehouse:
``include/replay/cbp_encounters/iom_gdidata_irreg_usa.csv`` (IOM's copy of CBP's files, June
2025), ``include/replay/segob_upm/iom_gdidata_irreg_mexico_{exp,dmg}.csv``,
``include/replay/hhs_gov/wapo_fy2018_fy2021.csv``, ``include/replay/hhs_uc/...mihirg42.csv``
and the constructed ``include/replay/segob_upm/section5_minors_constructed.csv``.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from returnwatch import settings

D = dt.date
REPLAY = settings.replay_data_dir()
MARTS = [
    "cbp_uc_encounters_monthly",
    "mexico_uc_return_rate_monthly",
    "cbp_segob_discrepancy_monthly",
    "inm_minor_returns_monthly",
    "hhs_uc_daily",
    "hhs_vs_cbp_monthly",
    "mart_source_files",
]
MARCH_2021_CBP = D(2021, 3, 2)
OCTOBER_2024_CBP = D(2024, 10, 15)
JUNE_2025_CBP = D(2025, 6, 16)


# ---------------------------------------------------------------------- the real files, by hand


def _month(text: str) -> dt.date:
    year, month = text.split("-")[:2]
    return D(int(year), int(month), 1)


def iom_cbp_uc() -> dict[tuple, int]:
    """(month, component, title, nat) -> UC encounters, IOM's copy (June-2025 figures)."""
    out: dict[tuple, int] = defaultdict(int)
    with (REPLAY / "cbp_encounters" / "iom_gdidata_irreg_usa.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["demog"] in ("UC / Single Minors", "UAC"):
                key = (_month(row["t"]), row["component"], row["authority"], row["nat"])
                out[key] += int(float(row["n"]))
    return out


def cbp_sum(
    figures: dict[tuple, int],
    *,
    month=None,
    fiscal_year=None,
    component=None,
    title=None,
    mexican=None,
) -> int:
    total = 0
    for (m, comp, auth, nat), n in figures.items():
        fy = m.year + (m.month >= 10)
        if (
            (month is None or m == month)
            and (fiscal_year is None or fy == fiscal_year)
            and (component is None or comp == component)
            and (title is None or auth == title)
            and (mexican is None or (nat == "MEX") == mexican)
        ):
            total += n
    return total


def segob_series(name: str) -> list[dict[str, str]]:
    with (REPLAY / "segob_upm" / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# ------------------------------------------------------------------------------- the warehouse


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    """(BuildResult, data dir, docs target dir) after loading, one build and docs generate."""
    from dbt.cli.main import dbtRunner

    from returnwatch import transform, warehouse
    from tests.dbt import realdata

    data = tmp_path_factory.mktemp("marts") / "data"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETURNWATCH_DATA_DIR", str(data))
        with warehouse.session() as con:
            realdata.load_history(con)
        result = transform.dbt_build(unit_tests=True)  # the suite's one run of the unit tests
        docs = data / "dbt" / "docs"
        project = settings.dbt_project_dir()
        for key, value in transform.dbt_env().items():
            mp.setenv(key, value)
        generated = dbtRunner().invoke(
            [
                "docs",
                "generate",
                "--project-dir",
                str(project),
                "--profiles-dir",
                str(project),
                "--target-path",
                str(docs),
                "--log-path",
                str(data / "dbt" / "logs"),
            ]
        )
        assert generated.success, generated.exception
        yield result, data, docs


def query(data: Path, sql: str, params: list | None = None) -> list[dict]:
    import duckdb

    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        cursor = con.execute(sql, params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def one(data: Path, sql: str, params: list | None = None) -> dict:
    rows = query(data, sql, params)
    assert len(rows) == 1, rows
    return rows[0]


# ------------------------------------------------------------------------------------ the build


def test_build_passes_with_warnings_only_where_the_real_data_earns_them(built):
    result, _, _ = built
    assert result.success, result.messages
    assert result.failed == []
    assert result.warned == [], {n: result.messages.get(n) for n in result.warned}
    models = {n for n in result.statuses if n.startswith("model.")}
    assert {f"model.returnwatch.{m}" for m in MARTS} <= models
    assert {result.statuses[n] for n in models} == {"success"}


# The models' dbt `unit_tests:` (constructed rows in the models' YAML): the newest-file-wins
# macro and the cross-source rates. A build of the live warehouse leaves them out.
UNIT_TESTS = {
    "stg_cbp__encounters_aor_newest_file_wins_each_month",
    "stg_cbp__encounters_aor_same_vintage_tie_goes_to_greater_sha256",
    "stg_segob__repatriation_events_newest_file_wins_the_whole_year",
    "mexico_uc_return_rate_monthly_rate_nulls_and_labels",
    "cbp_segob_discrepancy_monthly_difference_nulls_and_labels",
    "hhs_vs_cbp_monthly_ratios_nulls_and_label",
}


def test_the_unit_tests_of_the_sql_ran_in_the_build_and_passed(built):
    result, _, _ = built
    ran = {n: s for n, s in result.statuses.items() if n.startswith("unit_test.")}
    assert {n.rsplit(".", 1)[-1] for n in ran} >= UNIT_TESTS
    assert set(ran.values()) == {"pass"}, {n: result.messages.get(n) for n in ran}


def test_marts_are_tables_and_the_layers_have_their_schemas(built):
    _, data, _ = built
    relations = query(
        data,
        "SELECT table_schema, table_name, table_type "
        "FROM information_schema.tables WHERE table_schema NOT IN "
        "('raw', 'monitor')",
    )
    kinds = defaultdict(set)
    for row in relations:
        kinds[row["table_schema"]].add(row["table_type"])
    assert kinds == {
        "staging": {"VIEW"},
        "intermediate": {"VIEW"},
        "marts": {"BASE TABLE"},
        "reference": {"BASE TABLE"},
    }
    assert {r["table_name"] for r in relations if r["table_schema"] == "marts"} == set(MARTS)


def test_every_model_and_column_is_documented_and_every_test_has_a_severity(built):
    result, data, _ = built
    manifest = json.loads((result.target_dir / "manifest.json").read_text())
    nodes = [
        n
        for n in manifest["nodes"].values()
        if n["resource_type"] in ("model", "seed") and n["package_name"] == "returnwatch"
    ]
    assert len(nodes) >= 30
    for node in nodes:
        assert node["description"].strip(), node["unique_id"]
        documented = {name for name, col in node["columns"].items() if col["description"].strip()}
        actual = {
            row["column_name"]
            for row in query(
                data,
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ?",
                [node["schema"], node["alias"]],
            )
        }
        assert actual and documented == actual, (node["unique_id"], actual ^ documented)
    severities = defaultdict(int)
    for node in manifest["nodes"].values():
        if node["resource_type"] == "test":
            severities[node["config"]["severity"].lower()] += 1
    assert set(severities) == {"error", "warn"} and severities["error"] > severities["warn"]


def test_docs_site_is_generated_with_the_marts_in_the_catalog(built):
    _, _, docs = built
    assert (docs / "index.html").is_file()
    catalog = json.loads((docs / "catalog.json").read_text())
    in_catalog = {
        n["metadata"]["name"]
        for n in catalog["nodes"].values()
        if n["metadata"]["schema"] == "marts"
    }
    assert set(MARTS) <= in_catalog


# ----------------------------------------------------------------------------------------- CBP


def test_cbp_fiscal_year_2020_usbp_mexican_uc_by_title(built):
    """Amnesty's FY2020 figures: IOM's copy reproduces them (real-data/PROVENANCE.md)."""
    _, data, _ = built
    iom = iom_cbp_uc()
    by_title = {
        row["title_of_authority"]: row["n"]
        for row in query(
            data,
            "SELECT title_of_authority, sum(encounters) AS n FROM marts.cbp_uc_encounters_monthly "
            "WHERE fiscal_year = 2020 AND is_mexican AND component = 'U.S. Border Patrol' "
            "GROUP BY 1",
        )
    }
    assert by_title == {"Title 8": 6299, "Title 42": 8060}
    assert by_title == {
        t: cbp_sum(iom, fiscal_year=2020, component="U.S. Border Patrol", title=t, mexican=True)
        for t in ("Title 8", "Title 42")
    }


def test_cbp_months_take_the_newest_vintage_and_keep_the_first(built):
    """Oct 2020 - Jan 2021 are in the March-2021 file (the Post's figures) and the newer files."""
    _, data, _ = built
    iom = iom_cbp_uc()
    rows = {
        r["month"]: r
        for r in query(
            data,
            "SELECT month, sum(encounters) AS usbp, min(vintage) AS v, max(vintage) AS v2, "
            "min(first_published_vintage) AS first, max(vintages_with_month) AS n "
            "FROM marts.cbp_uc_encounters_monthly WHERE component = 'U.S. Border Patrol' "
            "GROUP BY month",
        )
    }
    # USBP Southwest-border UC, all nationalities: Jan 2021 5,688 (June-2025 figures); the
    # March-2021 file said 5,707 (the Washington Post's scrape).
    jan = rows[D(2021, 1, 1)]
    assert jan["usbp"] == 5688 == cbp_sum(iom, month=D(2021, 1, 1), component="U.S. Border Patrol")
    assert (jan["v"], jan["v2"], jan["first"], jan["n"]) == (
        OCTOBER_2024_CBP,
        OCTOBER_2024_CBP,
        MARCH_2021_CBP,
        2,
    )
    old = one(
        data,
        "SELECT sum(encounters) AS n FROM raw.cbp_encounters_aor WHERE vintage = ? "
        "AND month = DATE '2021-01-01' AND component = 'U.S. Border Patrol' "
        "AND demographic = 'UC / Single Minors'",
        [MARCH_2021_CBP],
    )
    assert old["n"] == 5707
    for month, expected in {
        D(2020, 10, 1): 4687,
        D(2020, 11, 1): 4475,
        D(2020, 12, 1): 4852,
    }.items():
        assert rows[month]["usbp"] == expected
    # FY2020 months are only in the March-2021 file; FY2022+ months come from June 2025's.
    assert (rows[D(2020, 9, 1)]["v"], rows[D(2020, 9, 1)]["n"]) == (MARCH_2021_CBP, 1)
    assert rows[D(2024, 1, 1)]["v"] == JUNE_2025_CBP
    assert max(rows) == D(2025, 5, 1)


def test_cbp_rows_trace_to_their_file_line_and_label(built):
    _, data, _ = built
    for row in query(data, "SELECT * FROM marts.cbp_uc_encounters_monthly USING SAMPLE 25 ROWS"):
        raw = one(
            data,
            "SELECT * FROM raw.cbp_encounters_aor WHERE source_file = ? AND source_row = ?",
            [row["source_file"], row["source_row"]],
        )
        assert (
            raw["month"],
            raw["citizenship"],
            raw["title_of_authority"],
            raw["encounters"],
            raw["vintage"],
            raw["demographic_published"],
        ) == (
            row["month"],
            row["citizenship"],
            row["title_of_authority"],
            row["encounters"],
            row["vintage"],
            row["demographic_published"],
        )
    labels = {
        r["demographic_published"]: r["v"]
        for r in query(
            data,
            "SELECT demographic_published, max(vintage) AS v FROM marts.cbp_uc_encounters_monthly "
            "GROUP BY 1",
        )
    }
    assert labels == {"UC / Single Minors": OCTOBER_2024_CBP, "UAC": JUNE_2025_CBP}
    assert (
        one(
            data,
            "SELECT count(*) AS n FROM marts.cbp_uc_encounters_monthly "
            "WHERE nationality_iso3 IS NULL AND citizenship <> 'OTHER'",
        )["n"]
        == 0
    )
    china = one(
        data,
        "SELECT DISTINCT nationality_iso3, nationality_name_en FROM "
        "marts.cbp_uc_encounters_monthly WHERE citizenship = "
        "'CHINA, PEOPLES REPUBLIC OF'",
    )
    assert china == {"nationality_iso3": "CHN", "nationality_name_en": "China"}


# ---------------------------------------------------------------------------- CBP vs SEGOB


def test_mexico_return_rate_cbp_side_by_title_and_missing_segob_side(built):
    _, data, _ = built
    iom = iom_cbp_uc()
    rows = {r["month"]: r for r in query(data, "SELECT * FROM marts.mexico_uc_return_rate_monthly")}
    # Nov 2020 - Apr 2021 (Amnesty's window): CBP is there, SEGOB's section 5 is not.
    for month in [
        D(2020, 11, 1),
        D(2020, 12, 1),
        D(2021, 1, 1),
        D(2021, 2, 1),
        D(2021, 3, 1),
        D(2021, 4, 1),
    ]:
        row = rows[month]
        assert row["cbp_mexican_uc_encounters"] == cbp_sum(iom, month=month, mexican=True)
        assert row["cbp_mexican_uc_title_42"] == cbp_sum(
            iom, month=month, mexican=True, title="Title 42"
        )
        assert row["cbp_mexican_uc_usbp_apprehensions_title_8"] == cbp_sum(
            iom, month=month, mexican=True, title="Title 8", component="U.S. Border Patrol"
        )
        assert row["segob_unaccompanied_minor_repatriations"] is None
        assert row["min_return_rate"] is None and row["segob_figures_constructed"] is None
        assert row["min_return_rate_title_8"] is None
        assert "SEGOB has not published this month" in row["notes"]
    nov = rows[D(2020, 11, 1)]
    assert (
        nov["cbp_mexican_uc_encounters"],
        nov["cbp_mexican_uc_usbp_apprehensions_title_8"],
        nov["cbp_mexican_uc_usbp_expulsions_title_42"],
    ) == (2033, 836, 1100)
    assert nov["title_42_in_force"] and "Title 42 in force on 30 day(s)" in nov["notes"]
    assert nov["cbp_land_border_regions"] == ["Southwest Land Border"]
    # May 2025: CBP published, SEGOB's bulletin (through April) not yet.
    assert rows[D(2025, 5, 1)]["cbp_mexican_uc_encounters"] == 665
    assert rows[D(2025, 5, 1)]["segob_unaccompanied_minor_repatriations"] is None


def test_mexico_return_rate_with_the_constructed_segob_side_says_so(built):
    _, data, _ = built
    constructed: dict[dt.date, int] = defaultdict(int)
    for row in segob_series("section5_minors_constructed.csv"):
        if row["travel_condition"] == "unaccompanied":
            constructed[D(int(row["year"]), int(row["month"]), 1)] += int(row["events"])
    rows = {
        r["month"]: r
        for r in query(
            data,
            "SELECT * FROM marts.mexico_uc_return_rate_monthly "
            "WHERE segob_unaccompanied_minor_repatriations IS NOT NULL",
        )
    }
    assert set(rows) == set(constructed)  # Jan 2024 - Apr 2025
    jan = rows[D(2024, 1, 1)]
    assert jan["segob_unaccompanied_minor_repatriations"] == 1314 == constructed[D(2024, 1, 1)]
    assert jan["cbp_mexican_uc_encounters"] == 2659
    assert jan["min_return_rate"] == pytest.approx(1314 / 2659)
    # No Title 42 in 2024: the Title-8-only variant is the same figure.
    assert jan["min_return_rate_title_8"] == pytest.approx(1314 / 2659)
    assert "minimum return rate" in jan["rate_definition"]
    assert "all titles (8 and 42)" in jan["rate_definition"]
    for row in rows.values():
        assert row["segob_figures_constructed"] is True
        assert "CONSTRUCTED" in row["notes"]
        assert row["min_return_rate_above_one"] == (row["min_return_rate"] > 1)
    assert jan["segob_vintage"] == D(2025, 2, 7)  # the 2024 workbook through December


def test_discrepancy_definitions_difference_and_vintages(built):
    _, data, _ = built
    rows = {
        (r["month"], r["comparison"]): r
        for r in query(data, "SELECT * FROM marts.cbp_segob_discrepancy_monthly")
    }
    jan = rows[(D(2024, 1, 1), "unaccompanied_minors")]
    assert (jan["cbp_count"], jan["segob_count"], jan["difference"]) == (2659, 1314, 1345)
    assert jan["pct_difference"] == pytest.approx(1345 / 2659)
    assert (jan["cbp_vintage"], jan["segob_vintage"]) == (JUNE_2025_CBP, D(2025, 2, 7))
    assert "MEXICO" in jan["cbp_definition"] and "unaccompanied" in jan["segob_definition"]
    assert jan["definitions_comparable"] is True
    mixed = rows[(D(2024, 1, 1), "uc_plus_ofo_accompanied_minors")]
    assert mixed["segob_count"] == 2133  # constructed: both travel conditions
    assert mixed["cbp_count"] > jan["cbp_count"]  # plus CBP's OFO accompanied minors
    assert mixed["definitions_comparable"] is False
    assert "children in family units not included" in mixed["cbp_definition"]
    assert not any(c == "all_minors" for _, c in rows)
    old = rows[(D(2021, 1, 1), "unaccompanied_minors")]
    assert (
        old["cbp_count"],
        old["segob_count"],
        old["difference"],
        old["pct_difference"],
        old["both_sides_published"],
    ) == (1882, None, None, None, False)
    assert (old["cbp_vintage"], old["cbp_first_published_vintage"]) == (
        OCTOBER_2024_CBP,
        MARCH_2021_CBP,
    )


# ---------------------------------------------------------------------------------------- INM


def test_inm_minor_returns_by_nationality_against_the_real_series(built):
    _, data, _ = built
    exp = segob_series("iom_gdidata_irreg_mexico_exp.csv")
    dmg = segob_series("iom_gdidata_irreg_mexico_dmg.csv")
    for month, label in [(D(2024, 3, 1), "2024-03"), (D(2019, 6, 1), "2019-06")]:
        rows = {
            r["nationality_key"]: r
            for r in query(
                data, "SELECT * FROM marts.inm_minor_returns_monthly WHERE month = ?", [month]
            )
        }
        children = {
            n: sum(
                int(float(r["n"]))
                for r in exp
                if r["t"] == label and r["nat"] == n and r["type"] == "assisted return of children"
            )
            for n in ("GTM", "HND", "SLV")
        }
        for nat, expected in children.items():
            assert rows[nat]["minors_returned"] == expected, (label, nat)
            assert rows[nat]["minors_presented"] is None  # not published by nationality
            assert rows[nat]["minor_return_rate"] is None
        total = rows["ALL"]
        assert total["nationality_scope"] == "all_nationalities"
        assert total["minors_returned"] == sum(
            int(float(r["n"]))
            for r in exp
            if r["t"] == label and r["type"] == "assisted return of children"
        )
        assert total["persons_returned"] == sum(int(float(r["n"])) for r in exp if r["t"] == label)
        assert total["minors_presented"] == sum(
            int(float(r["n"])) for r in dmg if r["t"] == label and r["age"] != "18+"
        )
        assert total["minor_return_rate"] == pytest.approx(
            total["minors_returned"] / total["minors_presented"]
        )
    # Hand-checked: March 2024, 533 children returned of 16,239 minors presented; Guatemala
    # 322, Honduras 153, El Salvador 13. June 2019: 8,785 of 10,727.
    march = {
        r["nationality_key"]: r
        for r in query(
            data, "SELECT * FROM marts.inm_minor_returns_monthly WHERE month = DATE '2024-03-01'"
        )
    }
    assert (march["ALL"]["minors_returned"], march["ALL"]["minors_presented"]) == (533, 16239)
    assert [march[n]["minors_returned"] for n in ("GTM", "HND", "SLV")] == [322, 153, 13]
    assert march["GTM"]["nationality_name_en"] == "Guatemala"
    assert march["GTM"]["nationality_region"] == "América Central"


def test_inm_months_before_table_3_1_1_have_returns_but_no_presentations(built):
    _, data, _ = built
    row = one(
        data,
        "SELECT * FROM marts.inm_minor_returns_monthly "
        "WHERE month = DATE '2015-03-01' AND nationality_key = 'ALL'",
    )
    assert row["minors_returned"] > 0 and row["persons_returned"] > 0
    assert (row["minors_presented"], row["persons_presented"], row["minor_return_rate"]) == (
        None,
        None,
        None,
    )
    flagged = query(
        data,
        "SELECT month, minor_return_rate FROM marts.inm_minor_returns_monthly "
        "WHERE minor_return_rate_above_one",
    )
    assert flagged and all(r["minor_return_rate"] > 1 for r in flagged)


# ---------------------------------------------------------------------------------------- HHS


def test_hhs_vs_cbp_daily_sums_and_monthly_page_figures(built):
    _, data, _ = built
    rows = {r["month"]: r for r in query(data, "SELECT * FROM marts.hhs_vs_cbp_monthly")}
    # The real healthdata.gov copy, February 2023, summed by hand over its rows.
    daily: dict[dt.date, list[int]] = defaultdict(list)
    with (REPLAY / "hhs_uc" / "healthdata_ehpz-xc9n_copy_mihirg42.csv").open(newline="") as f:
        reader = csv.reader(f)
        next(reader)
        for cells in reader:
            if cells and cells[0].strip():
                day = dt.datetime.strptime(cells[0], "%B %d, %Y").date()
                daily[day.replace(day=1)].append(int(cells[1]))
    feb = rows[D(2023, 2, 1)]
    assert feb["hhs_days_reported"] == len(daily[D(2023, 2, 1)]) == 19
    assert feb["hhs_apprehended_excl_mexico_reported_days"] == sum(daily[D(2023, 2, 1)])
    assert feb["hhs_every_day_reported"] is False
    iom = iom_cbp_uc()
    assert feb["cbp_non_mexican_uc_encounters"] == cbp_sum(iom, month=D(2023, 2, 1), mexican=False)
    title_8 = cbp_sum(iom, month=D(2023, 2, 1), mexican=False, title="Title 8")
    assert feb["cbp_non_mexican_uc_title_8"] == title_8 == 8216
    assert feb["hhs_daily_to_cbp_title_8_ratio"] == pytest.approx(
        (sum(daily[D(2023, 2, 1)]) / 19) / (title_8 / 28)
    )
    # June 2020: 307 of 352 non-Mexican UC were expelled under Title 42 and never referred to
    # HHS; the ratios divide by the 45 under Title 8.
    june = rows[D(2020, 6, 1)]
    assert (june["cbp_non_mexican_uc_encounters"], june["cbp_non_mexican_uc_title_8"]) == (
        cbp_sum(iom, month=D(2020, 6, 1), mexican=False),
        cbp_sum(iom, month=D(2020, 6, 1), mexican=False, title="Title 8"),
    )
    assert june["cbp_non_mexican_uc_title_8_per_day"] == pytest.approx(
        june["cbp_non_mexican_uc_title_8"] / 30
    )
    # HHS's FY2021 page: 30-day average of referrals 130 in January 2021 (per day).
    jan = rows[D(2021, 1, 1)]
    assert jan["hhs_referrals_30day_avg"] == 130
    assert jan["cbp_non_mexican_uc_encounters"] == 3938
    assert jan["cbp_non_mexican_uc_title_8"] == 3938  # no Title 42 row that month
    assert jan["hhs_referrals_to_cbp_title_8_ratio"] == pytest.approx(130 / (3938 / 31))
    assert jan["hhs_days_reported"] is None  # no daily figures in the warehouse for 2021
    # December 2025: HHS daily only, CBP not (yet) published.
    dec = rows[D(2025, 12, 1)]
    assert dec["cbp_non_mexican_uc_encounters"] is None and dec["hhs_days_reported"] > 0


# ------------------------------------------------------------------------------- traceability


def test_every_mart_row_traces_to_loaded_files(built):
    _, data, _ = built
    lineage = query(data, "SELECT * FROM marts.mart_source_files")
    assert {r["mart"] for r in lineage} == set(MARTS) - {"mart_source_files"}
    assert all(r["url"] and r["url"].startswith("http://127.0.0.1/") for r in lineage)
    assert {r["data_origin"] for r in lineage} == {"replay_mirror"}
    files = {r["sha256"] for r in query(data, "SELECT sha256 FROM raw.files")}
    assert {r["source_file"] for r in lineage} <= files
    # Every month of every monthly mart has its files listed, per side it has figures for.
    for mart, column, side in [
        ("mexico_uc_return_rate_monthly", "cbp_source_files", "cbp"),
        ("mexico_uc_return_rate_monthly", "segob_source_files", "segob section 5"),
        ("inm_minor_returns_monthly", "returns_source_files", "segob table 3.2.4"),
        ("hhs_vs_cbp_monthly", "hhs_daily_source_files", "hhs daily"),
    ]:
        expected = {
            (r["month"], r["f"])
            for r in query(data, f"SELECT month, unnest({column}) AS f FROM marts.{mart}")
        }
        listed = {
            (r["period"], r["source_file"])
            for r in lineage
            if r["mart"] == mart and r["side"] == side
        }
        assert expected == listed and expected, (mart, side)
    jan = [
        r
        for r in lineage
        if r["mart"] == "mexico_uc_return_rate_monthly" and r["period"] == D(2021, 1, 1)
    ]
    assert [(r["side"], r["vintage"], r["raw_table"]) for r in jan] == [
        ("cbp", OCTOBER_2024_CBP, "cbp_encounters_aor")
    ]
    assert "/2024-10/nationwide-encounters-fy21-fy24-aor.csv" in jan[0]["url"]


# ---------------------------------------------------------------------------------- analyses


def compiled_analysis(docs: Path, name: str) -> str:
    sql = (docs / "compiled" / "returnwatch" / "analyses" / f"{name}.sql").read_text()
    assert "{{" not in sql and "ref(" not in sql
    return re.sub(r"--[^\n]*", "", sql)


def test_analysis_fiscal_year_totals_by_title(built):
    _, data, docs = built
    rows = {
        r["fiscal_year"]: r
        for r in query(data, compiled_analysis(docs, "usbp_mexican_uc_by_title_fiscal_year"))
    }
    fy2020 = rows[2020]
    assert (
        fy2020["title_8_apprehensions"],
        fy2020["title_42_expulsions"],
        fy2020["all_encounters"],
        fy2020["months_published"],
    ) == (6299, 8060, 14359, 12)
    assert fy2020["share_expelled"] == pytest.approx(0.561, abs=1e-3)


def test_analysis_six_month_window_cbp_vs_segob(built):
    _, data, docs = built
    rows = query(data, compiled_analysis(docs, "cbp_returns_vs_segob_repatriations_window"))
    months = [r for r in rows if r["month"] is not None]
    assert [r["month"] for r in months] == [
        D(2020, 11, 1),
        D(2020, 12, 1),
        D(2021, 1, 1),
        D(2021, 2, 1),
        D(2021, 3, 1),
        D(2021, 4, 1),
    ]
    # USBP Mexican UC, Nov 2020 - Apr 2021 (IOM's copy, hand-summed above in the CBP tests):
    assert [
        (
            r["cbp_mexican_uc_usbp_apprehensions_title_8"],
            r["cbp_mexican_uc_usbp_expulsions_title_42"],
        )
        for r in months
    ] == [(836, 1100), (1661, 0), (1757, 18), (1770, 2), (2278, 0), (2266, 0)]
    total = rows[-1]
    assert total["month"] is None
    assert (total["cbp_mexican_uc_usbp"], total["cbp_mexican_uc_all_components"]) == (
        11688,
        2033 + 1754 + 1882 + 1869 + 2380 + 2365,
    )
    # SEGOB's section 5 for 2020-2021 is in no public copy: missing, not zero.
    assert total["segob_unaccompanied_minor_repatriations"] is None
    assert all(r["segob_unaccompanied_minor_repatriations"] is None for r in months)


def test_other_analyses_run(built):
    _, data, docs = built
    inm = query(data, compiled_analysis(docs, "inm_children_returns_by_nationality_year"))
    gtm_2019 = [r for r in inm if r["calendar_year"] == 2019 and r["nationality_key"] == "GTM"]
    assert len(gtm_2019) == 1 and gtm_2019[0]["minors_returned"] > 0
    hhs = {
        r["fiscal_year"]: r for r in query(data, compiled_analysis(docs, "hhs_vs_cbp_fiscal_year"))
    }
    assert hhs[2020]["cbp_months"] == 12 and hhs[2020]["hhs_page_months"] == 12
    # FY2020: most non-Mexican children were expelled under Title 42 (never referred).
    assert hhs[2020]["cbp_title_8_per_day"] < hhs[2020]["cbp_per_day"]


# ------------------------------------------------------------- Amnesty's window and the policy


AMNESTY_WINDOW = [
    D(2020, 11, 1),
    D(2020, 12, 1),
    D(2021, 1, 1),
    D(2021, 2, 1),
    D(2021, 3, 1),
    D(2021, 4, 1),
]


def test_amnesty_window_mexican_uc_all_titles_and_usbp_title_8_on_the_real_file(built):
    """Nov 2020 - Apr 2021, Southwest border: the denominators of footnote 27, by hand."""
    _, data, _ = built
    iom = iom_cbp_uc()
    total = one(
        data,
        "SELECT sum(cbp_mexican_uc_encounters) AS all_titles, "
        "sum(cbp_mexican_uc_usbp_apprehensions_title_8) AS usbp_title_8, "
        "sum(cbp_mexican_uc_title_42) AS title_42 "
        "FROM marts.mexico_uc_return_rate_monthly "
        "WHERE month BETWEEN DATE '2020-11-01' AND DATE '2021-04-01'",
    )
    assert (
        total["all_titles"]
        == sum(cbp_sum(iom, month=m, mexican=True) for m in AMNESTY_WINDOW)
        == 12283
    )
    assert (
        total["usbp_title_8"]
        == sum(
            cbp_sum(iom, month=m, mexican=True, title="Title 8", component="U.S. Border Patrol")
            for m in AMNESTY_WINDOW
        )
        == 10568
    )
    assert total["title_42"] == sum(
        cbp_sum(iom, month=m, mexican=True, title="Title 42") for m in AMNESTY_WINDOW
    )


def test_analysis_amnesty_footnote_27_on_the_loaded_data(built):
    _, data, docs = built
    sql = (
        docs
        / "compiled"
        / "returnwatch"
        / "analyses"
        / "amnesty_footnote_27_minimum_return_rate.sql"
    ).read_text()
    assert "vintage" in sql and "region" in sql  # says why 12,514 and the loaded total differ
    row = one(data, compiled_analysis(docs, "amnesty_footnote_27_minimum_return_rate"))
    assert (row["months_in_window"], row["cbp_months_loaded"]) == (6, 6)
    assert row["cbp_mexican_uc_encounters"] == 12283
    assert row["amnesty_min_return_rate"] == pytest.approx(8632 / 12514, abs=5e-4) == 0.69
    assert row["amnesty_numerator_over_loaded_cbp"] == pytest.approx(8632 / 12283, abs=5e-4)
    assert row["amnesty_minus_loaded_cbp"] == 12514 - 12283
    assert row["cbp_land_border_regions"] == ["Southwest Land Border"]
    # No public copy of SEGOB's section 5 for 2020-2021: the loaded side is missing, not 0.
    assert row["segob_repatriations_loaded"] is None and row["loaded_min_return_rate"] is None


def test_marts_carry_the_policy_regimes_in_force_and_the_changes_within_a_month(built):
    _, data, _ = built
    rows = {
        r["month"]: r
        for r in query(
            data,
            "SELECT month, policy_regimes_in_force, policy_changes_in_month, notes "
            "FROM marts.mexico_uc_return_rate_monthly",
        )
    }
    nov, dec, jan = rows[D(2020, 11, 1)], rows[D(2020, 12, 1)], rows[D(2021, 1, 1)]
    assert "P.J.E.S. v. Wolf" in nov["policy_changes_in_month"]
    assert nov["policy_changes_in_month"].startswith("18 Nov 2020")
    assert "policy changed within the month" in nov["notes"]
    assert "Title 42 expulsions in force" in dec["policy_regimes_in_force"]
    assert "P.J.E.S. v. Wolf" in dec["policy_regimes_in_force"]
    assert dec["policy_changes_in_month"] is None
    assert [part.split(":")[0] for part in jan["policy_changes_in_month"].split("; ")] == [
        "29 Jan 2021",
        "29 Jan 2021",
        "30 Jan 2021",
    ]
    may_2023 = rows[D(2023, 5, 1)]["policy_changes_in_month"]
    assert "last day of Title 42 expulsions in force" in may_2023
    for mart in ("cbp_segob_discrepancy_monthly", "hhs_vs_cbp_monthly"):
        got = one(
            data,
            f"SELECT any_value(policy_regimes_in_force) AS r FROM marts.{mart} "
            "WHERE month = DATE '2020-12-01'",
        )
        assert got["r"] == dec["policy_regimes_in_force"]
    seeded = query(data, "SELECT policy_id, url, citation FROM reference.policy_timeline")
    assert len(seeded) >= 10
    assert all(r["url"].startswith("https://") and r["citation"] for r in seeded)


def test_every_file_of_the_demo_history_reaches_a_mart_or_is_superseded(built):
    """The unmarted monitor on the demo's history: no file is left out of the marts."""
    import duckdb

    from returnwatch.monitor import unmarted

    _, data, _ = built
    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        result = unmarted.evaluate(con, run_at=dt.datetime.now(dt.UTC) + unmarted.FILE_GRACE)
        files = con.execute("SELECT count(*) FROM raw.files").fetchone()[0]
    assert [f.message for f in result.findings if f.kind == "file_not_in_marts"] == []
    assert sum(1 for m, s in result.evaluated if s.startswith("file:")) == files
