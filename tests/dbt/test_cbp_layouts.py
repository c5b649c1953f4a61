"""CBP's three layouts each reach ``marts.cbp_uc_encounters_monthly``, and never twice.

Each scenario loads files into an empty warehouse (parsed by the real parser, loaded by
``warehouse.load_file``) and runs one ``dbt build``:

- ``aor``: the replay mirror's March-2021 AOR file (real figures: IOM's copy of CBP's files, with
  the Washington Post's March-2021 figures for USBP children Oct 2020 - Jan 2021);
- ``state``: ``tests/fixtures/cbp/state_fy22_fy23_jan_excerpt_constructed.csv`` (CBP's state
  header and conventions; its counts are illustrative, see that folder's README);
- ``sbo``: ``tests/fixtures/cbp/sbo_fy22_fy25_may_uac_excerpt_constructed.csv`` (CBP's SBO header;
  every count real, summed from IOM's rows);
- ``aor_and_state``: the mirror's October-2024 AOR file and the state excerpt uploaded the next
  day (one release): the months both carry come from the AOR file only.

The expected figures are the files' own totals, computed here with the csv module from the
bytes that were loaded, never read back from the warehouse.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from returnwatch import settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cbp"
STATE_FILE = FIXTURES / "state_fy22_fy23_jan_excerpt_constructed.csv"
SBO_FILE = FIXTURES / "sbo_fy22_fy25_may_uac_excerpt_constructed.csv"
UC_LABELS = {"UAC", "UC / Single Minors"}


# ------------------------------------------------------------------------ the files, by hand


def mirror_aor(published: dt.date) -> tuple[str, bytes, dt.date]:
    """(name, bytes, vintage) of the replay mirror's AOR file published that day."""
    from returnwatch_replay.sites import cbp as site
    from tests.dbt import realdata

    (file,) = realdata.cbp_files({published})
    return file.name, site.CbpSite(settings.replay_data_dir()).body(file), published


def uc_totals(
    body: bytes, *, months: set[dt.date] | None = None, without: set[dt.date] | None = None
) -> dict[tuple[int, str], int]:
    """(fiscal year, citizenship) -> UC encounters, read off the CSV by label.

    The SBO layout's citizenship groups are upper-cased, as the mart holds them; ``months``
    keeps only those calendar months, ``without`` leaves those out.
    """
    fiscal_months = (
        "OCT",
        "NOV",
        "DEC",
        "JAN",
        "FEB",
        "MAR",
        "APR",
        "MAY",
        "JUN",
        "JUL",
        "AUG",
        "SEP",
    )
    out: dict[tuple[int, str], int] = defaultdict(int)
    for row in csv.DictReader(io.StringIO(body.decode("utf-8-sig"))):
        if row["Demographic"] not in UC_LABELS:
            continue
        fiscal_year = int(row["Fiscal Year"][:4])
        position = fiscal_months.index(row["Month (abbv)"])
        month = dt.date(fiscal_year - (position < 3), (position + 9) % 12 + 1, 1)
        if (months is not None and month not in months) or month in (without or ()):
            continue
        citizenship = row.get("Citizenship") or row["Citizenship Grouping"].upper()
        out[(fiscal_year, citizenship)] += int(float(row["Encounter Count"]))
    return dict(out)


def file_months(body: bytes) -> set[dt.date]:
    fiscal_months = (
        "OCT",
        "NOV",
        "DEC",
        "JAN",
        "FEB",
        "MAR",
        "APR",
        "MAY",
        "JUN",
        "JUL",
        "AUG",
        "SEP",
    )
    months = set()
    for row in csv.DictReader(io.StringIO(body.decode("utf-8-sig"))):
        fiscal_year = int(row["Fiscal Year"][:4])
        position = fiscal_months.index(row["Month (abbv)"])
        months.add(dt.date(fiscal_year - (position < 3), (position + 9) % 12 + 1, 1))
    return months


# ------------------------------------------------------------------------------ the warehouses


def load(con: Any, kind: str, name: str, body: bytes, vintage: dt.date) -> None:
    from returnwatch import warehouse
    from returnwatch.sources import cbp_encounters_monthly as cbp

    parsed = cbp.parse(body, file=name, kind=kind)
    warehouse.load_file(
        con,
        table=cbp.RAW_TABLES[kind],
        frame=parsed.frame(),
        source=cbp.SOURCE,
        sha256=hashlib.sha256(body).hexdigest(),
        url=f"http://127.0.0.1/cbp/{name}",
        vintage=vintage,
        fetched_at=dt.datetime.now(dt.UTC),
    )


