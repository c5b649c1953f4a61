"""Fixtures for monitor tests: a temporary warehouse and archive holding real HHS rows."""

# Importing Airflow attaches a logging handler to the sys.stdout of that moment. Import it
# here, at collection, so that handler is not a test's capsys stream (closed after the test);
# alert delivery imports it to look up the `slack_default` connection.
import airflow.sdk  # noqa: F401

from tests.monitor.hhs_history import con, history, no_outside_settings  # noqa: F401 - fixtures
