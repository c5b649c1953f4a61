"""Fixtures for alert tests: the loopback Slack stand-in, and a warehouse with real HHS rows.

``slack_standin`` sets RETURNWATCH_SLACK_BASE_URL (ending in /api/) and a fake SLACK_BOT_TOKEN.
"""

from tests.monitor.hhs_history import con, history  # noqa: F401 - fixtures
from tests.support.slack_standin import slack_standin  # noqa: F401 - fixture
