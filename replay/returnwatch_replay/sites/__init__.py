"""The replay mirror's per-publisher sites (healthdata.gov's lives in ``replay.py``).

Each module here serves one source's pages and files, under ``/<source>/...`` on the mirror,
in the publisher's real layout, from real data shipped in ``include/replay/``. A site is an
object with:

- ``name``: the source key (the mirror serves it at ``/<name>``);
- ``is_data(path) -> bool``: whether ``path`` is a data file (content faults such as
  ``html_error``, ``empty``, ``truncated``, ``renamed_column``, ``oversize`` apply only there;
  ``http_500``, ``http_429`` and ``slow`` hit every page);
- ``handle(path, query, headers, as_of, fault) -> replay.Response``: the answer as the site
  stood on ``as_of`` (a file not yet published is a 404; a page lists only what was published).

Each module exposes ``make_site(data_dir: Path)``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

SITE_MODULES = ("cbp", "segob", "hhs_gov")


def make_sites(data_dir: Path) -> list[Any]:
    return [
        importlib.import_module(f"returnwatch_replay.sites.{name}").make_site(data_dir)
        for name in SITE_MODULES
    ]
