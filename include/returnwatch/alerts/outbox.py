"""The outbox store: alerts waiting for Slack, their delivery state and the incidents' threads.

What this module owns: ``data/outbox.sqlite3`` (``settings.outbox_path()``), a SQLite file
beside the warehouse, and the small API delivery uses on it (``open_outbox``, ``Outbox``):
tables ``alerts`` (fully composed messages and their state), ``alert_charts``,
``incident_controls`` (ack / mute), ``threads`` and ``meta``.

Not in the warehouse because DuckDB has one writer per file and a ``dbt build`` holds it for
minutes under load; SQLite in WAL mode with one short transaction per alert never waits for
DuckDB. Why and each table: docs/internals.md#alerts-the-outbox.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from returnwatch import settings

# Columns of ``alerts`` in their order (the warehouse copy has the same names).
ALERT_COLUMNS = (
    "alert_id",
    "seq",
    "incident_id",
    "event",
    "audience",
    "channel",
    "text",
    "blocks",
    "status",
    "attempts",
    "run_id",
    "created_at",
    "last_attempt_at",
    "sent_at",
    "delivered_via",
    "slack_channel",
    "slack_ts",
    "thread_ts",
    "last_error",
    "next_attempt_at",
    "last_error_global",
    "composed_at",
    "severity",
    "suppressed_reason",
    "chart_file_id",
    "chart_error",
    "parent_updated_at",
    "parent_update_error",
    "digest_id",
)
# Read back as aware datetimes.
TIMESTAMP_COLUMNS = frozenset(
    {
        "created_at",
        "last_attempt_at",
        "sent_at",
        "next_attempt_at",
        "composed_at",
        "parent_updated_at",
        "incident_opened_at",
        "incident_resolved_at",
        "acknowledged_at",
        "muted_until",
        "updated_at",
    }
)

DDL = [
    """
    CREATE TABLE IF NOT EXISTS alerts (
        alert_id            TEXT PRIMARY KEY,
        seq                 INTEGER NOT NULL UNIQUE,
        incident_id         TEXT,
        event               TEXT NOT NULL,
        audience            TEXT NOT NULL,
        channel             TEXT,
        text                TEXT NOT NULL,
        blocks              TEXT NOT NULL,
        status              TEXT NOT NULL,
        attempts            INTEGER NOT NULL DEFAULT 0,
        run_id              TEXT,
        created_at          TEXT NOT NULL,
        last_attempt_at     TEXT,
        sent_at             TEXT,
        delivered_via       TEXT,
        slack_channel       TEXT,
        slack_ts            TEXT,
        thread_ts           TEXT,
        last_error          TEXT,
        next_attempt_at     TEXT,
        last_error_global   INTEGER,
        composed_at         TEXT,
        severity            TEXT,
        suppressed_reason   TEXT,
        chart_file_id       TEXT,
        chart_error         TEXT,
        parent_updated_at   TEXT,
        parent_update_error TEXT,
        digest_id           TEXT,
        incident_state       TEXT,   -- the incident when the alert was composed: open / resolved
        incident_opened_at   TEXT,
        incident_resolved_at TEXT,
        rev                 INTEGER NOT NULL DEFAULT 0  -- last change (see the triggers)
    )
    """,
    "CREATE INDEX IF NOT EXISTS alerts_by_status ON alerts (status, seq)",
    "CREATE INDEX IF NOT EXISTS alerts_by_incident ON alerts (incident_id)",
    "CREATE INDEX IF NOT EXISTS alerts_by_rev ON alerts (rev)",
    # Every insert and update takes the next rev, so a reader can ask "what changed since".
    """
    CREATE TRIGGER IF NOT EXISTS alerts_rev_on_insert AFTER INSERT ON alerts BEGIN
        UPDATE alerts SET rev = (SELECT coalesce(max(rev), 0) + 1 FROM alerts)
        WHERE alert_id = NEW.alert_id;
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS alerts_rev_on_update AFTER UPDATE ON alerts
    WHEN NEW.rev = OLD.rev BEGIN
        UPDATE alerts SET rev = (SELECT coalesce(max(rev), 0) + 1 FROM alerts)
        WHERE alert_id = NEW.alert_id;
    END
    """,
    """
    CREATE TABLE IF NOT EXISTS alert_charts (
        alert_id   TEXT PRIMARY KEY,
        png        BLOB NOT NULL,
        width      INTEGER NOT NULL,
        height     INTEGER NOT NULL,
        created_at TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS incident_controls (
        incident_id      TEXT PRIMARY KEY,
        acknowledged_at  TEXT,
        acknowledged_by  TEXT,
        muted_until      TEXT,
        updated_at       TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS threads (
        incident_id    TEXT PRIMARY KEY,
        slack_channel  TEXT NOT NULL,
        slack_ts       TEXT NOT NULL,
        root_alert_id  TEXT              -- the opening (or digest) alert that started it
    )
    """,
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
]

# A writer holds SQLite's lock for one short transaction (milliseconds); wait this long at most.
BUSY_TIMEOUT_SECONDS = 30
# One deliverer at a time (``delivering``): a run takes seconds, a slow Slack ~10 s per
# message; wait this long for another before giving up (below the dispatcher's timeout).
DELIVERY_LOCK_WAIT_SECONDS = 120


def to_db(value: Any) -> Any:
    """A Python value as stored: datetimes as UTC ISO text, lists/dicts as JSON text."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} for the outbox: give a time zone")
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return value


def _from_db(name: str, value: Any) -> Any:
    if value is not None and name in TIMESTAMP_COLUMNS:
        return dt.datetime.fromisoformat(value)
    return value


class Outbox:
    """One connection to the outbox file (autocommit; ``transaction()`` groups writes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)

    def init(self) -> None:
        # WAL: readers never block the writer nor the writer them; fsync at each commit
        # (synchronous FULL) so a row marked sent survives a power cut.
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = FULL")
        with self.transaction():
            for statement in DDL:
                self.db.execute(statement)
            self.db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('outbox_id', ?)", [uuid.uuid4().hex]
            )

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.db.execute(sql, [to_db(p) for p in params])

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """The rows of a query as dicts, timestamps as aware datetimes."""
        cursor = self.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [
            {n: _from_db(n, v) for n, v in zip(names, row, strict=True)}
            for row in cursor.fetchall()
        ]

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.execute(sql, params).fetchone()
        if row is None:
            raise LookupError(f"query returned no row, expected exactly one: {sql}")
        return row[0]

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT: the write lock from the start, so two writers queue
        (milliseconds) instead of failing halfway; joins an open transaction."""
        if self.db.in_transaction:
            yield
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def insert_alert(self, values: dict[str, Any]) -> bool:
        """Insert one alert row (``seq`` assigned here, next in order); False if its id exists."""
        names = [c for c in values if c != "seq"]
        with self.transaction():
            if self.scalar("SELECT count(*) FROM alerts WHERE alert_id = ?", [values["alert_id"]]):
                return False
            self.execute(
                f"INSERT INTO alerts (seq, {', '.join(names)}) VALUES "
                f"((SELECT coalesce(max(seq), 0) + 1 FROM alerts), "
                f"{', '.join('?' for _ in names)})",
                [values[n] for n in names],
            )
        return True

    def close(self) -> None:
        self.db.close()


def open_outbox(path: Path | None = None) -> Outbox:
    """The outbox at ``path`` (default ``settings.outbox_path()``), created if missing."""
    path = Path(path or settings.outbox_path())
    path.parent.mkdir(parents=True, exist_ok=True)
    box = Outbox(path)
    try:
        box.init()
    except BaseException:
        box.close()
        raise
    return box


@contextlib.contextmanager
def session(path: Path | None = None) -> Iterator[Outbox]:
    box = open_outbox(path)
    try:
        yield box
    finally:
        box.close()


class DeliveryBusy(RuntimeError):
    """Another process has been delivering for longer than we are willing to wait."""


_held = threading.local()  # lock files this thread holds, with their depth (re-entrant)


@contextlib.contextmanager
def delivering(box: Outbox, *, wait_seconds: float = DELIVERY_LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Hold the outbox's delivery lock: one deliverer at a time, across processes.

    When the outbox lived in the warehouse, DuckDB's single writer kept two deliveries (the
    dispatcher, a monitor's ``send_alerts``, a failure callback) apart; SQLite lets them run
    at once, and two could both find a row ``pending`` and post it. An ``flock`` on a file
    beside the outbox (released by the kernel if the process dies) restores the one deliverer.
    Re-entrant within a thread.
    """
    import fcntl
    import time

    path = str(box.path.with_name(box.path.name + ".deliver.lock"))
    depth = getattr(_held, "depth", {})
    _held.depth = depth
    if depth.get(path):
        depth[path] += 1
        try:
            yield
        finally:
            depth[path] -= 1
        return
    with open(path, "a+") as handle:
        deadline, delay = time.monotonic() + wait_seconds, 0.05
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise DeliveryBusy(
                        f"another process has been delivering alerts for more than "
                        f"{wait_seconds:.0f} s (lock {path}); the next run delivers"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        depth[path] = 1
        try:
            yield
        finally:
            depth[path] = 0
            fcntl.flock(handle, fcntl.LOCK_UN)


def ids_param(ids: Sequence[str]) -> str:
    """A list of ids as one parameter: ``alert_id IN (SELECT value FROM json_each(?))``."""
    return json.dumps(list(ids))


IN_IDS = "IN (SELECT value FROM json_each(?))"


def enqueue(
    box: Outbox,
    *,
    alert_id: str,
    incident_id: str | None,
    event: str,
    audience: str,
    channel: str | None,
    text: str,
    blocks: list[dict[str, Any]],
    run_id: str | None,
    severity: str | None = None,
    now: dt.datetime | None = None,
) -> bool:
    """Add a composed ``pending`` alert (an ops notice, a task failure); False if it exists."""
    now = now or dt.datetime.now(dt.UTC)
    return box.insert_alert(
        {
            "alert_id": alert_id,
            "incident_id": incident_id,
            "event": event,
            "audience": audience,
            "channel": channel,
            "text": text,
            "blocks": json.dumps(blocks, ensure_ascii=False),
            "status": "pending",
            "attempts": 0,
            "run_id": run_id,
            "created_at": dt.datetime.now(dt.UTC),
            # Its words are final: nothing is composed from the warehouse for it.
            "composed_at": now,
            "severity": severity,
        }
    )


def notify_ops(
    box: Outbox, key: str, *, header: str, body: str, now: dt.datetime | None = None
) -> bool:
    """Queue one ``delivery_problem`` alert for ops (idempotent on ``key``): the alert path
    telling ops about itself. Returns whether it was new."""
    from returnwatch.routing import audience_for, channel_for

    audience = audience_for("delivery")
    return enqueue(
        box,
        alert_id=f"delivery_problem:{key}",
        incident_id=None,
        event="delivery_problem",
        audience=audience,
        channel=channel_for(audience),
        text=f"{header}\n\n{body}",
        blocks=[
            {"type": "header", "text": {"type": "plain_text", "text": header[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": body[:2900]}},
        ],
        run_id=None,
        severity="warning",
        now=now,
    )


def read_only(path: Path | None = None) -> Outbox | None:
    """The outbox opened for reading only (nothing created, no lock taken), or None if there
    is no outbox file yet. On a read-only data folder SQLite cannot keep WAL's shared-memory
    file, so it then reads the main file as immutable: the state of the last checkpoint
    (SQLite checkpoints by itself every ~1000 pages, and when the last writer closes)."""
    path = Path(path or settings.outbox_path())
    if not path.is_file():
        return None
    for query in ("mode=ro", "immutable=1"):
        box = Outbox.__new__(Outbox)
        box.path = path
        try:
            box.db = sqlite3.connect(f"file:{path}?{query}", uri=True, timeout=BUSY_TIMEOUT_SECONDS)
            box.db.isolation_level = None
            box.db.execute("SELECT count(*) FROM alerts").fetchone()
        except sqlite3.Error:
            with contextlib.suppress(Exception):
                box.db.close()
            continue
        return box
    return None
