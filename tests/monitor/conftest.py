"""Fixtures for monitor tests: a temporary warehouse and archive holding real HHS rows."""

from tests.monitor.hhs_history import con, history  # noqa: F401 - fixtures
from tests.support.slack_standin import slack_standin  # noqa: F401 - fixture
