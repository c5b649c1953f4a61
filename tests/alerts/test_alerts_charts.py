"""Every message kind with a series gets a chart: a valid PNG of the expected size."""

from __future__ import annotations

import datetime as dt
import struct

import pytest

from returnwatch.alerts.charts import CHART_SIZE_PX, anomaly_spec, render_png, spec_from_details

INCIDENTS = {
    "anomaly": (
        {"monitor": "anomaly", "series": "m:v", "source": "segob_bulletin_monthly"},
        [
            {
                "kind": "anomaly_spike",
                "period": "2025-03",
                "value": 0.97,
                "details": {
                    "label": "return rate",
                    "value": 0.97,
                    "band": [0.8, 0.88],
                    "params": {"transform": "identity"},
                },
            }
        ],
    ),
    "policy_rule": (
        {"monitor": "policy_rule", "series": "r", "source": "cbp_encounters_monthly"},
        [
            {
                "kind": "rule_violation",
                "period": "2021-01",
                "value": 12.0,
                "details": {
                    "label": "expelled after the order",
                    "condition": "sum(encounters) > 0",
                },
            },
            {
                "kind": "rule_violation",
                "period": "2021-02",
                "value": 4.0,
                "details": {
                    "label": "expelled after the order",
                    "condition": "sum(encounters) > 0",
                },
            },
        ],
    ),
    "revision": (
        {"monitor": "revision", "series": "t", "source": "cbp_encounters_monthly"},
        [
            {
                "kind": "revision",
                "details": {
                    "label": "CBP encounters",
                    "periods": [
                        {"period": "2025-01", "old": 100, "new": 130},
                        {"period": "2025-02", "old": 90, "new": 95},
                    ],
                },
            }
        ],
    ),
    "discrepancy": (
        {"monitor": "discrepancy", "series": "g", "source": "cbp_encounters_monthly"},
        [
            {
                "kind": "discrepancy",
                "details": {
                    "label": "CBP vs SEGOB",
                    "periods": [
                        {"period": "2025-01", "value": 300, "other": 180},
                        {"period": "2025-02", "value": 310, "other": 200},
                    ],
                },
            }
        ],
    ),
    "freshness": (
        {"monitor": "freshness", "series": "hhs_uc_daily", "source": "hhs_uc_daily"},
        [
            {
                "kind": "freshness_late",
                "details": {
                    "label": "HHS daily figures",
                    "newest_period": "2025-06-10",
                    "missed_periods": ["2025-06-11", "2025-06-12", "2025-06-15"],
                },
            }
        ],
    ),
}


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("kind", sorted(INCIDENTS))
def test_each_kind_renders_a_png_of_the_expected_size(kind: str) -> None:
    incident, findings = INCIDENTS[kind]
    spec = spec_from_details(incident, findings, note="Source: test")
    assert spec is not None and spec.kind == kind
    png = render_png(spec)
    assert png_size(png) == CHART_SIZE_PX
    assert len(png) > 5_000


def test_ops_kinds_have_no_chart() -> None:
    for monitor in ("ingest", "task_failure"):
        assert (
            spec_from_details({"monitor": monitor, "series": "s"}, [{"kind": "bad_file"}]) is None
        )


def test_a_real_series_chart_has_the_band_of_every_period() -> None:
    from returnwatch.monitor import anomalies
    from returnwatch_replay import series

    cfg = anomalies.load_config()
    monitor = cfg.metrics["cbp_uc_encounters"]
    frame = series.monitor_frames()[monitor.table]
    found = [
        f
        for f in anomalies.evaluate_frame(
            frame,
            "cbp_uc_encounters",
            monitor,
            run_at=dt.datetime(2025, 6, 1, tzinfo=dt.UTC),
            params=cfg.params(monitor),
            regimes=cfg.regimes,
        )
        if f.series == "cbp_uc_encounters:encounters:MEXICO:Title 8" and f.period == "2020-12"
    ]
    spec = anomaly_spec(
        frame, monitor, cfg.params(monitor), found[0].series, [f.as_dict() for f in found]
    )
    assert spec is not None and "2020-12" in spec.periods and spec.flagged == ["2020-12"]
    assert len(spec.band_low) == len(spec.values) == len(spec.periods) > 12
    assert png_size(render_png(spec)) == CHART_SIZE_PX
