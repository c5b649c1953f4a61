"""Airflow-native Slack: the token and the client settings come from the Slack provider's
connection (``slack_api_default``, built by its ``SlackHook``), the old ``slack_default`` id
still works with a deprecation line, and ``SLACK_BOT_TOKEN`` still works without either."""

from __future__ import annotations

import json
import logging

import pytest
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler

from returnwatch.alerts import deliver_pending
from returnwatch.alerts.slack import BoundedRateLimitRetryHandler, SlackPoster, slack_token
from tests.alerts.test_alerts_digest import T0, ops_problem


def connection(standin, **extra) -> str:
    return json.dumps({"conn_type": "slack", "password": standin.token, "extra": extra})


@pytest.fixture
def ui_connection(slack_standin, monkeypatch: pytest.MonkeyPatch):
    """A connection as set in the UI: token, base URL, timeout and proxy in its extras; no
    environment token and no test override of the base URL."""
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    monkeypatch.delenv("RETURNWATCH_SLACK_BASE_URL")
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_API_DEFAULT",
        connection(slack_standin, base_url=slack_standin.base_url, timeout=7),
    )
    return slack_standin


def test_the_provider_connection_gives_token_and_client_settings(con, ui_connection) -> None:
    assert slack_token() == ui_connection.token
    poster = SlackPoster(ui_connection.token)
    assert poster.conn_id == "slack_api_default"
    # Built by SlackHook from the connection's extras, not from returnwatch's defaults.
    assert (poster.client.base_url, poster.client.timeout) == (ui_connection.base_url, 7)
    kinds = {type(h) for h in poster.client.retry_handlers}
    assert {ConnectionErrorRetryHandler, BoundedRateLimitRetryHandler} <= kinds
    ops_problem(con, 0, "bad_file", severity="critical")
    assert len(deliver_pending(con, now=T0).sent) == 1
    [post] = ui_connection.calls("chat.postMessage")
    assert post.headers["Authorization"] == f"Bearer {ui_connection.token}"


def test_a_proxy_set_on_the_connection_applies(ui_connection, monkeypatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_API_DEFAULT",
        connection(ui_connection, base_url=ui_connection.base_url, proxy="http://127.0.0.1:3128"),
    )
    poster = SlackPoster(ui_connection.token, timeout_seconds=12)
    assert poster.client.proxy == "http://127.0.0.1:3128"
    assert poster.client.timeout == 12, "without a timeout on the connection: alerts.yaml's"


def test_the_old_connection_id_still_works_with_a_deprecation_line(
    con, slack_standin, monkeypatch, caplog
) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", connection(slack_standin))
    with caplog.at_level(logging.WARNING, logger="returnwatch.alerts.slack"):
        assert slack_token() == slack_standin.token
    assert "'slack_default' is deprecated: rename it to 'slack_api_default'" in caplog.text
    ops_problem(con, 0, "bad_file", severity="critical")
    assert len(deliver_pending(con, now=T0).sent) == 1
    assert slack_standin.token not in caplog.text


def test_the_environment_token_still_works_without_a_connection(con, slack_standin) -> None:
    poster = SlackPoster(slack_token())
    assert poster.conn_id is None and poster.client.base_url == slack_standin.base_url
    ops_problem(con, 0, "bad_file", severity="critical")
    assert len(deliver_pending(con, now=T0).sent) == 1
