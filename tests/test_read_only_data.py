"""Commands that only read (`status`, `summary`, `alerts list`, `alerts show`) never take the
warehouse's write lock and work on a read-only data folder; `ingest` on a read-only folder, a
full disk or a held lock says so in one line and exits 1.

How a read-only folder and a full disk are made: the tests run as root, which ignores
permission bits, so chmod would prove nothing. Instead each run goes into a new user and mount
namespace (`unshare -rm`, no privilege needed) where the data folder is bind-mounted read-only
(writes fail with EROFS, as on a read-only volume) or replaced by a small tmpfs (writes fail
with ENOSPC, as on a full disk). Inside, one Python process runs the commands through click's
test runner, so an exception that escaped a command would show up as `result.exception`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from returnwatch import settings, transform, warehouse
from returnwatch.cli import main
from returnwatch.monitor import run_monitors
from tests.conftest import REAL_HHS_CSV
from tests.monitor.hhs_history import HhsHistory, at

# Runs each command in-process and prints {command: [exit code, output, escaped exception]}.
DRIVER = """
import json, sys
from click.testing import CliRunner
from returnwatch.cli import main
results = {}
for args in json.loads(sys.argv[1]):
    result = CliRunner().invoke(main, args)
    escaped = result.exception
    if isinstance(escaped, SystemExit):
        escaped = None
    results[" ".join(args)] = [result.exit_code, result.output, repr(escaped) if escaped else None]
print(json.dumps(results))
"""

# The data folder (argument 1) read-only, or (with SIZE set) a tmpfs of that size.
READ_ONLY = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
FULL = (
    'mount -t tmpfs -o size="$SIZE" tmpfs "$1" && '
    '{ [ -z "$FILL" ] || dd if=/dev/zero of="$1/filler" bs=16k 2>/dev/null; true; } && '
    'shift && exec "$@"'
)


def _namespaces_work() -> bool:
    try:
        return (
            subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=30).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_namespaces = pytest.mark.skipif(
    not _namespaces_work(), reason="unprivileged user+mount namespaces (unshare -rm) unavailable"
)


def run_in_namespace(
    setup: str, data: Path, commands: list[list[str]], **env: str
) -> dict[str, list]:
    done = subprocess.run(
        [
            "unshare",
            "-rm",
            "sh",
            "-c",
            setup,
            "sh",
            str(data),
            sys.executable,
            "-c",
            DRIVER,
            json.dumps(commands),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
    }


@pytest.fixture
def late_source(data_dir: Path) -> str:
    """Real HHS rows through 10 June 2025 and the real gap after them, judged on 17 June
    (late, one open incident), published as the snapshot. Returns the incident id."""
    with warehouse.session() as con:
        hhs = HhsHistory(con)
        hhs.publish("2025-06-10", received=at("2025-06-11", 15))
        for day in ("2025-06-12", "2025-06-13", "2025-06-16", "2025-06-17"):
            hhs.check(at(day, 15), "unchanged")
        run_monitors(run_at=at("2025-06-17"), run_id="test/read-only", con=con)
        [incident_id] = con.execute(
            "select incident_id from monitor.incidents where state = 'open'"
        ).fetchone()
    transform.publish_snapshot()
    return incident_id


def one_error_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), output
    assert "Traceback" not in output
    return lines[0]


@needs_namespaces
def test_read_only_commands_work_on_a_read_only_data_folder(
    data_dir: Path, late_source: str
) -> None:
    before = listing(data_dir)
    results = run_in_namespace(
        READ_ONLY,
        data_dir,
        [
            ["status"],
            ["status", "--json"],
            ["summary"],
            ["summary", "--json"],
            ["alerts", "list"],
            ["alerts", "list", "--json"],
            ["alerts", "show", late_source[:10]],
            ["alerts", "show", late_source, "--json"],
            ["ingest", "hhs_uc_daily", str(REAL_HHS_CSV), "--vintage", "2025-12-12"],
        ],
    )
    assert all(escaped is None for _, _, escaped in results.values()), results

    code, output, _ = results["status"]
    assert code == 1 and "LATE" in output and "needs attention: hhs_uc_daily: late" in output
    assert json.loads(results["status --json"][1])["attention"][0] == "hhs_uc_daily: late"
    code, output, _ = results["summary"]
    assert code == 0 and "raw.hhs_uc_daily" in output
    assert results["summary --json"][0] == 0
    code, output, _ = results["alerts list"]
    assert code == 0 and late_source in output
    assert [
        i["incident_id"] for i in json.loads(results["alerts list --json"][1])["incidents"]
    ] == [late_source]
    code, output, _ = results[f"alerts show {late_source[:10]}"]
    assert code == 0 and late_source in output and "hhs_uc_daily" in output
    assert (
        json.loads(results[f"alerts show {late_source} --json"][1])["incident"]["state"] == "open"
    )

    code, output, _ = results[f"ingest hhs_uc_daily {REAL_HHS_CSV} --vintage 2025-12-12"]
    assert code == 1
    assert "is on a read-only file system" in one_error_line(output)
    assert listing(data_dir) == before  # nothing created or touched (no lock or WAL file)


@needs_namespaces
@pytest.mark.parametrize(
    "size, fill, where",
    [
        ("256k", "1", "the archive"),  # no room at all: the archive's write fails
        ("150k", "", "the warehouse commit"),  # room for the archive, not for the load's WAL
    ],
)
def test_ingest_on_a_full_disk_says_so_in_one_line(
    data_dir: Path, size: str, fill: str, where: str
) -> None:
    results = run_in_namespace(
        FULL,
        data_dir,
        [
            ["ingest", "hhs_uc_daily", str(REAL_HHS_CSV), "--vintage", "2025-12-12"],
            ["sql", "--live", "--csv", "select count(*) as files from raw.files"],
        ],
        SIZE=size,
        FILL=fill,
    )
    code, output, escaped = results[f"ingest hhs_uc_daily {REAL_HHS_CSV} --vintage 2025-12-12"]
    assert escaped is None and code == 1
    line = one_error_line(output)
    assert f"the disk holding the data folder {data_dir} is full" in line, where
    # Nothing was loaded: no warehouse at all, or one without the file.
    code, output, _ = results["sql --live --csv select count(*) as files from raw.files"]
    assert "no warehouse" in output or output.splitlines()[-1] == "0", output


HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("held", flush=True)
sys.stdin.readline()
"""


