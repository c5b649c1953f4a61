"""The replay mirror's hhs.gov site: real monthly figures, HHS's layout, time and faults.

Figures are checked against the Post's long copy read here with the csv module; the mirror
is reached over HTTP on 127.0.0.1 only.
"""

from __future__ import annotations

import csv
import datetime as dt
import email.utils
import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from returnwatch import settings
from returnwatch.sources import hhs_uc_monthly as hhs_monthly
from returnwatch.sources.errors import BadValue, LayoutChanged
from returnwatch_replay.mirror import OVERSIZE_BYTES, ReplayMirror
from returnwatch_replay.sites import hhs_gov

SOURCE = "hhs_uc_monthly"
WAPO_CSV = settings.replay_data_dir() / "hhs_gov" / "wapo_fy2018_fy2021.csv"


def page_path(fiscal_year: int) -> str:
    return (
        f"/programs/social-services/unaccompanied-children/latest-uc-data-fy{fiscal_year}"
        "/index.html"
    )


@pytest.fixture(scope="module")
def mirror() -> Iterator[ReplayMirror]:
    with ReplayMirror(dt.date(2021, 3, 11)) as running:
        yield running


@pytest.fixture(autouse=True)
def _reset(mirror: ReplayMirror) -> Iterator[None]:
    yield
    mirror.set_fault(SOURCE, None)
    mirror.set_as_of(dt.date(2021, 3, 11))


def get(mirror: ReplayMirror, fiscal_year: int, **headers: str) -> httpx.Response:
    return httpx.get(mirror.base_url(SOURCE) + page_path(fiscal_year), headers=headers, timeout=10)


def months_on(response: httpx.Response) -> list[dt.date]:
    parsed = hhs_monthly.parse(response.content, file="page")
    return sorted({row["month"] for row in parsed.rows})


# ------------------------------------------------------------------ data and provenance


def test_the_shipped_copy_is_the_real_file() -> None:
    digest = hashlib.sha256(WAPO_CSV.read_bytes()).hexdigest()
    assert digest == "ad933506eeb086cbb2927362b40160c48703f372fda4d95b08422e066ea9caee"
    assert (WAPO_CSV.parent / "PROVENANCE.md").exists()


def test_mirror_serves_the_source(mirror: ReplayMirror) -> None:
    assert SOURCE in mirror.sources
    assert mirror.env()["RETURNWATCH_HHS_UC_MONTHLY_BASE_URL"] == f"{mirror.url}/{SOURCE}"


def test_make_site_reads_nothing_until_asked(tmp_path: Path) -> None:
    # Fast start-up: the data file is read on the first request, not when the mirror starts.
    site = hhs_gov.make_site(tmp_path)  # no data there at all
    assert site.name == SOURCE
    with pytest.raises(FileNotFoundError):
        site.page(2021, dt.date(2021, 3, 11))


def test_every_figure_served_is_a_row_of_the_copy(mirror: ReplayMirror) -> None:
    with WAPO_CSV.open(newline="") as handle:
        expected = {
            (r["group"], r["category"], r["month"], float(r["value"]), r["number_type"])
            for r in csv.DictReader(handle)
        }
    served = set()
    for fiscal_year in (2018, 2019, 2020, 2021):
        response = get(mirror, fiscal_year)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        for row in hhs_monthly.parse(response.content, file=str(fiscal_year)).rows:
            served.add(
                (
                    row["section"],
                    row["category"],
                    row["month"].isoformat(),
                    row["value"],
                    row["number_type"],
                )
            )
    assert served == expected
    assert len(served) == 1000


def test_page_layout_labels_twice_months_as_columns(mirror: ReplayMirror) -> None:
    text = get(mirror, 2021).text
    assert "<h1>Latest UC Data – FY2021</h1>" in text
    assert (
        '<th scope="row">Average Occupancy Rate:</th>'
        '<td class="color2"><strong>Average Occupancy Rate:</strong></td>'
        "<td>15%</td><td>18%</td><td>28%</td><td>30%</td></tr>"
    ) in text
    # Thousands separators as printed ("Maximum Number of Operations Beds*:" Oct 2020: 13674).
    assert "<td>13,674</td>" in text
    assert '<th scope="col">Oct</th><th scope="col">Nov</th>' in text


# ------------------------------------------------------------------ as_of


@pytest.mark.parametrize(
    ("as_of", "fiscal_year", "expected"),
    [
        # FY2018's October column appears on November 15, 2017 (the mirror's publication model).
        (dt.date(2017, 11, 14), 2018, None),
        (dt.date(2017, 11, 15), 2018, [dt.date(2017, 10, 1)]),
        (
            dt.date(2018, 2, 14),
            2018,
            [dt.date(2017, 10, 1), dt.date(2017, 11, 1), dt.date(2017, 12, 1)],
        ),
        (
            dt.date(2018, 2, 15),
            2018,
            [dt.date(2017, 10, 1), dt.date(2017, 11, 1), dt.date(2017, 12, 1), dt.date(2018, 1, 1)],
        ),
        (
            dt.date(2019, 1, 20),
            2019,
            [dt.date(2018, 10, 1), dt.date(2018, 11, 1), dt.date(2018, 12, 1)],
        ),
        # The copy ends with January 2021: the FY2021 page never grows past it.
        (
            dt.date(2025, 6, 17),
            2021,
            [dt.date(2020, 10, 1), dt.date(2020, 11, 1), dt.date(2020, 12, 1), dt.date(2021, 1, 1)],
        ),
        (dt.date(2025, 6, 17), 2022, None),  # not in the copy
        (dt.date(2025, 6, 17), 2017, None),
    ],
)
def test_pages_show_only_published_months(
    mirror: ReplayMirror, as_of: dt.date, fiscal_year: int, expected: list[dt.date] | None
) -> None:
    mirror.set_as_of(as_of)
    response = get(mirror, fiscal_year)
    if expected is None:
        assert response.status_code == 404
        return
    assert response.status_code == 200
    assert months_on(response) == expected


