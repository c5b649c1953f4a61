"""Finding CBP's encounter CSVs: their links are read off the landing page (the upload folder
and name change with every release), never built from a pattern.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from returnwatch.sources.base import GetPage, Link
from returnwatch.sources.cbp_encounters_monthly.schema import RAW_TABLES, SOURCE
from returnwatch.sources.errors import (
    LayoutChanged,
    refuse_nul,
    refuse_tag_flood,
)

# File names as CBP uploads them (the folder before them changes with every upload):
#   nationwide-encounters-fy22-fy25-may-aor.csv, nationwide-encounters-fy21-fy24-state.csv,
#   sbo-encounters-fy23-fy26-apr.csv
_FILE_NAME = re.compile(
    r"^(?:nationwide-encounters-fy(?P<a>\d{2})-fy(?P<b>\d{2})(?:-(?P<mon>[a-z]{3}))?-(?P<kind>aor|state)"
    r"|sbo-encounters-fy(?P<sa>\d{2})-fy(?P<sb>\d{2})(?:-(?P<smon>[a-z]{3}))?)\.csv$",
    re.IGNORECASE,
)
# The upload folder: /sites/default/files/2025-06/... or, in older uploads,
# /sites/default/files/assets/documents/2023-Nov/...
_FOLDER = re.compile(r"/(\d{4}-(?:\d{2}|[A-Za-z]{3}))/[^/]+$")


def discover(
    get_page: GetPage,
    *,
    landing_url: str,
    run_at: dt.datetime,
    options: Mapping[str, Any] | None = None,
) -> list[Link]:
    """The encounter CSVs the landing page links, in page order (CBP lists the newest first).

    Every recognised file is returned (the current window and any older window still
    listed), so a figure revised in an older window's file is seen. ``options``:
    ``kinds`` limits the layouts fetched (default: all of ``RAW_TABLES``). A page that links no
    recognisable CSV means CBP changed its page: ``LayoutChanged``.
    """
    from bs4 import BeautifulSoup

    options = options or {}
    wanted = set(options.get("kinds") or RAW_TABLES)
    unknown_kinds = wanted - set(RAW_TABLES)
    if unknown_kinds:
        raise ValueError(
            f"options.kinds {sorted(unknown_kinds)} unknown; known: {sorted(RAW_TABLES)}"
        )
    page = get_page(landing_url)
    refuse_tag_flood(
        page, source=SOURCE, file=landing_url, expected="CBP's nationwide encounters page"
    )
    refuse_nul(page, source=SOURCE, file=landing_url, expected="CBP's nationwide encounters page")
    soup = BeautifulSoup(page, "lxml")
    links: list[Link] = []
    seen_urls: set[str] = set()
    csv_hrefs: list[str] = []
    for anchor in soup.find_all("a", href=True):
        href = anchor["href"]
        if not isinstance(href, str):  # bs4 gives a list only for multi-valued attributes
            continue
        href = href.strip()
        url = urljoin(landing_url, href)
        path = unquote(urlsplit(url).path)
        name = path.rsplit("/", 1)[-1]
        if not name.lower().endswith(".csv"):
            continue
        csv_hrefs.append(href)
        match = _FILE_NAME.match(name)
        if match is None or url in seen_urls:
            continue
        kind = (match.group("kind") or "sbo").lower()
        if kind not in wanted:
            continue
        seen_urls.add(url)
        first = int(match.group("a") or match.group("sa")) + 2000
        last = int(match.group("b") or match.group("sb")) + 2000
        through = (match.group("mon") or match.group("smon") or "").upper()
        folder = _FOLDER.search(path)
        links.append(
            Link(
                url=url,
                kind=kind,
                label=" ".join(anchor.get_text(" ").split()) or name,
                # The window, not the month: next month's file of the same window replaces this
                # one, so an incident about a bad file is resolved by the next good one.
                period=f"FY{first}-FY{last}",
                extra={
                    "file_name": name,
                    "folder": folder.group(1) if folder else "",
                    "first_fiscal_year": str(first),
                    "last_fiscal_year": str(last),
                    "through_month": through,
                },
            )
        )
    if not links:
        text = " ".join(soup.get_text(" ").split())[:160] if page.strip() else ""
        raise LayoutChanged(
            source=SOURCE,
            file=landing_url,
            row=None,
            problem="the landing page links no recognisable encounters CSV "
            f"(of kinds {sorted(wanted)}); CBP may have changed the page",
            expected="links to nationwide-encounters-fy{a}-fy{b}[-{mon}]-aor.csv / -state.csv "
            "or sbo-encounters-fy{a}-fy{b}[-{mon}].csv",
            seen=("CSV links: " + ", ".join(csv_hrefs))
            if csv_hrefs
            else (f"no CSV links; page text: {text}" if text else "an empty page"),
        )
    return links
