"""Runs a matrix: resolve targets, expand cells, run every source concurrently, judge, diagnose.

Sources run side by side in one task group; each runs its whole batch at once (one agent per
place) under the matrix's concurrency. A global deadline and an interrupt (Ctrl-C, SIGTERM)
cancel what is left; unfinished cells are marked `cancelled` and a result is still returned.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import anyio

from ._version import __version__
from .agent.plans import Plan
from .agent.proxy import redact, strip_credentials
from .diagnose import diagnose
from .docker_host import DockerOverrides
from .errors import EngineError, ProbeEngineError, SpecError
from .invariants import broken_invariants
from .kube import KubeOverrides
from .model import CellRequest, Column, RunContext
from .plan import Selection, expand, expectation_for
from .results import (
    CellResult,
    Expectations,
    MatrixRef,
    MatrixResult,
    SourceInfo,
    Summary,
    TargetInfo,
)
from .sources import SOURCES, RunSettings
from .sources.base import failed_result
from .spec import LoadedMatrix, Matrix
from .status import EXIT_ENGINE, EXIT_INTERRUPTED, EXIT_OK, EXIT_UNMET, Status
from .targets import RESOLVERS

log = logging.getLogger("probe_engine")
LOCAL_ONLY = (
    "this column listens on 127.0.0.1 of the machine running probe-engine (a port-forward "
    "tunnel): a {kind} source probes from elsewhere and cannot reach it; exclude the cell, or "
    "probe it from a local, process or shell source"
)
FailOn = Literal["unmet", "any-failure", "never"]
RESOLVE_WORKERS = 32


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


Event = Planned | RowSeen | CellDone
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
        return result.model_copy(update={"status": "source-error", "message": message})

    def finish_held(self) -> None:
        """Held cells of sources that reported no row at all."""
        seen_sources = {info.source_name for info in self.rows.values()}
        for source, held in self.held.items():
            if source not in seen_sources:
                for request, status, message in held:
                    self.result(failed_result(source, source, request, status, message))


async def _resolve(matrix: Matrix, context: RunContext) -> dict[str, list[Column]]:
    """Every target's columns, in matrix order. A few workers share the targets: resolvers
    that wait (API lookups) still overlap, and thousands of static targets do not cost a
    task each."""
    columns: dict[str, list[Column]] = {name: [] for name in matrix.targets}
    names = iter(columns)

    async def worker() -> None:
        for name in names:  # one iterator for all workers: each target is taken once
            spec = matrix.targets[name]
            columns[name] = await RESOLVERS[spec.kind](name, spec, context)

    async with anyio.create_task_group() as group:
        for _ in range(min(len(columns), RESOLVE_WORKERS)):
            group.start_soon(worker)
    return columns


async def _run_source(
    name: str,
    batch: Sequence[CellRequest],
    matrix: Matrix,
    settings: RunSettings,
    sink: _Collector,
    faults: list[str],
) -> None:
    spec = matrix.sources[name]
    source = SOURCES[spec.kind](name, spec, settings)
    try:
        async with source:
            await source.run(batch, sink)
    except Exception as exc:  # a bug in a source kind: its row fails, the matrix completes
        log.exception("source %s failed", name)
        message = f"internal error in the {spec.kind} source: {type(exc).__name__}: {exc}"
        faults.append(f"{name}: {message}")
        for request in batch:
            sink.result(failed_result(name, name, request, "source-error", message))


def _exit_status(
    cells: Sequence[CellResult], fail_on: FailOn, interrupted: bool, faults: Sequence[str]
) -> int:
    if interrupted:
        return EXIT_INTERRUPTED
    if faults:
        return EXIT_ENGINE
    if fail_on == "never":
        return EXIT_OK
    if any(c.met is False for c in cells):
        return EXIT_UNMET
    if any(c.status == "cancelled" for c in cells):
        return EXIT_UNMET  # cut short: never a pass, expectations declared or not
    if fail_on == "any-failure" and any(c.met is None and c.status != "ok" for c in cells):
        return EXIT_UNMET
    return EXIT_OK


def _judge(matrix: Matrix, cell: CellResult, column: Column) -> CellResult:
    expected = expectation_for(matrix, cell.source_name, cell.source, column)
    if expected is None:
        return cell
    return cell.model_copy(update={"expected": list(expected), "met": cell.status in expected})


async def run_matrix(
    loaded: LoadedMatrix,
    options: RunOptions | None = None,
    on_event: EventHandler | None = None,
    interrupt: anyio.Event | None = None,
) -> MatrixResult:
    """Run a loaded matrix and return its result. Network failures are results, not errors."""
    options = options or RunOptions()
    matrix = loaded.matrix
    options.select.check(matrix)  # a typo in --select is bad input, before anything runs
    started_at, started = datetime.now(UTC), time.monotonic()
    context = RunContext(matrix, options.kube, options.docker)
    settings = RunSettings(
        concurrency=options.concurrency or matrix.defaults.concurrency,
        timeout=options.timeout or matrix.defaults.timeout,
        http_client=matrix.defaults.http_client,
        context=context,
    )
    deadline = options.deadline or matrix.defaults.deadline
    faults: list[str] = []
    collector = _Collector(on_event, faults)
    cells: list[CellRequest] = []
    columns: dict[str, list[Column]] = {}
    interrupted = False
    try:
        async with context.resources, anyio.create_task_group() as outer:
            run_scope = anyio.CancelScope(
                deadline=anyio.current_time() + deadline if deadline else float("inf")
            )

            async def watch_interrupt() -> None:
                nonlocal interrupted
                if interrupt is not None:
                    await interrupt.wait()
                    interrupted = True
                    run_scope.cancel()

            outer.start_soon(watch_interrupt)
            with run_scope:
                columns = await _resolve(matrix, context)
                options.select.check(matrix, columns)  # a glob matching no column: bad input
                collector.plans = {c.name: c.plan for cs in columns.values() for c in cs}
                cells = expand(matrix, columns, options.select, options.timeout)
                if on_event:
                    on_event(
                        Planned(
                            len(cells),
                            list(matrix.sources),
                            [c for cs in columns.values() for c in cs],
                        )
                    )
                batches: dict[str, list[CellRequest]] = {}
                for request in cells:
                    plan = request.column.plan
                    kind = matrix.sources[request.source].kind
                    if plan is None:
                        status, message = request.column.error or ("target-error", "unresolved")
                        collector.hold(request, status, message)
                    elif request.column.local_only and not SOURCES[kind].shares_loopback:
                        collector.hold(request, "source-error", LOCAL_ONLY.format(kind=kind))
                    else:
                        batches.setdefault(request.source, []).append(request)
                async with anyio.create_task_group() as group:
                    for name, batch in batches.items():
                        group.start_soon(
                            _run_source, name, batch, matrix, settings, collector, faults
                        )
                collector.finish_held()
            outer.cancel_scope.cancel()
    except ProbeEngineError:
        raise
    except Exception as exc:
        if isinstance(exc, ExceptionGroup):  # bad input found inside the task group
            found = _first_spec_error(exc)
            if found is not None:
                raise found from None
        raise EngineError(f"the run failed: {type(exc).__name__}: {exc}") from exc
    finished_at = datetime.now(UTC)
    return _assemble(
        loaded,
        options,
        started_at,
        finished_at,
        time.monotonic() - started,
        cells,
        columns,
        collector,
        interrupted,
        faults,
    )


def _first_spec_error(group: BaseExceptionGroup[BaseException]) -> SpecError | None:
    for exc in group.exceptions:
        if isinstance(exc, SpecError):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = _first_spec_error(exc)
            if found is not None:
                return found
    return None


def _assemble(
    loaded: LoadedMatrix,
    options: RunOptions,
    started_at: datetime,
    finished_at: datetime,
    duration: float,
    cells: Sequence[CellRequest],
    columns: Mapping[str, Sequence[Column]],
    collector: _Collector,
    interrupted: bool,
    faults: Sequence[str],
) -> MatrixResult:
    matrix = loaded.matrix
    column_by_name = {c.name: c for cs in columns.values() for c in cs}
    # Rows in matrix order; a source that reported no row keeps its own name.
    rows_by_source: dict[str, list[str]] = {name: [] for name in matrix.sources}
    for info in collector.rows.values():
        rows_by_source.setdefault(info.source_name, []).append(info.name)
    reason = (
        "interrupted before this cell finished"
        if interrupted
        else "the run's deadline passed before this cell finished"
    )
    for request in cells:
        rows = rows_by_source[request.source] or [request.source]
        for row in rows:
            key = (row, request.column.name)
            answered = collector.results.get(key)
            if answered is None:
                collector.results[key] = failed_result(
                    row, request.source, request, "cancelled", reason
                )
            elif answered.status == "cancelled" and answered.checks:
                # Cut mid-way: the phases it finished and the one it was in, after why.
                said = f"{reason}: {answered.message}" if answered.message else reason
                collector.results[key] = answered.model_copy(update={"message": said})
    used_sources = {r.source for r in cells}
    infos: list[SourceInfo] = []
    for name in matrix.sources:
        if name not in used_sources:
            continue
        found = [collector.rows[row] for row in rows_by_source[name] if row in collector.rows]
        infos.extend(
            found or [SourceInfo(name=name, source_name=name, kind=matrix.sources[name].kind)]
        )
    order = {info.name: index for index, info in enumerate(infos)}
    used_columns = {r.column.name for r in cells}
    targets = [_target_info(c) for cs in columns.values() for c in cs if c.name in used_columns]
    column_order = {t.name: index for index, t in enumerate(targets)}
    judged = [
        _judge(matrix, cell, column_by_name[cell.target])
        for cell in sorted(
            collector.results.values(),
            key=lambda c: (order.get(c.source, len(order)), column_order.get(c.target, 0)),
        )
    ]
    by_status: dict[str, int] = {}
    for cell in judged:
        by_status[cell.status] = by_status.get(cell.status, 0) + 1
    expectations = Expectations(
        met=sum(1 for c in judged if c.met is True),
        unmet=sum(1 for c in judged if c.met is False),
        none=sum(1 for c in judged if c.met is None),
    )
    incomplete = by_status.get("cancelled", 0)
    result = MatrixResult(
        tool_version=__version__,
        started_at=started_at,
        finished_at=finished_at,
        duration_s=round(duration, 6),
        matrix=MatrixRef(path=loaded.path, sha256=loaded.sha256),
        interrupted=interrupted,
        exit_status=_exit_status(judged, options.fail_on, interrupted, faults),
        fail_on=options.fail_on,
        summary=Summary(
            total=len(judged),
            by_status=by_status,
            expectations=expectations,
            incomplete=incomplete,
            cut_by=("interrupt" if interrupted else "deadline") if incomplete else None,
        ),
        sources=infos,
        targets=targets,
        cells=judged,
    )
    return result.model_copy(update={"findings": diagnose(result)})


def _target_info(column: Column) -> TargetInfo:
    """A column as report.json tells it: in words (endpoint), and as data (host, port...)."""
    plan = column.plan
    url = plan.get("url") if plan else None
    return TargetInfo(
        name=column.name,
        target_name=column.target_name,
        kind=column.kind,
        endpoint=column.endpoint,
        via=column.via,
        facts=dict(column.facts),
        host=plan["host"] if plan else None,
        port=plan.get("port") if plan else None,
        addresses=plan.get("addresses") if plan else None,
        url=redact(strip_credentials(url)) if url else None,
    )
