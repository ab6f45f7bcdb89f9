"""report.prom: Prometheus text exposition, for a node-exporter textfile collector or a
Pushgateway: probe_success and probe_duration_seconds per cell, probe_expectation_met."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from ..results import MatrixResult

LABELS = ["source", "target", "status", "errno"]


class _ResultCollector:
    def __init__(self, result: MatrixResult) -> None:
        self.result = result

    def collect(self) -> Iterator[Any]:
        success = GaugeMetricFamily(
            "probe_success", "1 when the cell's probe succeeded", labels=LABELS
        )
        duration = GaugeMetricFamily(
            "probe_duration_seconds", "How long the cell took", labels=LABELS
        )
        met = GaugeMetricFamily(
            "probe_expectation_met", "1 met, 0 unmet (cells with an expectation)", labels=LABELS
        )
        for cell in self.result.cells:
            failed = next((c for c in cell.checks if c.status != "ok"), None)
            labels = [
                cell.source,
                cell.target,
                cell.status,
                (failed.errno_name if failed else None) or "",
            ]
            success.add_metric(labels, 1.0 if cell.status == "ok" else 0.0)
            duration.add_metric(labels, cell.duration_ms / 1000.0)
            if cell.met is not None:
                met.add_metric(labels, 1.0 if cell.met else 0.0)
        run = GaugeMetricFamily("probe_engine_last_run_timestamp_seconds", "When the run finished")
        run.add_metric([], self.result.finished_at.timestamp())
        yield from (success, duration, met, run)


def render_prometheus(result: MatrixResult) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ResultCollector(result))
    return bytes(generate_latest(registry))
