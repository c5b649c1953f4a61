"""Alerts: from incidents to people.

- ``messages``: the words (Slack Block Kit + plain text), pure; ``wording`` words the findings
  about the figures; both build on ``blocks`` (message, paragraphs, dates, links, redact).
- ``compose``: an incident's queued facts -> its message and chart, with the warehouse.
- ``outbox``: the outbox file (data/outbox.sqlite3), out of reach of the warehouse's lock.
- ``handoff``: the warehouse's queued alerts into the outbox; the warehouse's copy back.
- ``delivery``: sending each pending alert once; ``on_task_failure`` for Airflow.
- ``dispatch``: the ``dispatch_alerts`` DAG's task.
- ``slack``: the token and a bounded slack-sdk client; ``console``: the fallback without one.

Importing this package is light (no duckdb, no slack_sdk at import time): DAG files reach it
through their failure callback.
"""

from returnwatch.alerts.delivery import (
    DeliveryReport,
    deliver_pending,
    on_task_failure,
    requeue_failed,
)

__all__ = ["DeliveryReport", "deliver_pending", "on_task_failure", "requeue_failed"]
