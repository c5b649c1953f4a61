"""Names from config/monitors.yaml that end up inside SQL: only plain identifiers pass.

The monitors build their queries from table and column names people write in the config, so
every config model checks those names here, with one rule and one message.
"""

from __future__ import annotations

import re
from typing import Any

IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
QUALIFIED = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")


def qualified_table(value: str) -> str:
    """``value`` if it is a plain ``schema.table`` name, else ValueError."""
    if not QUALIFIED.match(value):
        raise ValueError(f"{value!r} is not a schema.table name like raw.hhs_uc_daily")
    return value


def column_names(value: Any) -> Any:
    """``value`` (one name or a list of names) if every name is a plain column name."""
    names = [value] if isinstance(value, str) else list(value)
    bad = [n for n in names if not IDENTIFIER.match(n)]
    if bad:
        raise ValueError(f"{bad} are not plain column names")
    return value
