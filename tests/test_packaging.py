"""What `pip install returnwatch` (and the production image) gets: the product, no test doubles.

The replay mirror, the demo driver, the benchmark series and the writers of constructed files
are development tools (``replay/``, installed by the dev dependency group): the wheel must hold
none of them, nor require the libraries only they use (xlwt writes the mirror's workbooks,
fpdf2 the constructed PDFs).
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEV_ONLY_MODULES = ("replay", "demo", "replay_sites", "series", "example")
DEV_ONLY_REQUIREMENTS = {"xlwt", "fpdf2", "returnwatch-replay", "pytest", "playwright"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    # hatchling directly: no isolated build environment to download (the dev group has it).
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("returnwatch-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_holds_the_runtime_package_only(wheel: zipfile.ZipFile) -> None:
    modules = [name for name in wheel.namelist() if name.endswith(".py")]
    assert (
        "returnwatch/cli.py" in modules
        and "returnwatch/sources/cbp_encounters_monthly/__init__.py" in modules
    )
    assert all(name.startswith("returnwatch/") for name in modules), modules
    stems = {Path(name).stem for name in modules} | {Path(name).parent.name for name in modules}
    assert not stems & set(DEV_ONLY_MODULES), sorted(stems & set(DEV_ONLY_MODULES))
    assert not [name for name in wheel.namelist() if "include/replay" in name]


def test_the_wheel_requires_no_development_library(wheel: zipfile.ZipFile) -> None:
    (metadata,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    headers = Parser().parsestr(wheel.read(metadata).decode())
    required = {
        line.split(";")[0]
        .split("<")[0]
        .split(">")[0]
        .split("=")[0]
        .split("!")[0]
        .split("~")[0]
        .strip()
        .lower()
        for line in headers.get_all("Requires-Dist", [])
    }
    assert "apache-airflow" in required and "xlrd" in required
    assert not required & DEV_ONLY_REQUIREMENTS, sorted(required & DEV_ONLY_REQUIREMENTS)
    assert headers["License-Expression"] == "Apache-2.0"


def test_the_runtime_package_never_imports_the_replay_package() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "include" / "returnwatch").rglob("*.py")
        if "import returnwatch_replay" in path.read_text()
        or "from returnwatch_replay" in path.read_text()
    ]
    assert offenders == []
