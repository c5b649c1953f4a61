"""The README's example alert, rendered from real published figures (CBP, via IOM's copy).

``python -m returnwatch_replay.example docs/img/alert_example.png`` writes the chart and prints
the message's plain text: CBP encounters of unaccompanied Mexican children under Title 8 in
late 2020, after the court order of 18 November 2020 stopped Title 42 expulsions of children
(``include/replay/cbp_encounters/iom_gdidata_irreg_usa.csv``).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from returnwatch.alerts.messages import Message

SERIES = "cbp_uc_encounters:encounters:MEXICO:Title 8"
RUN_AT = dt.datetime(2021, 1, 15, 16, tzinfo=dt.UTC)


def example() -> tuple[Message, bytes]:
    """(message, PNG) for the real December 2020 finding."""
    from returnwatch.alerts.charts import anomaly_spec, render_png
    from returnwatch.alerts.messages import incident_message, status_line
    from returnwatch.monitor import anomalies
    from returnwatch_replay import series

    cfg = anomalies.load_config()
    monitor = cfg.metrics["cbp_uc_encounters"]
    frame = series.monitor_frames()[monitor.table]
    frame = frame[frame["month"] < "2021-01-01"]  # what was published by the run
    found = [
        f.as_dict()
        for f in anomalies.evaluate_frame(
            frame,
            "cbp_uc_encounters",
            monitor,
            run_at=RUN_AT,
            params=cfg.params(monitor),
            regimes=cfg.regimes,
            since="2020-11-01",
        )
        if f.series == SERIES
    ]
    incident = {
        "monitor": "anomaly",
        "series": SERIES,
        "source": monitor.source,
        "kind": found[-1]["kind"],
        "opened_at": RUN_AT,
    }
    # All titles together, as compose reads them from the mart: the total fell.
    mexican = frame[frame["citizenship"] == "MEXICO"].groupby("month")["encounters"].sum()
    totals = {
        "title": "Title 8",
        "value": float(mexican[dt.datetime(2020, 12, 1)]),
        "previous": float(mexican[dt.datetime(2020, 11, 1)]),
    }
    lead = max(found, key=lambda f: f["period"])
    message = incident_message(
        "opened",
        incident=incident,
        finding=lead,
        related=found,
        run_id="monitor/scheduled__2021-01-15T16:00:00+00:00",
        status=status_line("open", opened=RUN_AT),
        totals=totals,
    )
    spec = anomaly_spec(
        frame,
        monitor,
        cfg.params(monitor),
        SERIES,
        found,
        note="Source: CBP Southwest Land Border Encounters (IOM copy) · "
        "shaded: usual range · red: flagged months",
    )
    return message, render_png(spec)  # type: ignore[arg-type]


if __name__ == "__main__":
    msg, png = example()
    Path(sys.argv[1] if len(sys.argv) > 1 else "alert_example.png").write_bytes(png)
    print(msg.text)