@pytest.fixture
def writer_holds_the_lock(late_source: str):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(settings.warehouse_path())],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    yield late_source
    holder.stdin.close()
    holder.wait(timeout=60)


def test_ingest_with_the_lock_held_says_so_in_one_line(
    writer_holds_the_lock: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETURNWATCH_LOCK_WAIT_SECONDS", "0.5")
    result = CliRunner().invoke(
        main, ["ingest", "hhs_uc_daily", str(REAL_HHS_CSV), "--vintage", "2025-12-12"]
    )
    assert result.exit_code == 1 and not isinstance(result.exception, duckdb_errors())
    line = one_error_line(result.output)
    assert "is locked by another process" in line and "for more than 0 s" in line


def duckdb_errors() -> tuple[type[BaseException], ...]:
    import duckdb

    return (duckdb.Error, warehouse.WarehouseLocked)


def test_read_only_commands_read_the_snapshot_while_a_writer_holds_the_file(
    writer_holds_the_lock: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(warehouse, "READ_WAIT_SECONDS", 0.2)
    runner = CliRunner()
    listed = runner.invoke(main, ["alerts", "list"])
    assert listed.exit_code == 0 and writer_holds_the_lock in listed.output
    shown = runner.invoke(main, ["status"])
    assert shown.exit_code == 1 and "LATE" in shown.output
    assert f"snapshot {settings.snapshot_path()} (the live file is busy" in shown.output
    assert runner.invoke(main, ["summary"]).exit_code == 0
