"""How many cells a matrix makes, known from the file alone, and the limit on it.

Every target's columns are known before anything is resolved (a tcp target has one per port,
a kubernetes-service target one per `via`, others one), so the count here is the count a
run expands to (plan.expand), before --select: refused at validation, before any probe.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import SpecError
from .limits import MAX_CELLS

if TYPE_CHECKING:
    from .matrix import CellPattern, Matrix
    from .yamlfile import Document


def column_names(name: str, spec: Any) -> list[str]:
    """The columns a target becomes, by name, as the resolvers name them."""
    if spec.kind == "tcp" and spec.port is None:
        return [f"{name}:{port}" for port in spec.port_list()]
    if spec.kind == "kubernetes-service":
        return [f"{name}/{via}" for via in spec.vias()]
    return [name]


def _matches(pattern: str, *names: str) -> bool:
    return pattern == "*" or any(fnmatch.fnmatchcase(name, pattern) for name in names)


def count_cells(
    sources: Sequence[str],
    columns: Sequence[tuple[str, str]],
    cells: Sequence[CellPattern] | None,
    exclude: Sequence[CellPattern],
) -> int:
    """Sources x columns (name, target name) kept by `cells` and not removed by `exclude`.

    Sources that the same patterns name are counted together: the work is columns x
    patterns per distinct group, not per source."""
    if cells is None and not exclude:
        return len(sources) * len(columns)
    groups: dict[tuple[tuple[int, ...], tuple[int, ...]], int] = {}
    for source in sources:
        keep = tuple(i for i, p in enumerate(cells or ()) if _matches(p.source, source))
        drop = tuple(i for i, p in enumerate(exclude) if _matches(p.source, source))
        groups[keep, drop] = groups.get((keep, drop), 0) + 1
    total = 0
    for (keep, drop), members in groups.items():
        kept = 0
        for column, target in columns:
            if cells is not None and not any(
                _matches(cells[i].target, target, column) for i in keep
            ):
                continue
            if any(_matches(exclude[i].target, target, column) for i in drop):
                continue
            kept += 1
        total += kept * members
    return total


def check_cell_count(document: Document, matrix: Matrix) -> list[SpecError]:
    columns = [
        (column, name)
        for name, spec in matrix.targets.items()
        for column in column_names(name, spec)
    ]
    total = count_cells(list(matrix.sources), columns, matrix.cells, matrix.exclude)
    if total <= MAX_CELLS:
        return []
    filtered = " after cells: and exclude:" if matrix.cells is not None or matrix.exclude else ""
    return [
        document.error(
            ("targets",),
            f"the matrix makes {total:,} cells ({len(matrix.sources):,} sources x "
            f"{len(columns):,} columns{filtered}): more than the {MAX_CELLS:,} a run may "
            "have; split it, or narrow it with cells: or exclude:",
            key=True,
        )
    ]
