"""probe-engine's Prometheus metric families, defined once for every writer.

The one-shot report (`--format prometheus`, report.prom) and `serve`'s /metrics build their
families here, so a dashboard or an alert works on either. By the book: names prefixed
`probe_engine_`, the unit in the name (`_seconds`, `_timestamp_seconds`), counters ending in
`_total`, and label sets that do not change with the outcome: a cell is {source, target} (plus
`phase` for per-phase durations); its status is a state set (one series per status, exactly
one at 1), so a cell turning from ok to refused changes values, not series; what failed (the
phase and errno) is an info series beside it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)

from ._version import __version__
from .results import CellResult, MatrixResult
from .status import STATUSES

PHASES = ("dns", "tcp", "http", "icmp", "udp")
SEVERITIES = ("error", "warning", "info")
CELL = ("source", "target")
CellKey = tuple[str, str]


@dataclass(frozen=True)
class Family:
    """One metric family: its name, type, help text and labels (never more, never fewer)."""

    name: str
    type: Literal["gauge", "counter", "info"]
    help: str
    labels: tuple[str, ...] = ()

    @property
    def sample_name(self) -> str:
        """The name its series carry: an info family's gain `_info`."""
        return self.name + "_info" if self.type == "info" else self.name

    def gauge(self) -> GaugeMetricFamily:
        assert self.type == "gauge", self.name
        return GaugeMetricFamily(self.name, self.help, labels=self.labels)

    def counter(self) -> CounterMetricFamily:
        assert self.type == "counter", self.name
        return CounterMetricFamily(self.name, self.help, labels=self.labels)

    def info(self) -> InfoMetricFamily:
        assert self.type == "info", self.name
        return InfoMetricFamily(self.name, self.help, labels=self.labels)


# --- per cell, from the latest run ---------------------------------------------------------
CELL_STATUS = Family(
    "probe_engine_cell_status",
    "gauge",
    "The cell's status in the latest run, as a state set: one series per status, 1 for the "
    "cell's status and 0 for every other",
    (*CELL, "status"),
)
CELL_ERRNO = Family(
    "probe_engine_cell_errno",
    "info",
    "What failed in the cell's latest run: the phase (dns, tcp, http) and the errno, resolver "
    "code or TLS reason; both empty when nothing failed",
    CELL,
)
CELL_DURATION = Family(
    "probe_engine_cell_duration_seconds",
    "gauge",
    "How long the cell took in the latest run, every phase included",
    CELL,
)
CELL_PHASE_DURATION = Family(
    "probe_engine_cell_phase_duration_seconds",
    "gauge",
    "How long one phase of the cell took in the latest run (tcp: the slowest address); NaN "
    "when the phase did not run this time (an earlier phase failed)",
    (*CELL, "phase"),
)
CELL_EXPECTATION_MET = Family(
    "probe_engine_cell_expectation_met",
    "gauge",
    "1 when the cell's status is what the matrix expects, 0 when not (cells with an "
    "expectation only)",
    CELL,
)
# --- per cell, from serve's history ----------------------------------------------------------
CELL_STATUS_SINCE = Family(
    "probe_engine_cell_status_since_timestamp_seconds",
    "gauge",
    "When the cell turned to its current status (the first run that saw it), as serve saw it",
    CELL,
)
CELL_STATUS_CHANGES = Family(
    "probe_engine_cell_status_changes_total",
    "counter",
    "How often the cell's status differed from the run before, since serve started",
    CELL,
)
# --- per run ---------------------------------------------------------------------------------
RUN_DURATION = Family("probe_engine_run_duration_seconds", "gauge", "How long the latest run took")
LAST_RUN = Family(
    "probe_engine_last_run_timestamp_seconds", "gauge", "When the latest run finished"
)
LAST_SUCCESS = Family(
    "probe_engine_last_success_timestamp_seconds",
    "gauge",
    "When the latest run that met every expectation (exit status 0) finished",
)
FINDINGS = Family(
    "probe_engine_findings",
    "gauge",
    "Findings of the latest run's diagnosis, by severity",
    ("severity",),
)
BUILD = Family("probe_engine_build", "info", "The version of probe-engine")
# --- serve's scheduler and matrix ----------------------------------------------------------
RUNS = Family("probe_engine_runs_total", "counter", "Scheduled runs that completed")
RUN_ERRORS = Family(
    "probe_engine_run_errors_total",
    "counter",
    "Scheduled runs the engine itself failed (no result; the previous one is still served)",
)
RUNS_SKIPPED = Family(
    "probe_engine_runs_skipped_total",
    "counter",
    "Scheduled runs skipped because the previous run was still in flight",
)
RUN_IN_PROGRESS = Family(
    "probe_engine_run_in_progress", "gauge", "1 while a scheduled run is in flight"
)
RELOADS = Family(
    "probe_engine_matrix_reloads_total",
    "counter",
    "Matrix reloads (the file changed, or SIGHUP), by result",
    ("result",),
)
RELOAD_OK = Family(
    "probe_engine_matrix_last_reload_successful",
    "gauge",
    "0 when the latest reload failed and the previous matrix is still in use, else 1",
)
MATRIX = Family("probe_engine_matrix", "info", "The matrix in use: its path and sha256")

