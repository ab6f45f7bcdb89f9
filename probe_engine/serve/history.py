"""What `serve` remembers between runs: the last N runs and, per cell, since when it has had its
status and how often it changed ("since when", and is it flapping?).

Bounded by construction: N run records, and only the cells seen in those N runs, each with at
most N statuses. A cell that leaves the matrix (a reload, a pod gone) is forgotten N runs later.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..reports.view import CellTrend
from ..results import MatrixResult

CellKey = tuple[str, str]


@dataclass(frozen=True)
class RunRecord:
    """One finished run, in a few numbers."""

    number: int
    started_at: datetime
    finished_at: datetime
    duration_s: float
    exit_status: int
    cells: int
    unmet: int
    by_status: Mapping[str, int]
    matrix_sha256: str

    def as_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "duration_s": self.duration_s,
            "exit_status": self.exit_status,
            "cells": self.cells,
            "unmet": self.unmet,
            "by_status": dict(self.by_status),
            "matrix_sha256": self.matrix_sha256,
        }


@dataclass
class CellHistory:
    """One cell across runs: its status, since when, and its recent statuses."""

    status: str
    since: datetime
    last_run: int
    recent: deque[str]
    changes_total: int = 0
    phases: set[str] = field(default_factory=set)

    def changes(self) -> int:
        """Status changes between consecutive runs among the kept ones (flaps)."""
        return sum(
            1 for before, after in zip(list(self.recent), list(self.recent)[1:]) if before != after
        )


class History:
    """The last `size` runs and the cells seen in them."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("the history keeps at least one run")
        self.size = size
        self.runs: deque[RunRecord] = deque(maxlen=size)
        self.cells: dict[CellKey, CellHistory] = {}

    def record(self, number: int, result: MatrixResult) -> RunRecord:
        """Remember a finished run; returns its record."""
        for cell in result.cells:
            key = (cell.source, cell.target)
            seen = self.cells.get(key)
            phases: set[str] = {check.name for check in cell.checks}
            if seen is None:
                self.cells[key] = CellHistory(
                    status=cell.status,
                    since=cell.started_at or result.started_at,
                    last_run=number,
                    recent=deque([cell.status], maxlen=self.size),
                    phases=phases,
                )
                continue
            if seen.status != cell.status:
                seen.status = cell.status
                seen.since = cell.started_at or result.started_at
                seen.changes_total += 1
            seen.recent.append(cell.status)
            seen.last_run = number
            seen.phases |= phases
        for key in [k for k, c in self.cells.items() if c.last_run <= number - self.size]:
            del self.cells[key]
        record = RunRecord(
            number=number,
            started_at=result.started_at,
            finished_at=result.finished_at,
            duration_s=result.duration_s,
            exit_status=result.exit_status,
            cells=result.summary.total,
            unmet=result.summary.expectations.unmet,
            by_status=dict(result.summary.by_status),
            matrix_sha256=result.matrix.sha256,
        )
        self.runs.append(record)
        return record

    def phases(self) -> dict[CellKey, set[str]]:
        return {key: cell.phases for key, cell in self.cells.items()}

    def trends(self, strip: int = 30) -> dict[CellKey, CellTrend]:
        """What the report shows per cell: since when, how often it changed, the last runs."""
        return {
            key: CellTrend(
                since=cell.since,
                changes=cell.changes(),
                runs=len(cell.recent),
                recent=tuple(list(cell.recent)[-strip:]),
            )
            for key, cell in self.cells.items()
        }

    def __iter__(self) -> Iterator[tuple[CellKey, CellHistory]]:
        return iter(self.cells.items())

    def as_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "runs": [run.as_json() for run in self.runs],
            "cells": [
                {
                    "source": source,
                    "target": target,
                    "status": cell.status,
                    "since": cell.since.isoformat(),
                    "changes": cell.changes(),
                    "changes_total": cell.changes_total,
                    "recent": list(cell.recent),
                }
                for (source, target), cell in self.cells.items()
            ],
        }
