"""The policy timeline seed, read as a file (no dbt): every row cited, dated and ordered."""

from __future__ import annotations

import csv
import datetime as dt

from returnwatch import settings

SEED = settings.dbt_project_dir() / "seeds" / "policy_timeline.csv"


def rows() -> list[dict[str, str]]:
    with SEED.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_every_timeline_row_has_a_source_with_a_url():
    found = rows()
    assert len(found) >= 10
    for row in found:
        assert row["citation"].strip(), row["policy_id"]
        assert row["url"].startswith("https://"), row["policy_id"]
        assert row["citation_checked"] in ("true", "false"), row["policy_id"]


def test_the_dates_the_issue_names_are_in_the_timeline():
    by_id = {r["policy_id"]: r for r in rows()}
    assert (by_id["title_42"]["starts_on"], by_id["title_42"]["ends_on"]) == (
        "2020-03-21",
        "2023-05-11",
    )
    assert by_id["pjes_injunction"]["starts_on"] == "2020-11-18"
    assert by_id["pjes_stay"]["starts_on"] == "2021-01-29"
    assert by_id["cdc_uc_exception_2021_01"]["starts_on"] == "2021-01-30"
    assert "86 FR 9942" in by_id["cdc_uc_exception_2021_01"]["citation"]
    assert "86 FR 38717" in by_id["cdc_uc_exception_2021_07"]["citation"]
    assert "87 FR 15243" in by_id["cdc_uc_termination_2022_03"]["citation"]
    assert "88 FR 31314" in by_id["circumvention_of_lawful_pathways"]["citation"]
    assert "89 FR 48487" in by_id["securing_the_border_2024"]["citation"]
    assert "90 FR 8333" in by_id["southern_border_proclamations_2025"]["citation"]
    assert "1232(a)(3)" in by_id["tvpra_2008"]["citation"]
    # The March 2020 order's Federal Register citation was not read: marked, not invented.
    assert by_id["title_42"]["citation_checked"] == "false"


def test_regimes_are_well_formed():
    for row in rows():
        start = dt.date.fromisoformat(row["starts_on"])
        if row["ends_on"]:
            assert row["kind"] == "regime", row["policy_id"]
            assert dt.date.fromisoformat(row["ends_on"]) >= start, row["policy_id"]
