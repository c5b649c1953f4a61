"""The repository stands alone: nothing in it points to a file its users do not have.

A user clones this repository and nothing else, so a docstring, a provenance note or a doc that
cites a build machine's path, or a design document kept outside the repository, sends them
nowhere. Facts the code relies on live in ``docs/`` (``docs/sources.md``,
``docs/architecture.md``, ``docs/methodology.md``), and every relative link in the Markdown
files resolves to a file of the repository.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# A path on a developer's or CI's machine, or a document that is not in the repository.
OUTSIDE = re.compile(
    r"/work/(?!models/PoliticaMigratoria)"  # SEGOB's own site has a /work/models/... path
    r"|\.\./shared\b|/tmp/rw-"
    r"|(?<![\w/])(?:SOURCES|DESIGN|STYLE)\.md"
)
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")


def tracked_text_files() -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    files = []
    for name in names:
        path = ROOT / name
        if name.endswith(".lock") or not path.is_file():
            continue
        if b"\0" in path.read_bytes()[:8192]:  # binary: images, workbooks, PDFs
            continue
        files.append(path)
    return files


def test_no_file_points_outside_the_repository() -> None:
    offenders = []
    for path in tracked_text_files():
        if path == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert offenders == [], "lines pointing outside the repository:\n" + "\n".join(offenders)


def test_the_pattern_catches_what_it_is_for() -> None:
    for line in ["see /work/shared/SOURCES.md", "(``../shared/real-data``)", "DESIGN.md says"]:
        assert OUTSIDE.search(line), line
    for line in [
        "see docs/sources.md section B",
        "/work/models/PoliticaMigratoria/CEM/Estadisticas/x.xls",
    ]:
        assert not OUTSIDE.search(line), line


@pytest.mark.parametrize(
    "markdown",
    sorted(p for p in tracked_text_files() if p.suffix == ".md"),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_relative_links_in_markdown_resolve(markdown: Path) -> None:
    broken = []
    for target in MARKDOWN_LINK.findall(markdown.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a URL or an anchor in the same page
        relative = target.split("#", 1)[0]
        if relative and not (markdown.parent / relative).exists():
            broken.append(target)
    assert broken == [], f"{markdown.relative_to(ROOT)} links to files that do not exist: {broken}"