def test_last_modified_is_the_newest_month_publication(mirror: ReplayMirror) -> None:
    mirror.set_as_of(dt.date(2019, 1, 20))
    response = get(mirror, 2019)
    stamp = email.utils.parsedate_to_datetime(response.headers["last-modified"])
    # December 2018 published January 15, 2019, 10:00 New York = 15:00 UTC.
    assert stamp == dt.datetime(2019, 1, 15, 15, 0, tzinfo=dt.UTC)
    assert response.headers["etag"] == '"' + hashlib.sha256(response.content).hexdigest() + '"'


def test_conditional_gets(mirror: ReplayMirror) -> None:
    first = get(mirror, 2020)
    assert get(mirror, 2020, **{"If-None-Match": first.headers["etag"]}).status_code == 304
    assert (
        get(mirror, 2020, **{"If-Modified-Since": first.headers["last-modified"]}).status_code
        == 304
    )
    # A month later the FY2021 page has grown: the old validators no longer match.
    mirror.set_as_of(dt.date(2021, 1, 14))
    december = get(mirror, 2021)
    mirror.set_as_of(dt.date(2021, 2, 15))
    grown = get(mirror, 2021, **{"If-None-Match": december.headers["etag"]})
    assert grown.status_code == 200
    assert months_on(grown)[-1] == dt.date(2021, 1, 1)


def test_unknown_paths_are_404(mirror: ReplayMirror) -> None:
    base = mirror.base_url(SOURCE)
    assert (
        httpx.get(
            base + "/programs/social-services/unaccompanied-children/", timeout=10
        ).status_code
        == 404
    )
    assert (
        httpx.get(base + page_path(2021).replace("index.html", "data.csv"), timeout=10).status_code
        == 404
    )


# ------------------------------------------------------------------ faults


def test_html_error_fault_is_a_layout_change(mirror: ReplayMirror) -> None:
    mirror.set_fault(SOURCE, "html_error")
    response = get(mirror, 2020)
    assert response.status_code == 200 and "maintenance" in response.text
    with pytest.raises(LayoutChanged):
        hhs_monthly.parse(response.content, file="maintenance")


def test_empty_fault(mirror: ReplayMirror) -> None:
    mirror.set_fault(SOURCE, "empty")
    response = get(mirror, 2020)
    assert response.status_code == 200 and response.content == b""
    with pytest.raises(LayoutChanged, match="empty"):
        hhs_monthly.parse(response.content, file="empty")


def test_truncated_fault(mirror: ReplayMirror) -> None:
    mirror.set_fault(SOURCE, "truncated")
    response = get(mirror, 2020)
    assert b"</html>" not in response.content
    with pytest.raises(BadValue, match="truncated"):
        hhs_monthly.parse(response.content, file="cut")


def test_renamed_column_fault_is_a_layout_change(mirror: ReplayMirror) -> None:
    mirror.set_fault(SOURCE, "renamed_column")
    response = get(mirror, 2020)
    assert hhs_gov.RENAMED_TO in response.text
    with pytest.raises(LayoutChanged) as caught:
        hhs_monthly.parse(response.content, file="renamed")
    assert "'average number of children in care'" in caught.value.problem
    assert hhs_gov.RENAMED_TO in (caught.value.seen or "")


def test_oversize_fault_is_stopped_by_the_fetch_cap(mirror: ReplayMirror) -> None:
    from returnwatch.fetch import ResponseTooLarge, fetch

    mirror.set_fault(SOURCE, "oversize")
    with pytest.raises(ResponseTooLarge):
        fetch(
            mirror.base_url(SOURCE) + page_path(2020),
            source=SOURCE,
            allowed_hosts=["127.0.0.1"],
            max_bytes=5_000_000,
            timeout=10,
            retries=0,
        )
    with httpx.stream("GET", mirror.base_url(SOURCE) + page_path(2020), timeout=10) as response:
        assert "content-length" not in response.headers
        size = sum(len(chunk) for chunk in response.iter_bytes())
    assert size > OVERSIZE_BYTES


def test_a_fault_for_one_request_then_the_page_again(mirror: ReplayMirror) -> None:
    mirror.set_fault(SOURCE, "html_error", times=1)
    assert "maintenance" in get(mirror, 2019).text
    assert hhs_monthly.parse(get(mirror, 2019).content, file="ok").fiscal_year == 2019
