"""report.prom: Prometheus text exposition of one run, for a node-exporter textfile collector or
a Pushgateway. The families are probe_engine.metrics', the same `serve` exposes on /metrics."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric

from ..metrics import one_shot_families
from ..results import MatrixResult


class _Families:
    """A collector that yields families made beforehand."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def exposition(families: Iterable[Metric]) -> bytes:
    """The text format (0.0.4) of the given families."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return bytes(generate_latest(registry))


def render_prometheus(result: MatrixResult) -> bytes:
    return exposition(one_shot_families(result))
