"""What a run saw, made into its result: rows in matrix order, the cells no source finished
marked cancelled, every cell judged against its expectation, the summary, the exit status and
the findings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from ._version import __version__
from .agent.proxy import redact, strip_credentials
from .diagnose import diagnose
from .model import CellRequest, Column
from .plan import expectation_for
from .results import (
    CellResult,
    Expectations,
    MatrixRef,
    MatrixResult,
    SourceInfo,
    Summary,
    TargetInfo,
)
from .sources.base import failed_result
from .spec import LoadedMatrix, Matrix
from .status import EXIT_ENGINE, EXIT_INTERRUPTED, EXIT_OK, EXIT_UNMET, FailOn


@dataclass(frozen=True)
class RunRecord:
    """Everything a run saw, as the engine hands it over once the run is over."""

    loaded: LoadedMatrix
    fail_on: FailOn
    started_at: datetime
    finished_at: datetime
    duration: float
    cells: Sequence[CellRequest]  # every cell that was to run
    columns: Mapping[str, Sequence[Column]]  # by target, in matrix order
    rows: Mapping[str, SourceInfo]  # the rows sources reported
    results: Mapping[tuple[str, str], CellResult]  # by (row, column)
    interrupted: bool
    faults: Sequence[str]  # faults of the engine itself (exit status 3)
    run_id: str | None = None  # in the User-Agent of the run's http probes


def assemble(run: RunRecord) -> MatrixResult:
    """The run's MatrixResult, findings included."""
    matrix = run.loaded.matrix
    rows_by_source = _rows_by_source(run)
    results = {**run.results, **_cancelled(run, rows_by_source)}
    infos = _source_infos(run, rows_by_source)
    used_columns = {r.column.name for r in run.cells}
    targets = _target_infos(
        [c for cs in run.columns.values() for c in cs if c.name in used_columns]
    )
    column_by_name = {c.name: c for cs in run.columns.values() for c in cs}
    order = {info.name: index for index, info in enumerate(infos)}
    last = len(order)
    column_order = {t.name: index for index, t in enumerate(targets)}
    judged = [
        _judge(matrix, cell, column_by_name[cell.target])
        for cell in sorted(
            results.values(),
            key=lambda c: (order.get(c.source, last), column_order.get(c.target, 0)),
        )
    ]
    result = MatrixResult(
        tool_version=__version__,
        run_id=run.run_id,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_s=round(run.duration, 6),
        matrix=MatrixRef(path=run.loaded.path, sha256=run.loaded.sha256),
        interrupted=run.interrupted,
        exit_status=exit_status(judged, run.fail_on, run.interrupted, run.faults),
        fail_on=run.fail_on,
        summary=_summary(judged, run.interrupted),
        sources=infos,
        targets=targets,
        cells=judged,
    )
    return result.model_copy(update={"findings": diagnose(result)})


def exit_status(
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


def _rows_by_source(run: RunRecord) -> dict[str, list[str]]:
    """Each source's rows in the order they were seen; a source that reported none keeps its
    own name."""
    rows: dict[str, list[str]] = {name: [] for name in run.loaded.matrix.sources}
    for info in run.rows.values():
        rows.setdefault(info.source_name, []).append(info.name)
    return rows


def _cancelled(
    run: RunRecord, rows_by_source: Mapping[str, list[str]]
) -> dict[tuple[str, str], CellResult]:
    """The cells no source finished: the deadline or an interrupt came first. A cell cut
    mid-way keeps the phases it finished and the one it was in, after why."""
    reason = (
        "interrupted before this cell finished"
        if run.interrupted
        else "the run's deadline passed before this cell finished"
    )
    found: dict[tuple[str, str], CellResult] = {}
    results = run.results
    cut = {key for key, cell in results.items() if cell.status == "cancelled" and cell.checks}
    for request in run.cells:
        column = request.column.name
        for row in rows_by_source[request.source] or (request.source,):
            key = (row, column)
            if key in results:
                if key in cut:
                    answered = results[key]
                    said = f"{reason}: {answered.message}" if answered.message else reason
                    found[key] = answered.model_copy(update={"message": said})
            elif key not in found:
                found[key] = failed_result(row, request.source, request, "cancelled", reason)
    return found


def _source_infos(run: RunRecord, rows_by_source: Mapping[str, list[str]]) -> list[SourceInfo]:
    """The rows of the sources that had cells, in matrix order."""
    matrix = run.loaded.matrix
    used_sources = {r.source for r in run.cells}
    infos: list[SourceInfo] = []
    for name in matrix.sources:
        if name not in used_sources:
            continue
        found = [run.rows[row] for row in rows_by_source[name] if row in run.rows]
        infos.extend(
            found or [SourceInfo(name=name, source_name=name, kind=matrix.sources[name].kind)]
        )
    return infos


def _judge(matrix: Matrix, cell: CellResult, column: Column) -> CellResult:
    if cell.expected is not None:
        return cell  # judged as the source made it (sources.base.make_results)
    expected = expectation_for(matrix, cell.source_name, cell.source, column)
    if expected is None:
        return cell
    return cell.model_copy(update={"expected": list(expected), "met": cell.status in expected})


def _summary(judged: Sequence[CellResult], interrupted: bool) -> Summary:
    by_status: dict[str, int] = {}
    met: dict[bool | None, int] = {True: 0, False: 0, None: 0}
    for cell in judged:
        by_status[cell.status] = by_status.get(cell.status, 0) + 1
        met[cell.met] += 1
    expectations = Expectations(met=met[True], unmet=met[False], none=met[None])
    incomplete = by_status.get("cancelled", 0)
    return Summary(
        total=len(judged),
        by_status=by_status,
        expectations=expectations,
        incomplete=incomplete,
        cut_by=("interrupt" if interrupted else "deadline") if incomplete else None,
    )


_TARGET_INFOS = TypeAdapter(list[TargetInfo])


def _target_infos(columns: Sequence[Column]) -> list[TargetInfo]:
    """The columns as report.json tells them: in words (endpoint), and as data (host,
    port...); validated in one call (a scan has thousands)."""
    return _TARGET_INFOS.validate_python([_target_data(c) for c in columns])


def _target_data(column: Column) -> dict[str, Any]:
    plan = column.plan
    url = plan.get("url") if plan else None
    return {
        "name": column.name,
        "target_name": column.target_name,
        "kind": column.kind,
        "endpoint": column.endpoint,
        "via": column.via,
        "facts": dict(column.facts),
        "host": plan["host"] if plan else None,
        "port": plan.get("port") if plan else None,
        "addresses": plan.get("addresses") if plan else None,
        "url": redact(strip_credentials(url)) if url else None,
    }
