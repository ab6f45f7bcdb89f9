"""Runs a matrix: resolve targets, expand cells, run every source concurrently, judge, diagnose.

Sources run side by side in one task group; each runs its whole batch at once (one agent per
place) under the matrix's concurrency. A global deadline and an interrupt (Ctrl-C, SIGTERM)
cancel what is left; unfinished cells are marked `cancelled` and a result is still returned.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Union

import anyio

from ._version import __version__
from .agent.plans import Plan
from .assemble import RunRecord, assemble
from .compat import UTC, BaseExceptionGroup, ExceptionGroup
from .docker_host import DockerOverrides
from .errors import EngineError, ProbeEngineError, SpecError
from .invariants import broken_invariants
from .kube import KubeError, KubeOverrides
from .model import CellRequest, Column, RunContext
from .plan import Selection, expand
from .results import CellResult, MatrixResult, SourceInfo
from .sources import SOURCES, RunSettings
from .sources.base import failed_result
from .spec import LoadedMatrix, Matrix
from .status import FailOn, Status
from .targets import RESOLVERS

log = logging.getLogger("probe_engine")
LOCAL_ONLY = (
    "this column listens on 127.0.0.1 of the machine running probe-engine (a port-forward "
    "tunnel): a {kind} source probes from elsewhere and cannot reach it; exclude the cell, or "
    "probe it from a local, process or shell source"
)
RESOLVE_WORKERS = 32
SERVER_SIDE_S = 30.0  # at most this long reading the servers' logs after the probes


@dataclass(frozen=True)
class RunOptions:
    select: Selection = field(default_factory=Selection)
    concurrency: int | None = None
    timeout: float | None = None
    deadline: float | None = None
    fail_on: FailOn = "unmet"
    kube: KubeOverrides = field(default_factory=KubeOverrides)
    docker: DockerOverrides = field(default_factory=DockerOverrides)


@dataclass(frozen=True)
class Planned:
    """Sent once the cells are known."""

    total: int
    sources: list[str]
    columns: list[Column]


@dataclass(frozen=True)
class RowSeen:
    info: SourceInfo


@dataclass(frozen=True)
class CellDone:
    result: CellResult


Event = Union[Planned, RowSeen, CellDone]
EventHandler = Callable[[Event], None]


class _Collector:
    """The sink every source reports to: keeps results, rows, and sends progress events."""

    def __init__(self, on_event: EventHandler | None, faults: list[str]) -> None:
        self.on_event = on_event
        self.faults = faults
        self.rows: dict[str, SourceInfo] = {}
        self.results: dict[tuple[str, str], CellResult] = {}
        self.plans: dict[str, Plan | None] = {}  # by column, once resolved
        # Cells answered without probing, per source, once its rows are known: columns that
        # could not be resolved, and tunnels on our loopback that the source cannot reach.
        self.held: dict[str, list[tuple[CellRequest, Status, str]]] = {}

    def row(self, info: SourceInfo) -> None:
        first = info.name not in self.rows
        self.rows[info.name] = info
        if self.on_event:
            self.on_event(RowSeen(info))
        if first:
            for request, status, message in self.held.get(info.source_name, []):
                self.result(failed_result(info.name, request.source, request, status, message))

    def hold(self, request: CellRequest, status: Status, message: str) -> None:
        self.held.setdefault(request.source, []).append((request, status, message))

    def result(self, result: CellResult) -> None:
        key = (result.source, result.target)
        if key in self.results:
            return
        broken = broken_invariants(result, self.plans.get(result.target))
        if broken:
            result = self._engine_fault(result, broken)
        self.results[key] = result
        if self.on_event:
            self.on_event(CellDone(result))

    def _engine_fault(self, result: CellResult, broken: Sequence[str]) -> CellResult:
        """A result its own checks contradict is no network fact: never report it."""
        what = "; ".join(broken)
        message = (
            f"engine fault: the {result.tool or 'agent'} answered {result.status}, which breaks "
            f"an invariant ({what}); the answer was discarded"
        )
        log.error("cell %s x %s: %s", result.source, result.target, message)
        self.faults.append(f"{result.source} x {result.target}: {message}")
        # Judged again as the source-error it now is, by assemble.
        update = {"status": "source-error", "message": message, "expected": None, "met": None}
        return result.model_copy(update=update)

    def finish_held(self) -> None:
        """Held cells of sources that reported no row at all."""
        seen_sources = {info.source_name for info in self.rows.values()}
        for source, held in self.held.items():
            if source not in seen_sources:
                for request, status, message in held:
                    self.result(failed_result(source, source, request, status, message))


async def _resolve(matrix: Matrix, context: RunContext, columns: dict[str, list[Column]]) -> None:
    """Every target's columns into `columns` (in matrix order; a target still resolving when
    the run is cut keeps none). A few workers share the targets: resolvers that wait (API
    lookups) still overlap, and thousands of static targets do not cost a task each."""
    columns.update({name: [] for name in matrix.targets})
    names = iter(list(columns))

    async def worker() -> None:
        for name in names:  # one iterator for all workers: each target is taken once
            spec = matrix.targets[name]
            columns[name] = await RESOLVERS[spec.kind](name, spec, context)

    async with anyio.create_task_group() as group:
        for _ in range(min(len(columns), RESOLVE_WORKERS)):
            group.start_soon(worker)


class _Run:
    """One run: resolve the targets, expand the cells, run every source under the deadline."""

    def __init__(
        self, loaded: LoadedMatrix, options: RunOptions, on_event: EventHandler | None
    ) -> None:
        matrix = loaded.matrix
        self.loaded = loaded
        self.options = options
        self.on_event = on_event
        self.started_at, self.started = datetime.now(UTC), time.monotonic()
        # Names this run in what it sends (the User-Agent of http probes), so the servers' own
        # logs can be searched for it.
        self.run_id = secrets.token_hex(6)
        self.context = RunContext(matrix, options.kube, options.docker)
        self.settings = RunSettings(
            concurrency=options.concurrency or matrix.defaults.concurrency,
            timeout=options.timeout or matrix.defaults.timeout,
            http_client=matrix.defaults.http_client,
            context=self.context,
        )
        self.faults: list[str] = []
        self.collector = _Collector(on_event, self.faults)
        self.cells: list[CellRequest] = []
        self.columns: dict[str, list[Column]] = {}
        self.interrupted = False
        self.expanded = False  # the cells are known (the targets resolved)

    async def execute(self, interrupt: anyio.Event | None) -> None:
        """Probe until done, the deadline, or `interrupt`; faults of the engine raise."""
        matrix = self.loaded.matrix
        deadline = self.options.deadline or matrix.defaults.deadline
        try:
            async with self.context, anyio.create_task_group() as outer:
                run_scope = anyio.CancelScope(
                    deadline=anyio.current_time() + deadline if deadline else float("inf")
                )

                async def watch_interrupt() -> None:
                    if interrupt is not None:
                        await interrupt.wait()
                        self.interrupted = True
                        run_scope.cancel()

                outer.start_soon(watch_interrupt)
                with run_scope:
                    await self._probe()
                if not self.expanded:
                    self._cut_while_resolving()
                if not self.interrupted:
                    await self._server_side()
                outer.cancel_scope.cancel()
        except ProbeEngineError:
            raise
        except Exception as exc:
            if isinstance(exc, ExceptionGroup):  # bad input found inside the task group
                found = _first_spec_error(exc)
                if found is not None:
                    raise found from None
            raise EngineError(f"the run failed: {type(exc).__name__}: {exc}") from exc

    async def _probe(self) -> None:
        matrix, collector = self.loaded.matrix, self.collector
        await _resolve(matrix, self.context, self.columns)
        self.options.select.check(matrix, self.columns)  # a glob matching no column: bad input
        collector.plans = {c.name: c.plan for cs in self.columns.values() for c in cs}
        marker = f"probe-engine/{__version__} run={self.run_id}"
        self.cells = expand(matrix, self.columns, self.options.select, self.options.timeout, marker)
        self.expanded = True
        if self.on_event:
            every_column = [c for cs in self.columns.values() for c in cs]
            self.on_event(Planned(len(self.cells), list(matrix.sources), every_column))
        async with anyio.create_task_group() as group:
            for name, batch in self._batches().items():
                group.start_soon(self._run_source, name, batch)
        collector.finish_held()

    def _cut_while_resolving(self) -> None:
        """The deadline or an interrupt came while the targets were being resolved: every
        cell still counts, cancelled, so that a cut run never reads as an empty pass. A target
        not resolved yet is one column that says so."""
        matrix = self.loaded.matrix
        for name, spec in matrix.targets.items():
            if not self.columns.get(name):
                reason = "the run was cut before this target was resolved"
                self.columns[name] = [
                    Column(name, name, spec.kind, name, None, error=("cancelled", reason))
                ]
        self.cells = expand(matrix, self.columns, self.options.select, self.options.timeout)
        self.expanded = True

    async def _server_side(self) -> None:
        """After the probes: what the servers logged of them (evidence.pod_logs on Services,
        evidence.container_logs on http targets), bounded. Their modules are imported only
        for a matrix that asks."""
        matrix = self.loaded.matrix
        targets = matrix.targets.values()
        with anyio.move_on_after(SERVER_SIDE_S):
            if any(spec.kind == "kubernetes-service" and spec.evidence for spec in targets):
                await self._pod_logs()
            if any(spec.kind == "http" and spec.evidence for spec in targets):
                from .targets.docker_logs import attach_container_logs
                from .targets.server_logs import cell_markers

                await attach_container_logs(
                    matrix,
                    self.context.docker,
                    time.monotonic() - self.started,
                    cell_markers(self.cells, self.run_id),
                    self.collector.results,
                )

    async def _pod_logs(self) -> None:
        from .targets.kubernetes.pod_logs import attach_pod_logs, wants_pod_logs
        from .targets.server_logs import cell_markers

        wanted = wants_pod_logs(self.loaded.matrix)
        if not wanted:
            return
        try:
            kube = await self.context.kube.client()
        except KubeError:
            return  # the columns already say why the cluster could not be reached
        await attach_pod_logs(
            kube,
            time.monotonic() - self.started,
            [c for name in wanted for c in self.columns.get(name, [])],
            cell_markers(self.cells, self.run_id),
            self.collector.results,
        )

    def _batches(self) -> dict[str, list[CellRequest]]:
        """The cells each source runs; the others are answered without probing."""
        matrix = self.loaded.matrix
        batches: dict[str, list[CellRequest]] = {}
        for request in self.cells:
            kind = matrix.sources[request.source].kind
            if request.column.plan is None:
                status, message = request.column.error or ("target-error", "unresolved")
                self.collector.hold(request, status, message)
            elif request.column.local_only and not SOURCES[kind].shares_loopback:
                self.collector.hold(request, "source-error", LOCAL_ONLY.format(kind=kind))
            else:
                batches.setdefault(request.source, []).append(request)
        return batches

    async def _run_source(self, name: str, batch: Sequence[CellRequest]) -> None:
        spec = self.loaded.matrix.sources[name]
        source = SOURCES[spec.kind](name, spec, self.settings)
        try:
            async with source:
                await source.run(batch, self.collector)
        except Exception as exc:  # a bug in a source kind: its row fails, the matrix completes
            log.exception("source %s failed", name)
            message = f"internal error in the {spec.kind} source: {type(exc).__name__}: {exc}"
            self.faults.append(f"{name}: {message}")
            for request in batch:
                self.collector.result(failed_result(name, name, request, "source-error", message))

    def record(self) -> RunRecord:
        return RunRecord(
            loaded=self.loaded,
            fail_on=self.options.fail_on,
            started_at=self.started_at,
            finished_at=datetime.now(UTC),
            duration=time.monotonic() - self.started,
            cells=self.cells,
            columns=self.columns,
            rows=self.collector.rows,
            results=self.collector.results,
            interrupted=self.interrupted,
            faults=self.faults,
            run_id=self.run_id,
        )


async def run_matrix(
    loaded: LoadedMatrix,
    options: RunOptions | None = None,
    on_event: EventHandler | None = None,
    interrupt: anyio.Event | None = None,
) -> MatrixResult:
    """Run a loaded matrix and return its result. Network failures are results, not errors."""
    options = options or RunOptions()
    options.select.check(loaded.matrix)  # a typo in --select is bad input, before anything runs
    run = _Run(loaded, options, on_event)
    await run.execute(interrupt)
    return assemble(run.record())


def _first_spec_error(group: BaseExceptionGroup[BaseException]) -> SpecError | None:
    for exc in group.exceptions:
        if isinstance(exc, SpecError):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = _first_spec_error(exc)
            if found is not None:
                return found
    return None