def build(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    files: list[tuple[str, str, bytes, dt.date]],
) -> Path:
    """A data folder with ``files`` (kind, name, bytes, vintage) loaded and one dbt build."""
    from returnwatch import transform, warehouse

    data = tmp_path_factory.mktemp(name) / "data"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RETURNWATCH_DATA_DIR", str(data))
        with warehouse.session() as con:
            for kind, file_name, body, vintage in files:
                load(con, kind, file_name, body, vintage)
        result = transform.dbt_build()
    assert result.success and result.failed == [], result.messages
    return data


def query(data: Path, sql: str) -> list[dict]:
    import duckdb

    with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def mart_totals(data: Path) -> dict[tuple[int, str], int]:
    return {
        (r["fiscal_year"], r["citizenship"]): int(r["n"])
        for r in query(
            data,
            "SELECT fiscal_year, citizenship, sum(encounters) AS n "
            "FROM marts.cbp_uc_encounters_monthly GROUP BY 1, 2",
        )
    }


MARCH_2021 = dt.date(2021, 3, 2)
OCTOBER_2024 = dt.date(2024, 10, 15)


@pytest.fixture(scope="module")
def aor(tmp_path_factory):
    name, body, vintage = mirror_aor(MARCH_2021)
    return build(tmp_path_factory, "aor", [("aor", name, body, vintage)]), body


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    body = STATE_FILE.read_bytes()
    return build(
        tmp_path_factory, "state", [("state", STATE_FILE.name, body, dt.date(2023, 2, 15))]
    ), body


@pytest.fixture(scope="module")
def sbo(tmp_path_factory):
    body = SBO_FILE.read_bytes()
    return build(
        tmp_path_factory, "sbo", [("sbo", SBO_FILE.name, body, dt.date(2025, 6, 16))]
    ), body


@pytest.fixture(scope="module")
def aor_and_state(tmp_path_factory):
    name, aor_body, vintage = mirror_aor(OCTOBER_2024)
    state_body = STATE_FILE.read_bytes()
    # The state file of the same release, uploaded the next day: one release, so the richer
    # AOR layout decides every month both carry.
    data = build(
        tmp_path_factory,
        "aor_and_state",
        [
            ("aor", name, aor_body, vintage),
            ("state", STATE_FILE.name, state_body, vintage + dt.timedelta(days=1)),
        ],
    )
    return data, aor_body, state_body


# ---------------------------------------------------------------------------------- each alone


def test_aor_file_alone_gives_its_own_fiscal_year_totals(aor):
    data, body = aor
    expected = uc_totals(body)
    assert mart_totals(data) == expected
    # FY2020 (the whole year) and FY2021 to January, all citizenships: measured figures.
    by_year = defaultdict(int)
    for (year, _), n in expected.items():
        by_year[year] += n
    assert set(by_year) == {2020, 2021}
    rows = query(
        data,
        "SELECT DISTINCT source_layout, citizenship_grouped, "
        "component IS NULL AS no_component FROM marts.cbp_uc_encounters_monthly",
    )
    assert rows == [{"source_layout": "aor", "citizenship_grouped": False, "no_component": False}]


def test_state_file_alone_gives_its_own_totals_with_component_null(state):
    data, body = state
    expected = uc_totals(body)
    assert expected == {(2022, "MEXICO"): 160, (2022, "GUATEMALA"): 75}
    assert mart_totals(data) == expected
    rows = query(
        data, "SELECT * FROM marts.cbp_uc_encounters_monthly ORDER BY month, title_of_authority"
    )
    assert {r["source_layout"] for r in rows} == {"state"}
    assert all(
        r["component"] is None
        and r["encounter_type"] is None
        and r["area_of_responsibility"] is None
        for r in rows
    )
    assert {r["state"] for r in rows} == {"TX", "AZ"}
    # Figures by component say "not published", not 0; figures by title stay.
    sums = {
        r["month"]: r
        for r in query(data, "SELECT * FROM intermediate.int_cbp__minor_encounters_monthly")
    }
    dec = sums[dt.date(2021, 12, 1)]
    assert (dec["mexican_uc"], dec["mexican_uc_title_8"], dec["mexican_uc_title_42"]) == (
        160,
        120,
        40,
    )
    assert (dec["mexican_uc_usbp"], dec["mexican_uc_ofo"], dec["non_mexican_uc_usbp"]) == (
        None,
        None,
        None,
    )
    assert dec["components_published"] is False and dec["source_layout"] == "state"
    # Mexican accompanied minors come from the state file too (October 2022, Title 42: 3).
    assert sums[dt.date(2022, 10, 1)]["mexican_accompanied_minors"] == 3
    rate = {r["month"]: r for r in query(data, "SELECT * FROM marts.mexico_uc_return_rate_monthly")}
    assert rate[dt.date(2021, 12, 1)]["cbp_mexican_uc_encounters"] == 160
    assert rate[dt.date(2021, 12, 1)]["cbp_mexican_uc_usbp_apprehensions_title_8"] is None


