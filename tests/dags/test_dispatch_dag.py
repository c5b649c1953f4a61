"""The dispatch_alerts DAG run for real (``dag.test()``): the watchdog asks Airflow, through
the task SDK, whether a source DAG is paused, and ops are told in those words."""

from __future__ import annotations

import datetime as dt

from returnwatch import airflow_env, warehouse
from tests.monitor.hhs_history import HhsHistory, at


def test_the_watchdog_reads_the_paused_flag_from_airflow(data_dir, slack_standin) -> None:
    airflow_env.prepare_metadata_db()
    from returnwatch_replay.demo import load_dags

    with warehouse.session() as con:
        HhsHistory(con).publish("2025-06-05", received=at("2025-06-06", 15))
    dag = load_dags()["dispatch_alerts"]
    # DAGs are paused at creation (airflow_env): the source DAG has not checked since June.
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    run = dag.test(logical_date=now, run_after=now)
    assert str(getattr(run.state, "value", run.state)) == "success"
    texts = [c.payload["text"] for c in slack_standin.calls("chat.postMessage")]
    [hhs] = [t for t in texts if "HHS daily figures: returnwatch has not checked" in t]
    assert "since 2025-06-06 15:00 UTC" in hhs
    assert "The DAG that should have made it, hhs_uc_daily, is paused." in hhs
