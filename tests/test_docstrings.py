"""Module docstrings say what the module owns, in at most 15 lines; the reasons live in docs/.

Every module of the product (``include/returnwatch``), the DAG files (``dags/``) and the test
doubles beside them (``replay/``) counts. A docstring that grew into an essay moves its
explanation to ``docs/`` (``docs/internals.md``, ``docs/replay.md`` or the guide it belongs to)
and links the section as ``docs/<file>.md#<anchor>``; every such link must resolve.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 15
FOLDERS = ("include/returnwatch", "dags", "replay")

DOCS_LINK = re.compile(r"\b(docs/[\w./-]+\.md)#([\w-]+)")


def modules() -> list[Path]:
    found = [p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py")]
    return sorted(p for p in found if ".venv" not in p.parts and "build" not in p.parts)


def docstring(path: Path) -> str | None:
    return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")), clean=False)


def lines_of(text: str | None) -> int:
    return len(text.strip("\n").splitlines()) if text else 0


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, - for spaces."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    headings = re.findall(r"^#+ (.+)$", doc.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {github_anchor(h) for h in headings}


def test_module_docstrings_are_at_most_15_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): lines_of(docstring(p))
        for p in modules()
        if lines_of(docstring(p)) > MAX_LINES
    }
    assert long == {}, f"module docstrings over {MAX_LINES} lines (move the essay to docs/): {long}"


def test_docs_sections_that_docstrings_cite_exist() -> None:
    broken = []
    cited = 0
    for path in modules():
        for doc, anchor in DOCS_LINK.findall(docstring(path) or ""):
            cited += 1
            target = ROOT / doc
            if not target.is_file() or anchor not in anchors(target):
                broken.append(f"{path.relative_to(ROOT)}: {doc}#{anchor}")
    assert cited > 0
    assert broken == [], "docstrings cite sections that do not exist:\n" + "\n".join(broken)


def test_the_checks_see_what_they_are_for(tmp_path: Path) -> None:
    assert github_anchor("Monitor: the data monitors' engine") == "monitor-the-data-monitors-engine"
    assert github_anchor("Judging once: the `monitor.judged` mark") == (
        "judging-once-the-monitorjudged-mark"
    )
    essay = tmp_path / "essay.py"
    essay.write_text('"""' + "a line\n" * (MAX_LINES + 1) + '"""\n')
    assert lines_of(docstring(essay)) == MAX_LINES + 1
    short = tmp_path / "short.py"
    short.write_text('"""One line.\n\nDetails: docs/internals.md#fetch.\n"""\n')
    assert lines_of(docstring(short)) == 3
    assert DOCS_LINK.findall(docstring(short) or "") == [("docs/internals.md", "fetch")]
