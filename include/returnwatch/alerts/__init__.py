"""Alerts: from incidents to people.

- ``messages``: the words (Slack Block Kit + plain text), pure; ``wording`` words the findings
  about the figures; both build on ``blocks`` (message, paragraphs, dates, links, redact).
- ``delivery``: routing (config/alerts.yaml), the outbox ``monitor.alerts`` and sending each
  alert once; ``on_task_failure`` for Airflow.
- ``slack``: the token and a bounded slack-sdk client.
- ``console``: the fallback without a token.

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
