"""The replay mirror's cbp.gov: the landing page and AOR files as they stood on a day, real
figures in CBP's layout, two vintages that differ where the real vintages differ.

Everything goes through ``returnwatch_replay.mirror.ReplayMirror`` and httpx on 127.0.0.1, and the
files are read with the real parser (``returnwatch.sources.cbp_encounters_monthly``).
"""

from __future__ import annotations

import csv
import datetime as dt
import email.utils
from collections import defaultdict
from collections.abc import Iterator

import duckdb
import httpx
import pandas as pd
import pytest

from returnwatch import config, settings
from returnwatch.sources import cbp_encounters_monthly as cbp
from returnwatch.sources.errors import BadValue, LayoutChanged
from returnwatch_replay.mirror import ReplayMirror
from returnwatch_replay.sites import cbp as site

SOURCE = "cbp_encounters_monthly"
DATA = settings.replay_data_dir() / "cbp_encounters"
RUN_AT = dt.datetime(2025, 6, 20, 12, tzinfo=dt.UTC)
MARCH_2021 = "2021-03/nationwide-encounters-fy20-fy21-jan-aor.csv"
FY21_FY24 = "2024-10/nationwide-encounters-fy21-fy24-aor.csv"
FY22_FY25_MAY = "2025-06/nationwide-encounters-fy22-fy25-may-aor.csv"
FY22_FY25_APR = "2025-05/nationwide-encounters-fy22-fy25-apr-aor.csv"


@pytest.fixture(scope="module")
def mirror() -> Iterator[ReplayMirror]:
    with ReplayMirror(dt.date(2025, 6, 20)) as running:
        yield running


@pytest.fixture(autouse=True)
def _clean(mirror: ReplayMirror) -> Iterator[None]:
    yield
    mirror.set_fault(SOURCE, None)
    mirror.set_as_of(dt.date(2025, 6, 20))


def file_url(mirror: ReplayMirror, path: str) -> str:
    return f"{mirror.base_url(SOURCE)}/sites/default/files/{path}"


def get(url: str, **headers: str) -> httpx.Response:
    return httpx.get(url, headers=headers, timeout=30)


def landing_url(mirror: ReplayMirror) -> str:
    return mirror.base_url(SOURCE) + config.source(SOURCE).path


def discover(mirror: ReplayMirror) -> list:
    def get_page(url: str) -> bytes:
        response = get(url)
        response.raise_for_status()
        return response.content

    return cbp.discover(get_page, landing_url=landing_url(mirror), run_at=RUN_AT, options={})


@pytest.fixture(scope="module")
def frames(mirror: ReplayMirror) -> dict[str, pd.DataFrame]:
    """The old and the new vintages' files, fetched and parsed."""
    return {
        path: cbp.parse_aor(get(file_url(mirror, path)).content, file=path).frame()
        for path in (MARCH_2021, FY21_FY24, FY22_FY25_MAY)
    }


def iom() -> pd.DataFrame:
    frame = pd.read_csv(DATA / site.IOM_FILE, dtype=str, keep_default_na=False)
    frame["n"] = frame["n"].astype(float).astype(int)
    return frame


def wapo_sector_months() -> pd.DataFrame:
    """The Post's table by sector and month, with its month labels repaired.

    PROVENANCE 'Quirks found': the table has no May row and two 'Oct' blocks per year (its
    Jun..Sep labels and the first 'Oct' are really May..Sep); its 28 blocks of ten rows are the
    28 months Oct 2018 .. Jan 2021 in order, so the n-th block is month n.
    """
    frame = pd.read_csv(DATA / "wapo_secmondf_20210303.csv")
    block = (frame["sector"] == "Big Bend").cumsum() - 1
    months = pd.period_range("2018-10", "2021-01", freq="M")
    assert block.max() == len(months) - 1
    frame["t"] = [str(months[i]) for i in block]
    frame["sector"] = frame["sector"].replace({"Yum": "Yuma"})
    return frame


