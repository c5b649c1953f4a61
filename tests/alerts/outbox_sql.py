"""Reach into the outbox (data/outbox.sqlite3) the way a crash would leave it."""

from __future__ import annotations

from typing import Any

from returnwatch.alerts import outbox


def outbox_execute(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run ``sql`` on the outbox of the current RETURNWATCH_DATA_DIR; returns its rows."""
    with outbox.session() as box:
        return box.execute(sql, params).fetchall()
