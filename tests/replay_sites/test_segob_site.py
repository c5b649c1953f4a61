"""The replay mirror's SEGOB bulletin site, through real HTTP on 127.0.0.1.

The central promise: what the mirror serves, once parsed and loaded, equals IOM's real series
of bulletin tables 3.1.1, 3.1.3 and 3.2.4, figure for figure. Section 5's minors table and
microdata are constructed (no public copy exists) and the tests say so where they use them.
"""

from __future__ import annotations

import csv
import datetime as dt
import email.utils
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import xlrd

from returnwatch import config, quality, settings, warehouse
from returnwatch.sources import segob_bulletin_monthly as segob
from returnwatch.sources.errors import BadValue, LayoutChanged
from returnwatch_replay.mirror import ReplayMirror
from returnwatch_replay.sites import segob as site_module

SOURCE = segob.SOURCE
REPLAY = settings.replay_data_dir() / "segob_upm"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "segob"
LATE = dt.date(2025, 6, 10)  # every month of the series (through April 2025) is published


@pytest.fixture(scope="module")
def mirror() -> Iterator[ReplayMirror]:
    with ReplayMirror(LATE) as running:
        yield running


@pytest.fixture(autouse=True)
def clean_mirror(mirror: ReplayMirror, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(segob.discovery, "EMPTY_PAGE_PAUSES", (0.0, 0.0))
    mirror.set_as_of(LATE)
    yield
    mirror.set_fault(SOURCE, None)


def base(mirror: ReplayMirror) -> str:
    return mirror.base_url(SOURCE)


def get(url: str, **headers: str) -> httpx.Response:
    assert urlsplit(url).hostname == "127.0.0.1"  # the tests never leave the loopback
    return httpx.get(url, headers=headers, timeout=30)


def get_page(url: str) -> bytes:
    response = get(url)
    response.raise_for_status()
    return response.content


def workbook_url(mirror: ReplayMirror, number: str, year: int) -> str:
    return base(mirror) + site_module.workbook_path(number, year)


def discover(mirror: ReplayMirror, run_at: dt.datetime) -> list:
    cfg = config.source(SOURCE)
    landing = base(mirror) + cfg.path  # what RETURNWATCH_SEGOB_BULLETIN_MONTHLY_BASE_URL gives
    return segob.discover(get_page, landing_url=landing, run_at=run_at, options=cfg.options)


def iom(name: str) -> list[dict[str, str]]:
    with (REPLAY / f"iom_gdidata_irreg_mexico_{name}.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def noon(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(18, 0), tzinfo=dt.UTC)  # noon in Mexico City


# ------------------------------------------------------------------ start-up and pages


def test_the_site_reads_nothing_until_asked(tmp_path: Path) -> None:
    site = site_module.make_site(settings.replay_data_dir())
    assert site._series is None  # the series and workbooks are built on first request
    with ReplayMirror(LATE) as running:
        assert running._sites[SOURCE]._series is None


def test_landing_page_is_latin1_and_lists_the_years_begun(mirror: ReplayMirror) -> None:
    mirror.set_as_of(dt.date(2019, 1, 1))
    response = get(base(mirror) + site_module.LANDING_PATH)
    assert response.headers["content-type"] == "text/html; charset=iso-8859-1"
    with pytest.raises(UnicodeDecodeError):
        response.content.decode("utf-8")
    text = response.content.decode("latin-1")
    assert "Boletín Mensual de Estadísticas Migratorias" in text
    assert "Anual=2019&amp;Secc=5" in text and "Anual=2015&amp;Secc=3" in text
    assert "Anual=2020" not in text


def test_tables_page_lists_only_what_was_published(mirror: ReplayMirror) -> None:
    def page(year: int, section: int) -> str:
        url = f"{base(mirror)}{site_module.TABLES_PATH}?Anual={year}&Secc={section}"
        response = get(url)
        assert response.headers["content-type"] == "text/html; charset=iso-8859-1"
        return response.content.decode("latin-1")

    mirror.set_as_of(dt.date(2019, 3, 6))  # January 2019 appears on 7 March
    assert "Aún no hay cuadros publicados" in page(2019, 3)
    assert "cuadro3.1.1.xls" in page(2018, 3) and "según continente y país" in page(2018, 3)
    assert "cuadro3.2.4.xls" in page(2016, 3) and "cuadro3.1.1" not in page(2016, 3)
    mirror.set_as_of(LATE)
    section5 = page(2024, 5)
    assert "construidos a mano" in section5 and "BDSIOMR_PUB_2024_UPMRIP.csv" in section5
    assert "BDSIOMR" not in page(2023, 5)


# ------------------------------------------------------------------ discovery through HTTP


def test_discovery_through_the_mirror_at_two_dates(mirror: ReplayMirror) -> None:
    mirror.set_as_of(dt.date(2019, 3, 6))
    early = discover(mirror, noon(dt.date(2019, 3, 6)))
    assert [(link.period, link.kind) for link in early] == [
        ("2018", "cuadro_3_1_1"),
        ("2018", "cuadro_3_1_3"),
        ("2018", "cuadro_3_2_4"),
    ]
    assert early[0].url == workbook_url(mirror, "3.1.1", 2018)

    mirror.set_as_of(LATE)
    late = discover(mirror, noon(LATE))
    kinds = Counter(link.kind for link in late)
    assert kinds == {
        "cuadro_3_1_1": 8,
        "cuadro_3_1_3": 8,
        "cuadro_3_2_4": 8,  # 2018-2025
        "section_5_minors": 2,
        "microdata": 2,
    }  # 2024, 2025 (constructed)
    urls = {(link.kind, link.period): link.url for link in late}
    # The file names drift between years; discovery reads them off the pages.
    assert urls[("cuadro_3_1_1", "2019")].endswith("/Cuadros2019/cuadro3.1.1.xls")
    assert urls[("cuadro_3_1_1", "2022")].endswith("/Cuadros2022/cuadro_3.1.1.xls")
    assert urls[("cuadro_3_1_1", "2025")].endswith("/Cuadros2025/cuadro3.1.1_.xls")
    assert urls[("microdata", "2025")].endswith("DwnldBD.php?f=BDSIOMR_PUB_2025_UPMRIP.csv")
    # 2015-2017 are on the site but before config's first_year.
    assert {link.period for link in late} == {str(y) for y in range(2018, 2026)}
    for link in late:
        assert get(link.url).status_code == 200, link.url


def test_a_year_appears_with_its_first_publication(mirror: ReplayMirror) -> None:
    mirror.set_as_of(dt.date(2019, 3, 7))
    links = discover(mirror, noon(dt.date(2019, 3, 7)))
    assert {link.period for link in links} == {"2018", "2019"}


# ------------------------------------------------------------------ publication in place


def months_in(content: bytes, kind: str) -> list[int]:
    return segob.KINDS[kind].parse(content, file="t").months


def test_the_workbook_grows_in_place_with_validators(mirror: ReplayMirror) -> None:
    url = workbook_url(mirror, "3.1.1", 2025)
    mirror.set_as_of(dt.date(2025, 3, 6))
    assert get(url).status_code == 404  # January 2025 appears on 7 March
    mirror.set_as_of(dt.date(2025, 4, 6))
    first = get(url)
    assert months_in(first.content, "cuadro_3_1_1") == [1]
    assert first.headers["last-modified"] == "Fri, 07 Mar 2025 16:00:00 GMT"  # 10:00 CDMX
    mirror.set_as_of(dt.date(2025, 4, 7))
    second = get(url)
    assert months_in(second.content, "cuadro_3_1_1") == [1, 2]
    assert second.headers["etag"] != first.headers["etag"]
    assert email.utils.parsedate_to_datetime(second.headers["last-modified"]).date() == dt.date(
        2025, 4, 7
    )
    assert get(url, **{"If-None-Match": second.headers["etag"]}).status_code == 304
    assert get(url, **{"If-Modified-Since": second.headers["last-modified"]}).status_code == 304
    assert get(url, **{"If-Modified-Since": first.headers["last-modified"]}).status_code == 200


def test_unknown_and_future_files_are_404(mirror: ReplayMirror) -> None:
    assert get(workbook_url(mirror, "3.1.2", 2024)).status_code == 404  # listed, not mirrored
    assert get(workbook_url(mirror, "3.1.1", 2026)).status_code == 404
    # Another year's spelling of the file name is not this year's file.
    assert (
        get(
            base(mirror) + site_module.WORKBOOK_DIR + "/2024/Cuadros2024/cuadro3.1.1.xls"
        ).status_code
        == 404
    )
    assert get(f"{base(mirror)}{site_module.TABLES_PATH}?Anual=2030&Secc=3").status_code == 404


# ------------------------------------------------------------------ the layout served


def sheet_of(content: bytes) -> xlrd.sheet.Sheet:
    return xlrd.open_workbook(file_contents=content).sheet_by_index(0)


def test_workbooks_have_the_documented_layout(mirror: ReplayMirror) -> None:
    old = sheet_of(get(workbook_url(mirror, "3.1.1", 2019)).content)
    assert old.name == "Cuadro 3.1.1"
    assert old.cell_value(1, 2).startswith("Cuadro 3.1.1 Eventos de extranjeros presentados")
    assert old.cell_value(1, 2).endswith("enero-diciembre de 2019")
    assert old.cell_value(3, 3) == "Mes"  # 2019's extra header row
    assert old.row_values(4)[2:5] == ["Continente y país de nacionalidad", "Enero", "Febrero"]
    assert all(old.cell_value(r, c) == "" for r in range(old.nrows) for c in (0, 1))
    labels = old.col_values(2)
    assert "Total general" in labels and "América Central" in labels
    assert "Estados Unidos 1" in labels and "Dominicana, Rep." in labels
    assert any(str(v).endswith("(Concluye)") for v in labels)
    assert labels.count("Continente y país de nacionalidad") >= 2  # repeated at page breaks
    dashes = [v for r in range(old.nrows) for v in old.row_values(r)[3:] if v == "-"]
    assert len(dashes) > 100  # zero written as the text '-' up to 2020
    new = sheet_of(get(workbook_url(mirror, "3.1.1", 2021)).content)
    header = new.row_values(4)
    assert header.count("Subtotal") == 2 and header[-1] == "Total"
    assert "-" not in [v for row in range(new.nrows) for v in new.row_values(row)[3:]]
    order = sheet_of(get(workbook_url(mirror, "3.1.3", 2019)).content).row_values(4)
    assert order[2:4] == ["Sexo, grupo de edad y condición de viaje", "Total"]
    returns = sheet_of(get(workbook_url(mirror, "3.2.4", 2024)).content)
    assert "Retorno asistido de niñas, niños y adolescentes" in returns.row_values(3)


def test_continent_and_region_rows_are_the_sums_of_their_countries(mirror: ReplayMirror) -> None:
    sheet = sheet_of(get(workbook_url(mirror, "3.1.1", 2022)).content)
    labels = sheet.col_values(2)
    central = labels.index("América Central")
    end = labels.index("El Caribe")
    january = [
        sheet.cell_value(r, 3)
        for r in range(central + 1, end)
        if isinstance(sheet.cell_value(r, 3), float)
    ]
    assert sheet.cell_value(central, 3) == sum(january)
    rows = {
        r["nat"]: int(float(r["n"]))
        for r in iom("nat")
        if r["t"] == "2022-01" and r["nat"] in ("BLZ", "CRI", "SLV", "GTM", "HND", "NIC", "PAN")
    }
    assert sheet.cell_value(central, 3) == sum(rows.values())


# ------------------------------------------------------------------ warehouse equals published


def load(con: object, url: str, kind: str) -> str:
    """Fetch, parse and load one file from the mirror as ingest would; returns its sha256."""
    import hashlib

    response = get(url)
    response.raise_for_status()
    sha = hashlib.sha256(response.content).hexdigest()
    parsed = segob.KINDS[kind].parse(response.content, file=sha)
    vintage = email.utils.parsedate_to_datetime(response.headers["last-modified"]).date()
    warehouse.load_file(
        con,
        table=segob.KINDS[kind].raw_table,
        frame=parsed.frame(),
        source=SOURCE,
        sha256=sha,
        url=url,
        vintage=vintage,
        fetched_at=dt.datetime.now(dt.UTC),
    )
    return sha


@pytest.fixture
def con(tmp_path: Path) -> Iterator[object]:
    connection = warehouse.connect(tmp_path / "warehouse.duckdb")
    warehouse.init(connection)
    for statement in segob.RAW_DDL:  # warehouse.py does not know the SEGOB tables yet
        connection.execute(statement)
    yield connection
    connection.close()


def test_warehouse_equals_published(mirror: ReplayMirror, con: object) -> None:
    for year in (2019, 2022, 2024, 2025):
        for number, kind in (
            ("3.1.1", "cuadro_3_1_1"),
            ("3.1.3", "cuadro_3_1_3"),
            ("3.2.4", "cuadro_3_2_4"),
        ):
            load(con, workbook_url(mirror, number, year), kind)

    nat = {(r["t"], r["nat"]): int(float(r["n"])) for r in iom("nat")}
    for month in ("2019-06", "2022-03", "2024-07", "2025-04"):
        for iso3 in ("GTM", "HND", "VEN", "SLV", "CUB", "HTI"):
            got = con.execute(
                "SELECT events FROM raw.segob_presented_by_nationality "
                "WHERE month = ? AND iso3 = ?",
                [f"{month}-01", iso3],
            ).fetchone()
            assert got is not None and got[0] == nat[(month, iso3)], (month, iso3)

    dmg = {(r["t"], r["sex"], r["age"]): int(float(r["n"])) for r in iom("dmg")}
    for month in ("2019-06", "2024-05"):
        got = dict(
            con.execute(
                "SELECT sex || '/' || age_group || '/' || travel_condition, events "
                "FROM raw.segob_presented_by_sex_age WHERE month = ?",
                [f"{month}-01"],
            ).fetchall()
        )
        assert got["female/0-11/unaccompanied"] == dmg[(month, "female", "under 12, unaccompanied")]
        assert got["male/0-11/accompanied"] == dmg[(month, "male", "under 12, accompanied")]
        assert got["male/18+/not_split"] == dmg[(month, "male", "18+")]
        assert got["female/12-17/not_split"] == dmg[(month, "female", "12-17")]

    exp = {(r["t"], r["nat"], r["type"]): int(float(r["n"])) for r in iom("exp")}
    checked = 0
    for (month, iso3, kind), value in exp.items():
        if kind == "assisted return of children" and month[:4] in ("2019", "2022", "2024", "2025"):
            got = con.execute(
                "SELECT events FROM raw.segob_returns_by_nationality WHERE month = ? AND "
                "iso3 = ? AND return_type = 'assisted_return_children'",
                [f"{month}-01", iso3],
            ).fetchone()
            assert got == (value,), (month, iso3)
            checked += 1
    assert checked > 100
    # Subtotal rows never reach the warehouse.
    assert con.execute(
        "SELECT count(*) FROM raw.segob_presented_by_nationality WHERE country "
        "IN ('Total general', 'América', 'América Central')"
    ).fetchone() == (0,)


def test_every_figure_of_the_series_is_served(mirror: ReplayMirror) -> None:
    """All years of the three tables, parsed, against every row of IOM's series."""
    site = site_module.make_site(settings.replay_data_dir())
    code = {c.label: c.iso3 for c in segob.COUNTRIES.values()} | {
        "Estados Unidos": "USA",
        "Otros": "OOO",
        "Apátrida": "STL",
    }
    served: dict[str, Counter] = defaultdict(Counter)
    for number, kind, years in (
        ("3.1.1", "cuadro_3_1_1", range(2018, 2026)),
        ("3.1.3", "cuadro_3_1_3", range(2018, 2026)),
        ("3.2.4", "cuadro_3_2_4", range(2015, 2026)),
    ):
        for year in years:
            months = tuple(site.published_months(number, year, LATE))
            for row in segob.KINDS[kind].parse(site.workbook(number, year, months), file="t").rows:
                if row["events"] == 0:
                    continue  # the series has no zero rows; the workbook shows '-'
                t = row["month"].strftime("%Y-%m")
                if number == "3.1.3":
                    age = (
                        row["age_group"]
                        if row["age_group"] != "0-11"
                        else (f"under 12, {row['travel_condition']}")
                    )
                    served[number][(t, row["sex"], age, row["events"])] += 1
                    continue
                # Further rows of a code the series repeats are labelled so on the mirror.
                nat = code.get(row["country"].split(" (fila ")[0])
                key = (
                    (t, nat, row["events"])
                    if number == "3.1.1"
                    else (
                        t,
                        nat,
                        row["return_type"].replace("_children", " of children").replace("_", " "),
                        row["events"],
                    )
                )
                served[number][key] += 1
    expected = {
        "3.1.1": Counter((r["t"], r["nat"], int(float(r["n"]))) for r in iom("nat")),
        "3.1.3": Counter((r["t"], r["sex"], r["age"], int(float(r["n"]))) for r in iom("dmg")),
        "3.2.4": Counter((r["t"], r["nat"], r["type"], int(float(r["n"]))) for r in iom("exp")),
    }
    for number, counts in expected.items():
        assert served[number] == counts, number
    assert sum(expected["3.1.1"].values()) == 5759


# ------------------------------------------------------------------ revisions


def test_a_revision_between_two_vintages_of_the_same_workbook(
    mirror: ReplayMirror, con: object
) -> None:
    """January 2023 as first published vs as later overwritten (constructed first vintage)."""
    import hashlib

    # First-published vintage: the real press figures for Ecuador and Venezuela, every other
    # figure from the later series (tests/fixtures/segob/README.md): a constructed workbook.
    with (FIXTURES / "cuadro3.1.1_2023-01_first_published_constructed.csv").open() as handle:
        overrides = list(csv.DictReader(line for line in handle if not line.startswith("#")))
    series = site_module.load_series(settings.replay_data_dir())
    for row in overrides:
        year, month = (int(p) for p in row["month"].split("-"))
        series.nat[(year, month)][row["iso3"]] = int(row["events"])
    first = site_module.write_workbook(site_module.LAYOUTS["3.1.1"](series, 2023, [1]))
    sha = hashlib.sha256(first).hexdigest()
    warehouse.load_file(
        con,
        table="segob_presented_by_nationality",
        frame=segob.parse_cuadro_3_1_1(first, file=sha).frame(),
        source=SOURCE,
        sha256=sha,
        url="constructed:first-vintage",
        vintage=site_module.published_on(2023, 1).date(),
        fetched_at=dt.datetime.now(dt.UTC),
    )
    # The later vintage: the mirror's 2023 workbook, January as overwritten ever since.
    load(con, workbook_url(mirror, "3.1.1", 2023), "cuadro_3_1_1")

    kind = segob.KINDS["cuadro_3_1_1"]
    keys = " AND ".join(f"a.{c} = b.{c}" for c in kind.key_columns)
    value = kind.value_columns[0]
    revised = con.execute(
        f"SELECT a.iso3, a.{value}, b.{value}, a.vintage, b.vintage "
        f"FROM raw.{kind.raw_table} a JOIN raw.{kind.raw_table} b ON {keys} "
        f"WHERE a.vintage < b.vintage AND a.{value} <> b.{value} ORDER BY a.iso3"
    ).fetchall()
    assert revised == [
        ("ECU", 5808, 6096, dt.date(2023, 3, 7), dt.date(2024, 2, 7)),
        ("VEN", 5314, 5336, dt.date(2023, 3, 7), dt.date(2024, 2, 7)),
    ]


# ------------------------------------------------------------------ faults


@pytest.mark.parametrize(
    ("mode", "error", "problem"),
    [
        ("html_error", LayoutChanged, "HTML page"),
        ("empty", LayoutChanged, "empty"),
        ("truncated", BadValue, "truncated"),
        ("renamed_column", LayoutChanged, "unknown column header 'Ene.'"),
    ],
)
def test_content_faults_hit_the_files_not_the_pages(
    mirror: ReplayMirror, mode: str, error: type[Exception], problem: str
) -> None:
    mirror.set_fault(SOURCE, mode)
    links = discover(mirror, noon(LATE))  # the pages still work
    assert len(links) == 28
    with pytest.raises(error, match=problem):
        segob.parse_cuadro_3_1_1(get(workbook_url(mirror, "3.1.1", 2024)).content, file="f")


@pytest.mark.parametrize(
    ("mode", "error", "problem"),
    [
        ("html_error", LayoutChanged, "HTML page"),
        ("empty", LayoutChanged, "empty"),
        ("truncated", BadValue, "truncated"),
        ("renamed_column", LayoutChanged, "FEC_REP"),
    ],
)
def test_content_faults_on_the_microdata(
    mirror: ReplayMirror, mode: str, error: type[Exception], problem: str
) -> None:
    url = f"{base(mirror)}{site_module.MICRODATA_PATH}?f=BDSIOMR_PUB_2024_UPMRIP.csv"
    mirror.set_fault(SOURCE, mode)
    with pytest.raises(error, match=problem):
        segob.parse_microdata(get(url).content, file="f")


def test_oversize_streams_past_the_cap(mirror: ReplayMirror) -> None:
    cap = config.source(SOURCE).max_bytes
    mirror.set_fault(SOURCE, "oversize")
    received = 0
    with httpx.stream("GET", workbook_url(mirror, "3.1.1", 2024), timeout=30) as response:
        assert "content-length" not in response.headers
        for chunk in response.iter_bytes():
            received += len(chunk)
            if received > cap:
                break
    assert received > cap


def test_an_empty_tables_page_is_retried_then_reported(mirror: ReplayMirror) -> None:
    # Two hits: the landing page (which this fault leaves alone) and the first tables page,
    # which comes back empty once and is asked again.
    mirror.set_fault(SOURCE, "empty_page", times=2)
    assert len(discover(mirror, noon(LATE))) == 28
    mirror.set_fault(SOURCE, "empty_page")
    with pytest.raises(LayoutChanged, match="came back empty 3 times") as caught:
        discover(mirror, noon(LATE))
    assert "CuadrosBOLETIN?Anual=2018&Secc=3" in caught.value.file
    # The landing page itself is not emptied by this fault.
    assert get(base(mirror) + site_module.LANDING_PATH).content


# ------------------------------------------------------------------ section 5 (constructed)


def test_microdata_encodings_and_months_as_of(mirror: ReplayMirror) -> None:
    mirror.set_as_of(dt.date(2025, 4, 7))
    url = f"{base(mirror)}{site_module.MICRODATA_PATH}?f=BDSIOMR_PUB_{{}}_UPMRIP.csv"
    old, new = get(url.format(2024)), get(url.format(2025))
    # Served at the real URL under the name that says it is made by hand (the CSV cannot).
    assert old.headers["content-disposition"] == (
        'attachment; filename="BDSIOMR_PUB_2024_UPMRIP_constructed.csv"'
    )
    parsed_old = segob.parse_microdata(old.content, file="2024")
    parsed_new = segob.parse_microdata(new.content, file="2025")
    assert (parsed_old.encoding, parsed_new.encoding) == ("latin-1", "utf-8")
    assert parsed_old.table.num_rows == 120
    months = {d.month for d in parsed_new.frame()["repatriation_date"]}
    assert months == {1, 2}  # February 2025 appears on 7 April 2025
    points = set(parsed_old.frame()["repatriation_point"])
    assert "Ciudad Juárez, Chih." in points or "San Luis Río Colorado, Son." in points


def test_the_minors_workbook_says_it_is_constructed(mirror: ReplayMirror) -> None:
    response = get(workbook_url(mirror, "5.2.1", 2024))
    assert response.headers["content-disposition"] == (
        'attachment; filename="cuadro_5.2.1_constructed.xls"'
    )
    # The real figures' workbooks carry no such name.
    assert "content-disposition" not in get(workbook_url(mirror, "3.1.1", 2024)).headers
    content = response.content
    labels = sheet_of(content).col_values(2)
    assert any("CONSTRUIDO A MANO" in str(v) for v in labels)
    parsed = segob.parse_section_5_minors(content, file="m")
    assert parsed.months == list(range(1, 13))
    with (REPLAY / "section5_minors_constructed.csv").open() as handle:
        constructed = {
            (r["month"], r["sex"], r["age_group"], r["travel_condition"]): int(r["events"])
            for r in csv.DictReader(handle)
            if r["year"] == "2024"
        }
    got = {
        (str(r["month"].month), r["sex"], r["age_group"], r["travel_condition"]): r["events"]
        for r in parsed.rows
    }
    assert got == constructed


# ------------------------------------------------------------------ GX suites


def test_the_suites_pass_on_the_mirror_files(mirror: ReplayMirror) -> None:
    files = [
        ("3.1.1", 2023, "cuadro_3_1_1"),
        ("3.1.3", 2019, "cuadro_3_1_3"),
        ("3.2.4", 2024, "cuadro_3_2_4"),
        ("5.2.1", 2025, "section_5_minors"),
    ]
    urls = [(workbook_url(mirror, n, y), kind) for n, y, kind in files]
    urls.append(
        (f"{base(mirror)}{site_module.MICRODATA_PATH}?f=BDSIOMR_PUB_2024_UPMRIP.csv", "microdata")
    )
    for url, kind in urls:
        file_kind = segob.KINDS[kind]
        frame = file_kind.parse(get(url).content, file=url).frame()
        report = quality.validate(
            file_kind.suite,
            frame,
            source=SOURCE,
            file=url,
            parameters={"latest_possible_date": LATE},
            prepare=file_kind.prepare,
        )
        assert [o.error for o in report.outcomes if o.error] == [], kind
        assert report.failures == [], report.summary()
        # The only warning: the repeated GIN / FRA rows of IOM's series have no ISO3 (real quirk).
        assert [o.column for o in report.warnings] in ([], ["country_recognised"]), kind
        report.raise_for_failures()


def test_a_fail_expectation_stops_a_bad_frame(mirror: ReplayMirror) -> None:
    file_kind = segob.KINDS["cuadro_3_1_1"]
    frame = file_kind.parse(get(workbook_url(mirror, "3.1.1", 2024)).content, file="f").frame()
    frame.loc[0, "month"] = dt.date(2014, 1, 1)  # before the series: a misread title year
    report = quality.validate(
        file_kind.suite,
        frame,
        source=SOURCE,
        file="f",
        parameters={"latest_possible_date": LATE},
        prepare=file_kind.prepare,
    )
    assert [o.column for o in report.failures] == ["month"]
    with pytest.raises(quality.ValidationFailed):
        report.raise_for_failures()
