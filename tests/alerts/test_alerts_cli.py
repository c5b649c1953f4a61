"""``returnwatch alerts``: list, show, ack, mute without Slack; the token never shows."""

from __future__ import annotations

import contextlib
import logging

from click.testing import CliRunner

from returnwatch.alerts import cli, deliver_pending
from tests.alerts.test_alerts_threads import T0, open_rate_incident


def test_list_show_ack_mute(con, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(cli, "_session", lambda: contextlib.nullcontext(con))
    monkeypatch.setattr(cli, "_reading", lambda: contextlib.nullcontext(con))
    open_rate_incident(con)
    deliver_pending(con, now=T0)  # no token: console
    [incident_id] = con.execute("SELECT incident_id FROM monitor.incidents").fetchone()
    runner = CliRunner()
    listed = runner.invoke(cli.alerts, ["list"])
    assert listed.exit_code == 0 and incident_id in listed.output and "advocates" in listed.output
    shown = runner.invoke(cli.alerts, ["show", incident_id[:8], "--chart", str(tmp_path / "c.png")])
    assert shown.exit_code == 0, shown.output
    assert "rose to 97% in March 2025" in shown.output and "sent via console" in shown.output
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    assert runner.invoke(cli.alerts, ["ack", incident_id, "--by", "ana"]).exit_code == 0
    assert runner.invoke(cli.alerts, ["mute", incident_id, "--for", "2"]).exit_code == 0
    listed = runner.invoke(cli.alerts, ["list"])
    assert "ack ana" in listed.output and "muted until" in listed.output
    assert runner.invoke(cli.alerts, ["show", "i_nope"]).exit_code != 0


def test_the_token_never_reaches_logs_rows_or_errors(con, slack_standin, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    open_rate_incident(con)
    slack_standin.fail_next(1, status=500)
    deliver_pending(con, now=T0)
    deliver_pending(con, now=T0.replace(hour=18))
    dump = str(con.execute("SELECT * FROM monitor.alerts").fetchall())
    assert slack_standin.token not in dump and slack_standin.token not in caplog.text
    assert len(slack_standin.posted()) == 1
