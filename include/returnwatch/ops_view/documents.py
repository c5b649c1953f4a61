"""The project's operating docs (``docs/*.md``) as HTML pages inside the Airflow UI.

DAG docs and alerts link the runbook by section (``docs/runbook.md#freshness_late``). On
GitHub those links work as written; in the Airflow UI a relative link would resolve against the
UI's own routes, so the returnwatch plugin serves the same Markdown files at
``<api base path>/returnwatch/docs/<name>.md`` and ``ui_links()`` rewrites DAG docs to point
there. Headings get GitHub's anchors, so one ``#section`` works in both places.

markdown-it-py renders (CommonMark + tables, raw HTML off: a doc can never inject markup).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from returnwatch import settings

# The docs the UI may serve: the committed Markdown files of docs/, nothing else.
DOCS = ("runbook.md", "alerts.md", "operations.md")
URL_PATH = "/returnwatch/docs"
_REPO_LINK = re.compile(r"\]\(docs/(" + "|".join(re.escape(d) for d in DOCS) + r")")


def docs_dir() -> Path:
    return settings.PROJECT_DIR / "docs"


def github_anchor(heading: str) -> str:
    """GitHub's id for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def api_root_path() -> str:
    """The path Airflow's API server is served under (``[api] base_url``), without a trailing
    slash ("" at the root): links into the UI and the plugin's pages must include it."""
    from urllib.parse import urlsplit

    from airflow.configuration import conf

    return urlsplit(conf.get("api", "base_url", fallback="") or "/").path.rstrip("/")


def ui_links(doc_md: str, *, api_base_path: str | None = None) -> str:
    """A DAG's doc_md with its ``docs/<name>.md`` links pointing at the plugin's copy.

    ``api_base_path``: the path of Airflow's ``[api] base_url`` (default: read from Airflow's
    configuration).
    """
    base = api_root_path() if api_base_path is None else api_base_path.rstrip("/")
    return _REPO_LINK.sub(rf"]({base}{URL_PATH}/\1", doc_md)


@functools.cache
def _renderer() -> Any:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")

    def heading_open(renderer: Any, tokens: list, idx: int, options: Any, env: dict) -> str:
        # GitHub numbers repeated anchors: "x", "x-1", "x-2".
        slug = github_anchor(tokens[idx + 1].content)
        seen = env.setdefault("anchors", {})
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        tokens[idx].attrSet("id", slug if count == 0 else f"{slug}-{count}")
        return renderer.renderToken(tokens, idx, options, env)

    md.add_render_rule("heading_open", heading_open)
    return md


def render(name: str) -> tuple[str, str]:
    """(title, HTML body) of ``docs/<name>``; KeyError for a name that is not served."""
    if name not in DOCS:
        raise KeyError(name)
    text = (docs_dir() / name).read_text(encoding="utf-8")
    title = next(
        (line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("# ")), name
    )
    return title, _renderer().render(text, {})
