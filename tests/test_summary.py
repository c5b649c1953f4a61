"""The demo's closing summary: what it says when the warehouse is empty, and the headline
comparison with its "constructed" warning."""

from __future__ import annotations

from pathlib import Path

from returnwatch import summary, warehouse


def test_an_empty_warehouse_says_what_is_missing(data_dir: Path) -> None:
    with warehouse.session():
        pass  # creates raw.* and monitor.*, no marts
    text = summary.render()
    assert "Headline figures: none yet" in text
    assert "Latest figures: none yet" in text


def test_the_headline_names_the_mart_and_flags_constructed_figures(data_dir: Path) -> None:
    with warehouse.session() as con:
        # Two months of figures made up for this test (constructed), in the mart's columns.
        con.execute("""
            create schema marts;
            create table marts.cbp_segob_discrepancy_monthly as
            select * from (values
                (date '2025-03-01', 'unaccompanied_minors', true, 439, 511, -72, -72 / 511.0, true),
                (date '2025-04-01', 'unaccompanied_minors', true, 580, 565, 15, 15 / 565.0, true),
                (date '2025-04-01', 'all_minors', true, 999, 1, 998, 998.0, true))
            as t(month, comparison, both_sides_published, cbp_count, segob_count, difference,
                 pct_difference, segob_figures_constructed)""")
    text = summary.render()
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "CBP encounters vs SEGOB" in line)
    assert lines[start + 2].split()[:4] == ["2025-04", "580", "565", "+15"]  # newest first
    assert lines[start + 3].split()[:4] == ["2025-03", "439", "511", "-72"]
    assert "999" not in text  # only the unaccompanied comparison
    assert "CONSTRUCTED" in lines[start + 4]