def usbp_uc(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[(frame["component"] == "U.S. Border Patrol") & (frame["demographic"] == cbp.UC)]


# ------------------------------------------------------------------ start-up and pages


def test_the_mirror_reads_nothing_until_a_file_is_asked_for() -> None:
    with ReplayMirror(dt.date(2025, 6, 20)) as running:
        cbp_site = running._sites[SOURCE]
        assert cbp_site._rows is None  # the IOM copy is read on the first CSV request


def test_discovery_at_two_dates(mirror: ReplayMirror) -> None:
    mirror.set_as_of(dt.date(2021, 3, 10))
    links = discover(mirror)
    assert [(link.kind, link.url) for link in links] == [("aor", file_url(mirror, MARCH_2021))]
    assert links[0].period == "FY2020-FY2021" and links[0].extra["through_month"] == "JAN"

    mirror.set_as_of(dt.date(2025, 6, 20))
    links = discover(mirror)
    assert [link.url for link in links] == [
        file_url(mirror, FY22_FY25_MAY),
        file_url(mirror, FY21_FY24),
    ]
    assert links[0].label == (
        "FY22 - FY25 (FYTD) Nationwide Encounters by Area of Responsibility - May"
    )
    assert all(link.url.startswith(f"http://127.0.0.1:{mirror.port}/{SOURCE}/") for link in links)
    # Each link is a file the mirror serves.
    for link in links:
        assert get(link.url).status_code == 200


def test_the_page_moves_with_as_of_and_files_appear_on_their_day(mirror: ReplayMirror) -> None:
    mirror.set_as_of(dt.date(2025, 6, 15))  # the May file is published on Monday 2025-06-16
    assert [link.extra["file_name"] for link in discover(mirror)][0] == (
        "nationwide-encounters-fy22-fy25-apr-aor.csv"
    )
    assert get(file_url(mirror, FY22_FY25_MAY)).status_code == 404
    assert get(file_url(mirror, FY22_FY25_APR)).status_code == 200
    mirror.set_as_of(dt.date(2025, 6, 16))
    assert [link.extra["file_name"] for link in discover(mirror)][0] == (
        "nationwide-encounters-fy22-fy25-may-aor.csv"
    )
    assert get(file_url(mirror, FY22_FY25_MAY)).status_code == 200
    # Before the first release the page links nothing: discovery says the page changed.
    mirror.set_as_of(dt.date(2021, 3, 1))
    page = get(landing_url(mirror))
    assert page.status_code == 200 and ".csv" not in page.text
    with pytest.raises(LayoutChanged, match="no recognisable encounters CSV"):
        discover(mirror)
    assert get(file_url(mirror, MARCH_2021)).status_code == 404
    assert get(f"{mirror.base_url(SOURCE)}/sites/default/files/2025-06/nope.csv").status_code == 404


def test_validators_and_conditional_get(mirror: ReplayMirror) -> None:
    url = file_url(mirror, FY22_FY25_MAY)
    first = get(url)
    assert first.status_code == 200 and first.headers["Content-Type"].startswith("text/csv")
    published = email.utils.parsedate_to_datetime(first.headers["Last-Modified"])
    assert published == dt.datetime(2025, 6, 16, 15, 0, tzinfo=dt.UTC)  # 11:00 New York
    etag = first.headers["ETag"]
    assert get(url, **{"If-None-Match": etag}).status_code == 304
    assert get(url, **{"If-Modified-Since": first.headers["Last-Modified"]}).status_code == 304
    assert get(url, **{"If-None-Match": '"other"'}).status_code == 200
    old = get(file_url(mirror, MARCH_2021))
    assert email.utils.parsedate_to_datetime(old.headers["Last-Modified"]).date() == (
        dt.date(2021, 3, 2)
    )
    assert old.headers["ETag"] != etag


# ------------------------------------------------------------------ the two vintages


def test_the_two_vintages_differ_where_the_real_ones_differ(
    frames: dict[str, pd.DataFrame],
) -> None:
    old, new = usbp_uc(frames[MARCH_2021]), usbp_uc(frames[FY21_FY24])
    expected = {  # (March 2021 scrape, June 2025 copy), PROVENANCE 'Quirks found'
        dt.date(2020, 10, 1): (4686, 4687),
        dt.date(2020, 11, 1): (4471, 4475),
        dt.date(2020, 12, 1): (4855, 4852),
        dt.date(2021, 1, 1): (5707, 5688),
    }
    for month, (was, now) in expected.items():
        assert old[old["month"] == month]["encounters"].sum() == was
        assert new[new["month"] == month]["encounters"].sum() == now
    mexico = [
        frame[
            (frame["citizenship"] == "MEXICO")
            & (frame["fiscal_year"] == 2021)
            & (frame["month"] <= dt.date(2021, 1, 1))
        ]["encounters"].sum()
        for frame in (old, new)
    ]
    assert mexico == [7730, 7737]


def test_the_old_vintage_carries_the_posts_figures_by_sector_and_country(
    frames: dict[str, pd.DataFrame],
) -> None:
    old = usbp_uc(frames[MARCH_2021])
    wapo = wapo_sector_months()
    fy21 = wapo[(wapo["t"] >= "2020-10") & (wapo["sector"] != "Southwest Border Total")]
    assert len(fy21) == 36
    for row in fy21.itertuples():
        year, number = map(int, row.t.split("-"))
        area = {"Rio Grande": "Rio Grande Valley"}.get(row.sector, row.sector) + " Sector"
        cell = old[
            (old["month"] == dt.date(year, number, 1)) & (old["area_of_responsibility"] == area)
        ]
        assert cell["encounters"].sum() == row.uac, (row.t, row.sector)
    by_country = pd.read_csv(DATA / "wapo_sbecfydf_20210303.csv")
    by_country = by_country[(by_country["type"] == "uac") & (by_country["year"] == "fy21")]
    fy21_old = old[old["fiscal_year"] == 2021]
    for row in by_country.itertuples():
        total = fy21_old[fy21_old["citizenship"] == row.sector.upper()]["encounters"].sum()
        assert total == row.encounters, row.sector


def test_everything_else_in_the_old_vintage_is_the_june_2025_figure(
    frames: dict[str, pd.DataFrame],
) -> None:
    key = [
        "month",
        "component",
        "area_of_responsibility",
        "demographic",
        "citizenship",
        "title_of_authority",
        "encounter_type",
    ]
    old = frames[MARCH_2021].set_index(key)["encounters"]
    new = pd.concat([frames[FY21_FY24], frames[FY22_FY25_MAY]]).drop_duplicates(key)
    new = new.set_index(key)["encounters"]
    shared = old.index.intersection(new.index)
    changed = old[shared] != new[shared]
    deltas = pd.read_csv(DATA / site.MARCH_2021_DELTAS)
    assert changed.sum() == len(deltas) == 19
    changed_rows = old[shared][changed].reset_index()
    assert set(changed_rows["component"]) == {"U.S. Border Patrol"}
    assert set(changed_rows["demographic"]) == {cbp.UC}
    assert min(changed_rows["month"]) >= dt.date(2020, 10, 1)


def test_the_constructed_placement_follows_the_documented_rule() -> None:
    """Re-derive usbp_uc_fy21_oct_jan_mar2021_deltas_constructed.csv from the real tables with
    the rule PROVENANCE.md states, and compare: the constructed file is reproducible."""
    data = iom()
    uc = data[
        (data["component"] == "U.S. Border Patrol")
        & (data["demog"] == "UC / Single Minors")
        & (data["t"] >= "2020-10")
        & (data["t"] <= "2021-01")
    ]
    rows = {(r.t, r.area, r.nat, r.authority): r.n for r in uc.itertuples()}
    cells = uc.groupby(["t", "area"])["n"].sum()
    wapo = wapo_sector_months()
    wapo = wapo[(wapo["t"] >= "2020-10") & (wapo["sector"] != "Southwest Border Total")]
    diffs = []
    for row in wapo.sort_values(["t", "sector"]).itertuples():
        area = {"Rio Grande": "Rio Grande Valley"}.get(row.sector, row.sector) + " Sector"
        if row.uac != cells[(row.t, area)]:
            diffs.append((row.t, area, int(row.uac - cells[(row.t, area)])))
    named = ["MEX", "GTM", "HND", "SLV"]
    countries = pd.read_csv(DATA / "wapo_sbecfydf_20210303.csv")
    countries = countries[(countries["type"] == "uac") & (countries["year"] == "fy21")]
    iso = {"Mexico": "MEX", "Guatemala": "GTM", "Honduras": "HND", "El Salvador": "SLV"}
    need = {
        iso[r.sector]: int(r.encounters - uc[uc["nat"] == iso[r.sector]]["n"].sum())
        for r in countries.itertuples()
    }
    need["REST"] = sum(d for *_, d in diffs) - sum(need.values())

    def group(key: tuple) -> str:
        return key[2] if key[2] in named else "REST"

    order = [*named, "REST"]
    delta: dict[tuple, int] = defaultdict(int)
    for month, area, difference in diffs:
        unit = 1 if difference > 0 else -1
        for _ in range(abs(difference)):
            candidates = [
                k for k in rows if k[:2] == (month, area) and (unit > 0 or rows[k] + delta[k] > 0)
            ]
            groups = {group(k) for k in candidates}
            same = [g for g in order if g in groups and need[g] * unit > 0]
            if same:
                chosen = max(same, key=lambda g: (abs(need[g]), -order.index(g)))
            else:
                size = {
                    g: sum(rows[k] + delta[k] for k in candidates if group(k) == g) for g in groups
                }
                chosen = max(groups, key=lambda g: (size[g], -order.index(g)))
            target = max(
                (k for k in candidates if group(k) == chosen),
                key=lambda k: (rows[k] + delta[k], k[2], k[3]),
            )
            delta[target] += unit
            need[chosen] -= unit
    assert set(need.values()) == {0}
    derived = sorted((k[0], k[1], k[2], k[3], v) for k, v in delta.items() if v)
    shipped = pd.read_csv(DATA / site.MARCH_2021_DELTAS)
    assert derived == sorted(
        zip(
            shipped["month"],
            shipped["area"],
            shipped["nat"],
            shipped["authority"],
            shipped["delta"],
        )
    )
    assert (shipped["n_mar2021"] == shipped["n_iom_jun2025"] + shipped["delta"]).all()
    assert (shipped["n_mar2021"] >= 0).all()


# ------------------------------------------------------------------ warehouse equals published


def test_warehouse_equals_published(frames: dict[str, pd.DataFrame]) -> None:
    """The newest vintage, loaded into raw.cbp_encounters_aor through RAW_DDL, gives the real
    IOM figures for several months, countries, components and both titles."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    for statement in cbp.RAW_DDL:
        con.execute(statement)
    for path, vintage in (
        (FY21_FY24, dt.date(2024, 10, 15)),
        (FY22_FY25_MAY, dt.date(2025, 6, 16)),
    ):
        frame = frames[path].assign(source_file=path, vintage=vintage)
        con.register("frame", frame)
        con.execute("INSERT INTO raw.cbp_encounters_aor BY NAME SELECT * FROM frame")
        con.unregister("frame")
    data = iom()
    checks = [  # (calendar month, component, demographic, ISO3, CBP citizenship, title)
        # Title 42 expulsions of Mexican children: 2,326 in Oct 2020, 18 in Jan 2021 (they all
        # but stopped after a court order in November 2020).
        ("2020-10", "U.S. Border Patrol", "UC / Single Minors", "MEX", "MEXICO", "Title 42"),
        ("2021-01", "U.S. Border Patrol", "UC / Single Minors", "MEX", "MEXICO", "Title 42"),
        ("2021-03", "U.S. Border Patrol", "UC / Single Minors", "MEX", "MEXICO", "Title 8"),
        ("2021-01", "U.S. Border Patrol", "UC / Single Minors", "GTM", "GUATEMALA", "Title 8"),
        ("2022-05", "U.S. Border Patrol", "UAC", "HND", "HONDURAS", "Title 8"),
        ("2022-05", "U.S. Border Patrol", "Single Adults", "MEX", "MEXICO", "Title 42"),
        ("2023-05", "Office of Field Operations", "Single Adults", "MEX", "MEXICO", "Title 42"),
        (
            "2023-05",
            "Office of Field Operations",
            "Accompanied Minors",
            "MEX",
            "MEXICO",
            "Title 42",
        ),
        (
            "2023-12",
            "U.S. Border Patrol",
            "Single Adults",
            "CHN",
            "CHINA, PEOPLES REPUBLIC OF",
            "Title 8",
        ),
        ("2024-06", "Office of Field Operations", "FMUA", "OOO", "OTHER", "Title 8"),
        ("2025-05", "U.S. Border Patrol", "UAC", "MEX", "MEXICO", "Title 8"),
        ("2025-01", "U.S. Border Patrol", "UAC", "SLV", "EL SALVADOR", "Title 8"),
    ]
    demographic = {"UAC": cbp.UC, "UC / Single Minors": cbp.UC}
    for month, component, demog, nat, citizenship, title in checks:
        published = data[
            (data["t"] == month)
            & (data["component"] == component)
            & (data["demog"] == demog)
            & (data["nat"] == nat)
            & (data["authority"] == title)
        ]["n"].sum()
        assert published > 0, (month, nat, title)
        year, number = map(int, month.split("-"))
        warehouse = con.execute(
            """
            WITH newest AS (
                SELECT * FROM raw.cbp_encounters_aor
                QUALIFY vintage = max(vintage) OVER (PARTITION BY month)
            )
            SELECT sum(encounters) FROM newest
            WHERE month = ? AND component = ? AND demographic = ? AND citizenship = ?
              AND title_of_authority = ?
        """,
            [
                dt.date(year, number, 1),
                component,
                demographic.get(demog, demog),
                citizenship,
                title,
            ],
        ).fetchone()[0]
        assert warehouse == published, (month, component, demog, nat, title)
    # And in total: every Southwest-border figure of Oct 2020 - May 2025 is there, once.
    newest_total = con.execute("""
        SELECT sum(encounters) FROM (
            SELECT encounters FROM raw.cbp_encounters_aor
            QUALIFY vintage = max(vintage) OVER (PARTITION BY month))
    """).fetchone()[0]
    assert newest_total == data[data["t"] >= "2020-10"]["n"].sum()


def test_the_fy21_fy24_file_adds_up_to_cbps_own_southwest_totals(
    frames: dict[str, pd.DataFrame],
) -> None:
    """Corroboration (PROVENANCE.md): a public fact-check summed CBP's real
    2024-10/sbo-encounters-fy21-fy24.csv to these fiscal-year totals; the re-laid file agrees."""
    totals = frames[FY21_FY24].groupby("fiscal_year")["encounters"].sum().to_dict()
    assert totals == {2021: 1_734_686, 2022: 2_378_944, 2023: 2_475_669, 2024: 2_135_005}


# ------------------------------------------------------------------ faults


def test_content_faults_hit_the_csv_and_the_parser_names_them(mirror: ReplayMirror) -> None:
    url = file_url(mirror, FY22_FY25_MAY)
    mirror.set_fault(SOURCE, "html_error")
    response = get(url)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    with pytest.raises(LayoutChanged, match="HTML page"):
        cbp.parse_aor(response.content, file="html")
    assert discover(mirror)  # the landing page itself is not a data file: unaffected

    mirror.set_fault(SOURCE, "empty")
    with pytest.raises(LayoutChanged, match="empty"):
        cbp.parse_aor(get(url).content, file="empty")

    mirror.set_fault(SOURCE, "truncated")
    with pytest.raises(BadValue, match="truncated"):
        cbp.parse_aor(get(url).content, file="cut")

    mirror.set_fault(SOURCE, "renamed_column")
    with pytest.raises(LayoutChanged) as caught:
        cbp.parse_aor(get(url).content, file="renamed")
    assert caught.value.row == 1 and caught.value.seen.endswith("Encounter Type,Encounters")

    mirror.set_fault(SOURCE, None)
    assert cbp.parse_aor(get(url).content, file="ok").summary()["rows"] > 20000


def test_oversize_streams_past_the_configured_cap_without_a_length(mirror: ReplayMirror) -> None:
    cap = config.source(SOURCE).max_bytes
    assert site.OVERSIZE_BYTES > cap
    mirror.set_fault(SOURCE, "oversize", times=1)
    received = 0
    with httpx.stream("GET", file_url(mirror, FY22_FY25_MAY), timeout=60) as response:
        assert response.status_code == 200
        assert "Content-Length" not in response.headers
        first = True
        for chunk in response.iter_bytes():
            if first:
                assert chunk.startswith(b"Fiscal Year,Month Grouping")
                first = False
            received += len(chunk)
            if received > cap:
                break
    assert received > cap


def test_availability_faults_hit_the_landing_page(mirror: ReplayMirror) -> None:
    mirror.set_fault(SOURCE, "http_500", times=1)
    assert get(landing_url(mirror)).status_code == 500
    assert get(landing_url(mirror)).status_code == 200


def test_the_served_file_keeps_every_iom_row_once() -> None:
    """Rendering adds and drops nothing: one CBP row per IOM row of the window."""
    rows = site.read_iom(DATA / site.IOM_FILE)
    file = next(f for r in site.RELEASES for f in r.files if f.name.endswith("fy21-fy24-aor.csv"))
    body = site.render(file, rows, {})
    lines = body.decode("ascii").split("\r\n")[1:-1]
    in_window = [r for r in rows if 2021 <= r.fiscal_year <= 2024]
    assert len(lines) == len(in_window)
    assert sum(int(next(csv.reader([line]))[-1]) for line in lines) == sum(r.n for r in in_window)
