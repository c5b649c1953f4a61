"""Finding the bulletin's files: the landing page links one tables page per year and section,
and each of those lists the year's workbooks and (section 5) its microdata CSV.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

from returnwatch.sources.base import GetPage, Link
from returnwatch.sources.errors import (
    LayoutChanged,
    refuse_nul,
    refuse_tag_flood,
)
from returnwatch.sources.segob_bulletin_monthly.labels import table_number
from returnwatch.sources.segob_bulletin_monthly.microdata import detect_encoding
from returnwatch.sources.segob_bulletin_monthly.schema import (
    MICRODATA_KIND,
    MICRODATA_NAME,
    PUBLISHER_TZ,
    SOURCE,
    TABLE_BY_NUMBER,
)

log = logging.getLogger(__name__)


# The site answers with an empty page now and then (docs/sources.md C): a page is asked for again
# this many times, with these pauses, before the emptiness counts as a finding.
EMPTY_PAGE_ATTEMPTS = 3
EMPTY_PAGE_PAUSES = (2.0, 5.0)
_PAGES = "CuadrosBOLETIN"


def _decode_page(content: bytes) -> str:
    """Pages are Latin-1 (older ones, and most today), some UTF-8: the bytes decide."""
    if content.startswith(b"\xef\xbb\xbf"):
        return content[3:].decode("utf-8", "replace")
    return content.decode(detect_encoding(content))


def _links(content: bytes, url: str) -> Iterable[tuple[str, str]]:
    from bs4 import BeautifulSoup

    refuse_tag_flood(content, source=SOURCE, file=url, expected="a bulletin page")
    refuse_nul(content, source=SOURCE, file=url, expected="a bulletin page")
    soup = BeautifulSoup(_decode_page(content), "lxml")
    for anchor in soup.find_all("a", href=True):
        href = anchor["href"]
        if isinstance(href, str):  # bs4 gives a list only for multi-valued attributes
            yield href.strip(), " ".join(anchor.get_text(" ").split())


def _get_nonempty(
    get_page: GetPage, url: str, what: str, sleep: Callable[[float], None] = time.sleep
) -> bytes:
    for attempt in range(EMPTY_PAGE_ATTEMPTS):
        content = get_page(url)
        if content.strip():
            return content
        if attempt + 1 < EMPTY_PAGE_ATTEMPTS:
            pause = EMPTY_PAGE_PAUSES[min(attempt, len(EMPTY_PAGE_PAUSES) - 1)]
            log.warning(
                "%s: %s %s came back empty; asking again in %.0f s", SOURCE, what, url, pause
            )
            sleep(pause)
    # Deliberately a finding, not a silent skip: an empty page cannot be told apart from a
    # site that stopped listing its tables, and skipping would hide that year's revisions.
    # The run fails with this message, Airflow retries later, the incident resolves itself
    # on the next file that loads.
    raise LayoutChanged(
        source=SOURCE,
        file=url,
        row=None,
        problem=f"the {what} came back empty {EMPTY_PAGE_ATTEMPTS} times",
        expected="an HTML page listing the bulletin's tables",
        seen="",
    )


def discover(
    get_page: GetPage, *, landing_url: str, run_at: dt.datetime, options: dict[str, Any]
) -> list[Link]:
    """The bulletin's files for the configured years and sections, read off the site's pages.

    The landing page links one ``CuadrosBOLETIN?Anual={YYYY}&Secc={N}`` page per year and
    section; each of those lists the year's workbooks (names drift between years, so the table
    number is read from the link text or the file name) and, in section 5, the year's
    microdata CSV. Years run from ``options['first_year']`` to the current year in Mexico City;
    a year whose page lists no tables yet (early in the year) is normal and gives no links.
    """
    sections = {int(s) for s in options.get("sections", [3, 5])}
    first_year = int(options.get("first_year", 2018))
    this_year = run_at.astimezone(PUBLISHER_TZ).year
    landing = _get_nonempty(get_page, landing_url, "landing page")
    pages: dict[tuple[int, int], str] = {}
    listed = 0
    for href, _text in _links(landing, landing_url):
        if _PAGES.lower() not in href.lower():
            continue
        url = urljoin(landing_url, href)
        query = {k.lower(): v for k, v in parse_qs(urlsplit(url).query).items()}
        try:
            year, section = int(query["anual"][0]), int(query["secc"][0])
        except (KeyError, ValueError, IndexError):
            continue
        listed += 1
        if first_year <= year <= this_year and section in sections:
            pages.setdefault((year, section), url)
    if not pages:
        problem = (
            "the landing page lists no CuadrosBOLETIN pages"
            if not listed
            else f"the landing page lists no tables page for {first_year}-{this_year}, "
            f"sections {sorted(sections)}"
        )
        raise LayoutChanged(
            source=SOURCE,
            file=landing_url,
            row=None,
            problem=problem,
            expected="links to CuadrosBOLETIN?Anual={YYYY}&Secc={N}",
            seen=_decode_page(landing)[:200],
        )
    links: dict[tuple[str, str], Link] = {}
    for (year, section), url in sorted(pages.items()):
        page = _get_nonempty(get_page, url, f"tables page of {year}, section {section}")
        for link in _page_links(page, url, year, section):
            key = (link.kind, link.period or "")
            previous = links.get(key)
            if previous is not None and previous.url != link.url:
                raise LayoutChanged(
                    source=SOURCE,
                    file=url,
                    row=None,
                    problem=f"two files for {link.kind} {link.period}",
                    expected="one workbook per table and year",
                    seen=f"{previous.url} and {link.url}",
                )
            links[key] = link
    return sorted(links.values(), key=lambda link: (link.period or "", link.kind))


def _page_links(page: bytes, page_url: str, year: int, section: int) -> list[Link]:
    found = []
    for href, text in _links(page, page_url):
        url = urljoin(page_url, href)
        parts = urlsplit(url)
        name = parts.path.rsplit("/", 1)[-1]
        micro = MICRODATA_NAME.search(url)
        if micro and "dwnldbd" in parts.path.lower():
            found.append(
                Link(
                    url=url,
                    kind=MICRODATA_KIND,
                    label=text or micro.group(0),
                    period=micro.group(1),
                    extra={"section": str(section), "page": page_url},
                )
            )
            continue
        if not name.lower().endswith((".xls", ".xlsx")):
            continue
        # The file name is what gets downloaded and parsed: its number wins over the text's.
        number = table_number(name) or table_number(text)
        spec = TABLE_BY_NUMBER.get(number or "")
        if spec is None:
            continue
        found.append(
            Link(
                url=url,
                kind=spec.kind,
                label=text or f"Cuadro {number}",
                period=str(year),
                extra={"section": str(section), "table": spec.number, "page": page_url},
            )
        )
    return found
