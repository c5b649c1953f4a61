"""Writes the committed HHS monthly page fixture from the replay mirror's hhs.gov site.

``tests/fixtures/hhs/latest-uc-data-fy2021_as_of_2021-03-11_constructed.html`` is the mirror's
FY2021 page as of March 11, 2021 (the day the Post's copy was committed): the figures are the
real ones of ``include/replay/hhs_gov/wapo_fy2018_fy2021.csv``, the HTML around them is the
mirror's reconstruction of HHS's layout. It is committed so the parser tests pin one input
that does not move when the mirror's rendering changes.

Regenerate with ``.venv/bin/python -m tests.support.hhs_monthly_page``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from returnwatch import settings
from returnwatch_replay.sites import hhs_gov

FIXTURE = (
    settings.PROJECT_DIR
    / "tests"
    / "fixtures"
    / "hhs"
    / "latest-uc-data-fy2021_as_of_2021-03-11_constructed.html"
)


def write_fixture(path: Path = FIXTURE) -> Path:
    site = hhs_gov.make_site(settings.replay_data_dir())
    page = site.page(2021, dt.date(2021, 3, 11))
    assert page is not None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(page[0])
    return path


if __name__ == "__main__":
    written = write_fixture()
    print(f"{written.relative_to(settings.PROJECT_DIR)} ({written.stat().st_size} bytes)")
