"""The quality gates are wired where they run, and the type check can fail.

CI (``.ci/run``) runs ``make lint`` before ``make test``; ``make lint`` runs ruff format, ruff
check, mypy and sqlfluff; the pre-commit hooks run the same tools. A gate that quietly drops out
of that chain (a recipe line removed, mypy pointed at nothing, an override that ignores errors)
would let CI pass without checking, so these tests read the wiring rather than trust it, and
run mypy on a small module with a type error to show the configured checker rejects it.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def ci_commands() -> list[str]:
    """The commands of ``.ci/run``, comments and blank lines dropped."""
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def make_dry_run(target: str) -> list[list[str]]:
    """The commands ``make <target>`` would run (``make -n``: printed, not executed)."""
    out = subprocess.run(
        ["make", "-n", "--no-print-directory", target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [shlex.split(line) for line in out.splitlines() if line.strip()]


def tool_calls(commands: list[list[str]], tool: str) -> list[list[str]]:
    """The calls of ``tool`` among ``commands``, from the tool's name on (``uv run`` dropped)."""
    return [cmd[cmd.index(tool) :] for cmd in commands if tool in cmd]


def test_ci_stops_on_a_failing_gate_before_the_tests() -> None:
    commands = ci_commands()
    assert "set -euo pipefail" in commands, "without set -e a failing `make lint` is ignored"
    assert "make lint" in commands and "make test" in commands
    assert commands.index("make lint") < commands.index("make test")


def test_make_lint_runs_every_gate() -> None:
    lint = make_dry_run("lint")
    assert ["ruff", "format", "--check"] == tool_calls(lint, "ruff")[0][:3]
    assert any(call[:2] == ["ruff", "check"] for call in tool_calls(lint, "ruff"))
    assert tool_calls(lint, "sqlfluff") == [["sqlfluff", "lint", "dbt_project/models"]]
    # mypy with no paths: it checks what pyproject.toml's [tool.mypy] says, as typecheck does.
    assert tool_calls(lint, "mypy") == [["mypy"]]
    assert tool_calls(make_dry_run("typecheck"), "mypy") == [["mypy"]]


def test_mypy_config_covers_the_package_and_the_dags() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert config["files"] == ["include/returnwatch", "dags"]
    assert config["check_untyped_defs"] is True
    assert not config.get("ignore_errors", False)
    for override in config.get("overrides", []):
        assert not override.get("ignore_errors", False), f"errors ignored in {override}"


def test_pre_commit_runs_the_same_gates() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert {"ruff-format", "ruff-check", "mypy", "sqlfluff"} <= set(hooks)
    mypy = hooks["mypy"]
    # No file names passed: mypy checks the configured trees, as in CI, not the staged files.
    assert mypy["entry"] == ".venv/bin/mypy"
    assert mypy["pass_filenames"] is False


def test_the_configured_mypy_rejects_a_type_error_in_an_untyped_function(
    tmp_path: Path,
) -> None:
    # An unannotated function body is only checked with check_untyped_defs: the setting that
    # makes the gate see most of the DAG code.
    bad = tmp_path / "bad_module.py"
    bad.write_text("def untyped():\n    return 1 + 'one'\n", encoding="utf-8")
    good = tmp_path / "good_module.py"
    good.write_text("def untyped():\n    return 1 + 1\n", encoding="utf-8")

    def mypy(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")]
            + ["--cache-dir", str(tmp_path / "cache"), str(path)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )

    rejected = mypy(bad)
    assert rejected.returncode == 1, rejected.stdout + rejected.stderr
    assert 'Unsupported operand types for + ("int" and "str")' in rejected.stdout
    accepted = mypy(good)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