def test_sbo_file_alone_gives_its_own_totals_by_citizenship_group(sbo):
    data, body = sbo
    expected = uc_totals(body)
    assert mart_totals(data) == expected
    # Real figures (IOM's rows summed): Mexican UC at the Southwest border, FY2024 June 2,225.
    assert expected[(2024, "MEXICO")] == 205 + 2020
    rows = query(
        data,
        "SELECT DISTINCT source_layout, land_border_region, citizenship_grouped, "
        "area_of_responsibility FROM marts.cbp_uc_encounters_monthly",
    )
    assert rows == [
        {
            "source_layout": "sbo",
            "land_border_region": "Southwest Land Border",
            "citizenship_grouped": True,
            "area_of_responsibility": None,
        }
    ]
    usbp = query(
        data,
        "SELECT month, mexican_uc_usbp, land_border_regions "
        "FROM intermediate.int_cbp__minor_encounters_monthly ORDER BY month",
    )
    assert [(r["month"], r["mexican_uc_usbp"]) for r in usbp] == [
        (dt.date(2024, 6, 1), 2020),
        (dt.date(2024, 12, 1), 1454),
        (dt.date(2025, 5, 1), 638),
    ]
    assert all(r["land_border_regions"] == ["Southwest Land Border"] for r in usbp)


# --------------------------------------------------------------------------- two layouts, once


def test_aor_and_state_files_of_one_release_give_one_set_of_figures(aor_and_state):
    data, aor_body, state_body = aor_and_state
    shared = file_months(aor_body) & file_months(state_body)
    assert shared == {
        dt.date(2021, 12, 1),
        dt.date(2022, 8, 1),
        dt.date(2023, 1, 1),
        dt.date(2022, 10, 1),
    }
    # Every month (shared ones included) exactly as the AOR file has it: nothing added.
    assert mart_totals(data) == uc_totals(aor_body)
    layouts = {
        r["month"]: r
        for r in query(
            data,
            "SELECT month, list(DISTINCT source_layout) AS layouts, "
            "any_value(layouts_with_month) AS seen, count(DISTINCT source_file) AS files "
            "FROM marts.cbp_uc_encounters_monthly GROUP BY month",
        )
    }
    for month in shared:
        assert layouts[month]["layouts"] == ["aor"] and layouts[month]["files"] == 1
        assert layouts[month]["seen"] == ["aor", "state"]


def test_a_newer_release_of_another_layout_replaces_a_month_whole(tmp_path_factory):
    """A state file of a later release decides its months; the older AOR rows are not kept."""
    name, aor_body, vintage = mirror_aor(MARCH_2021)
    # The state excerpt re-dated as a later release covering one month of the AOR file:
    # constructed in the test (a month of FY2021), from the excerpt's own rows.
    text = STATE_FILE.read_text(encoding="utf-8").replace("2022,FYTD,DEC", "2021,FYTD,DEC")
    state_body = text.encode("utf-8")
    data = build(
        tmp_path_factory,
        "newer_state",
        [
            ("aor", name, aor_body, vintage),
            ("state", "state_fy21_dec_constructed.csv", state_body, dt.date(2021, 4, 15)),
        ],
    )
    december = dt.date(2020, 12, 1)
    expected: dict[tuple[int, str], int] = defaultdict(int)
    for part in (uc_totals(aor_body, without={december}), uc_totals(state_body)):
        for key, n in part.items():
            expected[key] += n
    assert mart_totals(data) == dict(expected)
    dec = query(
        data,
        "SELECT DISTINCT source_layout FROM marts.cbp_uc_encounters_monthly "
        "WHERE month = DATE '2020-12-01'",
    )
    assert dec == [{"source_layout": "state"}]