ONE_SHOT_FAMILIES = (
    CELL_STATUS,
    CELL_ERRNO,
    CELL_DURATION,
    CELL_PHASE_DURATION,
    CELL_EXPECTATION_MET,
    RUN_DURATION,
    LAST_RUN,
    LAST_SUCCESS,
    FINDINGS,
    BUILD,
)
SERVE_FAMILIES = (
    *ONE_SHOT_FAMILIES,
    CELL_STATUS_SINCE,
    CELL_STATUS_CHANGES,
    RUNS,
    RUN_ERRORS,
    RUNS_SKIPPED,
    RUN_IN_PROGRESS,
    RELOADS,
    RELOAD_OK,
    MATRIX,
)


def failed_check(cell: CellResult) -> tuple[str, str]:
    """(phase, errno) of the first check that failed, or ("", "")."""
    failed = next((c for c in cell.checks if c.status != "ok"), None)
    if failed is None:
        return "", ""
    return failed.name, failed.errno_name or ""


def phase_durations(cell: CellResult) -> dict[str, float]:
    """Seconds per phase that ran; a tcp phase with several addresses takes its slowest."""
    durations: dict[str, float] = {}
    for check in cell.checks:
        durations[check.name] = max(durations.get(check.name, 0.0), check.duration_ms / 1000.0)
    return durations


def cell_families(
    cells: Iterable[CellResult], phases_seen: Mapping[CellKey, Set[str]] | None = None
) -> list[Metric]:
    """The per-cell families. `phases_seen` (serve's history) keeps a phase's series alive
    with NaN in a run where that phase did not run, so the label set stays the same."""
    status, errno, duration = CELL_STATUS.gauge(), CELL_ERRNO.info(), CELL_DURATION.gauge()
    phases, met = CELL_PHASE_DURATION.gauge(), CELL_EXPECTATION_MET.gauge()
    for cell in cells:
        key = [cell.source, cell.target]
        for state in STATUSES:
            status.add_metric([*key, state], 1.0 if cell.status == state else 0.0)
        phase, errno_name = failed_check(cell)
        errno.add_metric(key, {"phase": phase, "errno": errno_name})
        duration.add_metric(key, cell.duration_ms / 1000.0)
        took = phase_durations(cell)
        seen = set(took) | set((phases_seen or {}).get((cell.source, cell.target), ()))
        for phase_name in PHASES:
            if phase_name in seen:
                phases.add_metric([*key, phase_name], took.get(phase_name, math.nan))
        if cell.met is not None:
            met.add_metric(key, 1.0 if cell.met else 0.0)
    return [status, errno, duration, phases, met]


def run_families(result: MatrixResult, last_success: datetime | None) -> list[Metric]:
    """The per-run families of the latest run."""
    duration, finished, success = RUN_DURATION.gauge(), LAST_RUN.gauge(), LAST_SUCCESS.gauge()
    findings, build = FINDINGS.gauge(), BUILD.info()
    duration.add_metric([], result.duration_s)
    finished.add_metric([], result.finished_at.timestamp())
    if last_success is not None:
        success.add_metric([], last_success.timestamp())
    for severity in SEVERITIES:
        count = sum(1 for f in result.findings if f.severity == severity)
        findings.add_metric([severity], float(count))
    build.add_metric([], {"version": __version__})
    return [duration, finished, success, findings, build]


def one_shot_families(result: MatrixResult) -> list[Metric]:
    """Everything a single run can say: its cells and the run itself."""
    last_success = result.finished_at if result.exit_status == 0 else None
    return [*cell_families(result.cells), *run_families(result, last_success)]
