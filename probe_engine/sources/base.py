"""The contract of a source kind, and the helpers every kind uses to report cells.

A source gets code running somewhere (this process, a child, a container, a pod, a network
namespace) and reports each finished cell to a Sink. It never raises for a network failure,
nor for its own failure to start: those are results (`source-error`) so the matrix completes.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol

from anyio.abc import AsyncResource
from pydantic import TypeAdapter

from ..agent.plans import Batch, CellOrder
from ..agent.proxy import redact
from ..agent.records import CellOutcome
from ..compat import UTC
from ..model import CellRequest, RunContext
from ..plan import expectation_for
from ..results import CellResult, SourceInfo
from ..spec import Matrix
from ..status import Status


@dataclass(frozen=True)
class RunSettings:
    """Run-wide options a source needs."""

    concurrency: int
    timeout: float
    http_client: str
    # The run's context: the matrix, and what is shared with the targets (the Kubernetes
    # client) and lives until the run ends.
    context: RunContext


class Sink(Protocol):
    """Where a source reports: rows (with their facts) and finished cells."""

    def row(self, info: SourceInfo) -> None: ...

    def result(self, result: CellResult) -> None: ...


class Source(AsyncResource):
    """One declared source. Use as an async context manager; `run` reports through `sink`."""

    kind: ClassVar[str]
    # Probes run in the engine's own network namespace: 127.0.0.1 is the engine's loopback
    # (where port-forward tunnels listen). False for containers, pods and other namespaces.
    shares_loopback: ClassVar[bool] = False

    def __init__(self, name: str, spec: Any, settings: RunSettings) -> None:
        self.name = name
        self.spec = spec
        self.settings = settings

    async def aclose(self) -> None:
        """Release what the source holds for the run (nothing, unless a kind says so)."""

    @abc.abstractmethod
    async def run(self, batch: Sequence[CellRequest], sink: Sink) -> None:
        """Run every cell of `batch`; report each (and each row) to `sink`."""

    # --- helpers for kinds ----------------------------------------------------------------

    def http_client(self) -> str:
        return getattr(self.spec, "http_client", None) or self.settings.http_client

    def agent_request(self, batch: Sequence[CellRequest]) -> Batch:
        """The batch as the agent reads it (cells without a plan never reach a source)."""
        return Batch(
            concurrency=self.settings.concurrency,
            timeout=self.settings.timeout,
            http_client=self.http_client(),
            trust_env=getattr(self.spec, "trust_env", True),
            cells=[
                CellOrder(id=r.id, timeout=r.timeout, plan=r.column.plan)
                for r in batch
                if r.column.plan is not None
            ],
        )

    def row_info(self, row: str | None = None, **fields: Any) -> SourceInfo:
        return SourceInfo(name=row or self.name, source_name=self.name, kind=self.kind, **fields)

    def fail_row(
        self,
        sink: Sink,
        batch: Sequence[CellRequest],
        message: str,
        facts: Mapping[str, Any] | None = None,
        row: str | None = None,
    ) -> None:
        """The row could not probe at all: it says why, and each of its cells is a
        source-error with that reason."""
        message = redact(message)
        sink.row(self.row_info(row, status="error", message=message, facts=facts or {}))
        fail_batch(sink, row or self.name, self.name, batch, message)


def _cell_data(
    row: str, source_name: str, request: CellRequest, data: CellOutcome, matrix: Matrix | None
) -> dict[str, Any]:
    started = data.get("started_at")
    column = request.column
    status = data.get("status", "source-error")
    cell = {
        "source": row,
        "source_name": source_name,
        "target": column.name,
        "target_name": column.target_name,
        "endpoint": column.endpoint,
        "status": status,
        "duration_ms": data.get("duration_ms") or 0.0,
        "started_at": datetime.fromtimestamp(started, UTC) if started else datetime.now(UTC),
        "proxy": data.get("proxy"),
        "tls": data.get("tls"),
        "checks": data.get("checks") or [],
        "message": data.get("message"),
        "tool": data.get("tool") or "agent",
    }
    if matrix is not None and matrix.expect:
        # Judged as it is made, not by a copy later (assemble judges the cells made without
        # `matrix`, and those the engine answers itself).
        expected = expectation_for(matrix, source_name, row, column)
        if expected is not None:
            cell["expected"], cell["met"] = list(expected), status in expected
    return cell


def make_result(
    row: str,
    source_name: str,
    request: CellRequest,
    data: CellOutcome,
    matrix: Matrix | None = None,
) -> CellResult:
    """A CellResult from an agent- or tool-shaped dict; with `matrix`, judged against its
    expectation."""
    return CellResult.model_validate(_cell_data(row, source_name, request, data, matrix))


_CELL_LIST = TypeAdapter(list[CellResult])


def make_results(
    row: str,
    source_name: str,
    pairs: Iterable[tuple[CellRequest, CellOutcome]],
    matrix: Matrix | None = None,
) -> list[CellResult]:
    """make_result for a batch, validated in one call (a third cheaper per cell); with
    `matrix`, each judged against its expectation."""
    cells = [_cell_data(row, source_name, r, d, matrix) for r, d in pairs]
    return _CELL_LIST.validate_python(cells)


def failed_result(
    row: str,
    source_name: str,
    request: CellRequest,
    status: Status,
    message: str,
) -> CellResult:
    """A cell that never got a network answer: the source failed, or the run was cut."""
    column = request.column
    return CellResult(
        source=row,
        source_name=source_name,
        target=column.name,
        target_name=column.target_name,
        endpoint=column.endpoint,
        status=status,
        message=redact(message),
        started_at=datetime.now(UTC),
    )


def fail_batch(
    sink: Sink, row: str, source_name: str, batch: Iterable[CellRequest], message: str
) -> None:
    """Report every cell of `batch` as a source-error with `message`."""
    for request in batch:
        sink.result(failed_result(row, source_name, request, "source-error", message))
