"""/metrics: the families of probe_engine.metrics, filled from the scheduler's state at scrape
time (nothing accumulates between scrapes: the series are those of the latest run)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric

from .. import metrics as m
from .._version import __version__
from .scheduler import Scheduler


class ServeCollector:
    """A prometheus_client collector over a running Scheduler."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    def collect(self) -> Iterator[Metric]:
        s = self.scheduler
        history = s.history
        if s.latest is not None:
            yield from m.cell_families(s.latest.cells, history.phases())
            yield from m.run_families(s.latest, s.last_success)
        else:  # before the first run: the build, and no cell yet
            build = m.BUILD.info()
            build.add_metric([], {"version": __version__})
            yield build
        since, changes = m.CELL_STATUS_SINCE.gauge(), m.CELL_STATUS_CHANGES.counter()
        for (source, target), cell in history:
            since.add_metric([source, target], cell.since.timestamp())
            changes.add_metric([source, target], float(cell.changes_total))
        yield since
        yield changes
        yield _value(m.RUNS, s.runs)
        yield _value(m.RUN_ERRORS, s.run_errors)
        yield _value(m.RUNS_SKIPPED, s.skipped)
        yield _value(m.RUN_IN_PROGRESS, 1 if s.running else 0)
        reloads = m.RELOADS.counter()
        reloads.add_metric(["success"], float(s.matrix.reloads_ok))
        reloads.add_metric(["failure"], float(s.matrix.reloads_failed))
        yield reloads
        yield _value(m.RELOAD_OK, 0 if s.matrix.error else 1)
        matrix = m.MATRIX.info()
        current = s.matrix.current
        matrix.add_metric([], {"path": current.path, "sha256": current.sha256})
        yield matrix


def _value(family: m.Family, value: float) -> Metric:
    metric = family.counter() if family.type == "counter" else family.gauge()
    metric.add_metric([], float(value))
    return metric


def registry(scheduler: Scheduler) -> CollectorRegistry:
    found = CollectorRegistry(auto_describe=False)
    found.register(ServeCollector(scheduler))
    return found
