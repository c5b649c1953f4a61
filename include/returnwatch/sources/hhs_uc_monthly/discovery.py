"""Finding HHS's fiscal-year pages: one address per fiscal year, from the configured first
fiscal year to the run's; a year whose page does not exist (404) is reported, not guessed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from returnwatch.sources.base import GetPage, Link
from returnwatch.sources.errors import LayoutChanged
from returnwatch.sources.hhs_uc_monthly.fy_page import fiscal_year_of
from returnwatch.sources.hhs_uc_monthly.schema import (
    DEFAULT_FIRST_FISCAL_YEAR,
    KIND_FY_PAGE,
    PUBLISHER_TZ,
    SOURCE,
)

log = logging.getLogger(__name__)


def discover(
    get_page: GetPage, *, landing_url: str, run_at: dt.datetime, options: Mapping[str, Any]
) -> list[Link]:
    """The FY pages that exist, FY ``options['first_fiscal_year']`` .. the run's FY.

    ``landing_url`` is the configured pattern with ``{fiscal_year}`` in it: HHS's documented,
    stable address per fiscal year, not a link the publisher changes. Each page is asked for
    once (``get_page``): a 404 is a fiscal year whose first month is not out yet (October and
    early November) or a page that is gone; it is logged and left out, since failing the
    whole run for it would stop the other years. Every other fetch error propagates. If no
    page exists at all, the site has moved: ``LayoutChanged``.
    """
    from returnwatch.fetch import HTTPStatusError

    if "{fiscal_year}" not in landing_url:
        raise ValueError(
            f"{SOURCE}: the configured path must contain '{{fiscal_year}}', got "
            f"{landing_url!r} (config/sources.yaml)"
        )
    first = int(options.get("first_fiscal_year", DEFAULT_FIRST_FISCAL_YEAR))
    current = fiscal_year_of(run_at.astimezone(PUBLISHER_TZ).date())
    links: list[Link] = []
    missing: list[int] = []
    for fiscal_year in range(first, current + 1):  # bounded: one request per fiscal year
        url = landing_url.replace("{fiscal_year}", str(fiscal_year))
        try:
            get_page(url)
        except HTTPStatusError as exc:
            if exc.status != 404:
                raise
            missing.append(fiscal_year)
            continue
        links.append(
            Link(
                url=url,
                kind=KIND_FY_PAGE,
                label=f"Latest UC Data – FY{fiscal_year}",
                period=f"FY{fiscal_year}",
                extra={"fiscal_year": str(fiscal_year)},
            )
        )
    if missing:
        log.warning("%s: no page (HTTP 404) for FY %s", SOURCE, ", ".join(map(str, missing)))
    if not links and current >= first:
        raise LayoutChanged(
            source=SOURCE,
            file=landing_url,
            problem=f"none of the pages FY{first}..FY{current} exists (HTTP 404)",
            expected="HHS's 'Latest UC Data – FY{YYYY}' pages at the configured address",
            seen=f"404 for FY {', '.join(map(str, missing))}",
        )
    return links
