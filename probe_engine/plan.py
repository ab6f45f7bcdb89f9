"""Expands a matrix into cells: sources x columns, minus excludes, within --select."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .errors import SpecError
from .model import CellRequest, Column
from .spec import CellPattern, Matrix
from .status import Status


@dataclass(frozen=True)
class Selection:
    """--select source=GLOB,target=GLOB: run a subset."""

    source: str = "*"
    target: str = "*"

    @classmethod
    def parse(cls, text: str | None) -> Selection:
        if not text:
            return cls()
        values: dict[str, str] = {}
        for part in text.split(","):
            key, equals, value = part.partition("=")
            key = key.strip()
            if not equals or key not in ("source", "target") or not value.strip():
                raise SpecError(f"{part!r} is not source=GLOB or target=GLOB", field="--select")
            values[key] = value.strip()
        return cls(**values)


def _matches(pattern: str, *names: str) -> bool:
    return pattern == "*" or any(fnmatch.fnmatchcase(name, pattern) for name in names)


def pattern_matches(
    pattern: CellPattern | Selection, source: str, column: Column, row: str | None = None
) -> bool:
    """A pattern names a source (or a row source/instance) and a target (or a column)."""
    sources = (source, row) if row else (source,)
    return _matches(pattern.source, *sources) and _matches(
        pattern.target, column.target_name, column.name
    )


def expand(
    matrix: Matrix,
    columns: Mapping[str, Sequence[Column]],
    selection: Selection = Selection(),
    timeout: float | None = None,
) -> list[CellRequest]:
    """Every cell to run, in matrix order (sources, then columns)."""
    cells: list[CellRequest] = []
    for source in matrix.sources:
        for target in matrix.targets:
            for column in columns.get(target, ()):
                if matrix.cells is not None and not any(
                    pattern_matches(p, source, column) for p in matrix.cells
                ):
                    continue
                if any(pattern_matches(p, source, column) for p in matrix.exclude):
                    continue
                if not pattern_matches(selection, source, column):
                    continue
                cell_timeout = timeout or column.timeout or matrix.defaults.timeout
                cells.append(CellRequest(len(cells), source, column, cell_timeout))
    return cells


def expectation_for(
    matrix: Matrix, source: str, row: str, column: Column
) -> tuple[Status, ...] | None:
    """The statuses expected of a cell: the last matching `expect` entry wins."""
    found = None
    for expectation in matrix.expect:
        if pattern_matches(expectation, source, column, row):
            found = expectation.statuses()
    return found
