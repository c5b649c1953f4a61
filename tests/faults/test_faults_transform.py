"""dbt build under faults: the process building the marts is killed (SIGKILL) part-way, with
some models rebuilt and the rest not. The next build must leave every mart exactly as a clean
build of the same raw data does.

The raw layer is the demo's history of real files (``tests/dbt/realdata.py``), loaded once and
copied into two data folders: one built cleanly, one built, killed and built again.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import duckdb
import pytest

from returnwatch import settings, transform, warehouse
from tests.dbt import realdata

KILL_AFTER_NODES = 5
WORKER_TIMEOUT_SECONDS = 300


@pytest.fixture(scope="module")
def raw_history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse file holding only the raw layer of the demo's history."""
    folder = tmp_path_factory.mktemp("raw-history")
    path = folder / "warehouse.duckdb"
    with warehouse.session(path) as con:
        realdata.load_history(con)
    return path


def use_data_dir(monkeypatch: pytest.MonkeyPatch, folder: Path, raw_history: Path) -> None:
    folder.mkdir()
    monkeypatch.setenv("RETURNWATCH_DATA_DIR", str(folder))
    shutil.copyfile(raw_history, settings.warehouse_path())


def marts() -> dict[str, list[tuple[Any, ...]]]:
    with duckdb.connect(str(settings.warehouse_path()), read_only=True) as con:
        names = [
            row[0]
            for row in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts' "
                "ORDER BY 1"
            ).fetchall()
        ]
        return {
            name: con.execute(f'SELECT * FROM marts."{name}" ORDER BY ALL').fetchall()
            for name in names
        }


# Run in a fresh interpreter: dbt's threads and locks do not survive a fork of a process that
# has already run dbt (a forked child hangs).
KILLED_BUILD = textwrap.dedent(f"""
    import os, signal
    from dbt.cli import main as dbt_main
    from returnwatch import transform

    real_runner = dbt_main.dbtRunner
    finished = []

    def kill_part_way(event):
        if event.info.name == "NodeFinished":
            finished.append(event)
            if len(finished) >= {KILL_AFTER_NODES}:
                os.kill(os.getpid(), signal.SIGKILL)

    dbt_main.dbtRunner = lambda: real_runner(callbacks=[kill_part_way])
    transform.dbt_build(quiet=True)
""")


def test_a_build_killed_part_way_is_made_whole_by_the_next_build(
    raw_history: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    transform.ensure_manifest()
    use_data_dir(monkeypatch, tmp_path / "clean", raw_history)
    transform.dbt_build(quiet=True).raise_for_status()
    clean = marts()
    assert clean and all(clean.values())

    use_data_dir(monkeypatch, tmp_path / "crashed", raw_history)
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_BUILD],
        cwd=settings.PROJECT_DIR,
        capture_output=True,
        timeout=WORKER_TIMEOUT_SECONDS,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    assert marts() != clean, "the kill came before the build finished"

    transform.dbt_build(quiet=True).raise_for_status()
    assert marts() == clean
