"""The YAML files in config/: each validated by exactly one model, and a mistake named precisely.

A file checked by several partial models drifts: one model accepts a key another never reads,
and a typo in a section nobody validates passes silently. So every ``config/*.yaml`` is read
through ``config.load_yaml`` by exactly one model that covers all of it, and nothing else in
the product parses YAML. A mistake is reported with the file, the line, the key path and what
was expected.
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest
from pydantic import BaseModel

from returnwatch import config, settings
from returnwatch.alerts import delivery
from returnwatch.monitor import anomalies, engine, figures, freshness, monitors_config, rules

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = [ROOT / "include" / "returnwatch", ROOT / "dags"]


def _loads() -> dict[str, set[str]]:
    """config file name -> the models ``load_yaml`` is called with for it, read from the source."""
    found: dict[str, set[str]] = {}
    for folder in PRODUCT:
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name != "load_yaml":
                    continue
                file, model = node.args[0], node.args[1]
                assert isinstance(file, ast.Constant), f"{path}: load_yaml with a computed name"
                assert isinstance(model, ast.Name), f"{path}: load_yaml with a computed model"
                found.setdefault(file.value, set()).add(model.id)
    return found


def test_every_config_file_is_read_by_exactly_one_model() -> None:
    shipped = {p.name for p in (ROOT / "config").glob("*.yaml")}
    loads = _loads()
    assert set(loads) == shipped, "every config/*.yaml is loaded, and only those"
    several = {name: models for name, models in loads.items() if len(models) != 1}
    assert not several, f"files validated by more than one model: {several}"


def test_nothing_else_in_the_product_parses_yaml() -> None:
    readers = sorted(
        str(path.relative_to(ROOT))
        for folder in PRODUCT
        for path in folder.rglob("*.py")
        if re.search(r"^\s*(import yaml|from yaml import)", path.read_text(), re.MULTILINE)
    )
    assert readers == ["include/returnwatch/config.py"]


def test_each_model_validates_its_whole_shipped_file() -> None:
    assert config.sources()
    cfg = monitors_config.load()
    assert delivery.alerts_config().channels
    # Each section comes from the one model, and each monitor reads it from there.
    assert freshness.rules() is cfg.freshness
    assert anomalies.load_config() is cfg.anomalies
    assert rules.load_rules() is cfg.rules
    assert engine.load_revisions_config() is cfg.revisions
    assert figures.load_figures() is cfg.figures
    registered = {name: model.rpartition(".")[2] for name, model in config.MODELS.items()}
    assert registered == {name: models.pop() for name, models in _loads().items()}


def test_a_second_model_for_a_file_is_refused() -> None:
    monitors_config.load()

    class FreshnessOnly(BaseModel):
        freshness: dict[str, object]

    with pytest.raises(config.ConfigError, match="monitors.yaml is validated by .*MonitorsFile"):
        config.load_yaml("monitors.yaml", FreshnessOnly)


SHIPPED = (ROOT / "config" / "monitors.yaml").read_text()


def _line_of(text: str, needle: str, after: str = "") -> int:
    """The line ``needle`` is on, its first occurrence from where ``after`` is."""
    return text[: text.index(needle, text.index(after))].count("\n") + 1


def _line_starting(text: str, key: str) -> int:
    """The first line that starts with ``key`` (after its indentation)."""
    found = re.search(rf"^ *{re.escape(key)}", text, re.MULTILINE)
    assert found
    return text[: found.start()].count("\n") + 1


# (what is wrong, the text replaced, its replacement, the key reported (its line is the error's),
# the key path and the expectation named)
MISTAKES = [
    (
        "a misspelt key",
        "    late_after_missed: 3     #",
        "    late_after_misssed: 3     #",
        "late_after_misssed:",
        "freshness.hhs_uc_daily.late_after_misssed: Extra inputs are not permitted",
    ),
    (
        "a word where a number goes",
        "      release_day: 15\n      lag_months: 1\n      grace_days: 7",
        "      release_day: mid-month\n      lag_months: 1\n      grace_days: 7",
        "release_day:",
        "freshness.cbp_encounters_monthly.calendar.release_day: Input should be a valid integer,"
        " unable to parse string as an integer (got 'mid-month')",
    ),
    (
        "a number out of range",
        "  tolerance: 0.02",
        "  tolerance: -0.02",
        "tolerance:",
        "revisions.tolerance: Input should be greater than or equal to 0 (got -0.02)",
    ),
    (
        "a misspelt detector setting",
        "        absolute_floor: 0.10\n",
        "        absolute_flor: 0.10\n",
        "detector:",
        "anomalies.metrics.mexico_uc_return_rate.detector: Value error, unknown detector "
        "setting(s) ['absolute_flor']",
    ),
    (
        "a bad date in a list",
        "      - from: 2021-01-01\n        until: 2021-01-31",
        "      - from: 2021-01-01\n        until: end of January",
        "until:",
        "rules.uc_expelled_after_pjes_order.contested[0].until: Input should be a valid date",
    ),
    (
        "an unknown section",
        "revisions:\n  tolerance",
        "revision:\n  tolerance",
        "revision:",
        "revision: Extra inputs are not permitted",
    ),
    (
        "a figure naming no monitored series",
        "  cbp_uc_encounters:encounters:\n",
        "  cbp_uc_encounter:encounters:\n",
        "figures:",
        "figures: Value error, ['cbp_uc_encounter:encounters'] name no value column of "
        "anomalies.metrics",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "key", "expected"),
    [m[1:] for m in MISTAKES],
    ids=[m[0] for m in MISTAKES],
)
def test_a_mistake_in_monitors_yaml_names_file_line_key_path_and_expectation(
    tmp_path: Path, old: str, new: str, key: str, expected: str
) -> None:
    assert old in SHIPPED
    broken = SHIPPED.replace(old, new, 1)
    (tmp_path / "monitors.yaml").write_text(broken)
    # The line of the key reported: in the changed text, or the section it sits in.
    line = _line_of(broken, key, after=new) if key in new else _line_starting(broken, key)
    with pytest.raises(config.ConfigError) as error:
        monitors_config.load(tmp_path)
    message = str(error.value)
    assert f"config file {tmp_path / 'monitors.yaml'} does not match its schema" in message
    assert f"monitors.yaml line {line}, {expected}" in message, message


def test_a_missing_key_is_named_at_its_parent(tmp_path: Path) -> None:
    old = "      label: CBP encounters (state files)\n"
    broken = SHIPPED.replace(old, "", 1)
    (tmp_path / "monitors.yaml").write_text(broken)
    line = _line_of(broken, "    raw.cbp_encounters_state:")
    with pytest.raises(config.ConfigError) as error:
        monitors_config.load(tmp_path)
    assert (
        f"monitors.yaml line {line}, revisions.tables.raw.cbp_encounters_state.label: "
        "Field required"
    ) in str(error.value)


def test_a_key_written_twice_is_refused(tmp_path: Path) -> None:
    broken = SHIPPED.replace("  tolerance: 0.02\n", "  tolerance: 0.02\n  tolerance: 0.5\n", 1)
    (tmp_path / "monitors.yaml").write_text(broken)
    first = _line_of(broken, "  tolerance: 0.02")
    with pytest.raises(config.ConfigError) as error:
        monitors_config.load(tmp_path)
    assert (
        f"monitors.yaml line {first + 1}: key 'tolerance' is written twice (first on line {first})"
    ) in str(error.value)


def test_the_monitors_read_a_bad_file_through_the_one_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A mistake in one section stops every monitor, not only the one that reads it: no monitor
    # runs on a file that is partly wrong.
    shutil.copy(settings.config_dir() / "sources.yaml", tmp_path / "sources.yaml")
    (tmp_path / "monitors.yaml").write_text(SHIPPED.replace("  tolerance: 0.02", "  tolerance: x"))
    monkeypatch.setenv("RETURNWATCH_CONFIG_DIR", str(tmp_path))
    for read in (
        freshness.rules,
        anomalies.load_config,
        rules.load_rules,
        engine.load_revisions_config,
        figures.load_figures,
    ):
        with pytest.raises(config.ConfigError, match=r"revisions\.tolerance"):
            read()
