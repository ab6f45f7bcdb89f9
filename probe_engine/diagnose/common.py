"""Helpers the diagnosis rules share: grouping cells, naming evidence."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from ..results import CellResult, Evidence, MatrixResult, SourceInfo

FAILED = frozenset(
    {
        "refused",
        "timeout",
        "unreachable",
        "dns-error",
        "reset",
        "http-error",
        "tls-error",
        "proxy-error",
    }
)


def by_target(result: MatrixResult) -> dict[str, list[CellResult]]:
    groups: dict[str, list[CellResult]] = defaultdict(list)
    for cell in result.cells:
        groups[cell.target].append(cell)
    return groups


def by_source(result: MatrixResult) -> dict[str, list[CellResult]]:
    groups: dict[str, list[CellResult]] = defaultdict(list)
    for cell in result.cells:
        groups[cell.source].append(cell)
    return groups


def evidence(cells: Iterable[CellResult]) -> list[Evidence]:
    return [Evidence(source=c.source, target=c.target, status=c.status) for c in cells]


def source_info(result: MatrixResult, row: str) -> SourceInfo | None:
    return next((s for s in result.sources if s.name == row), None)


def failure_words(cell: CellResult) -> str:
    """'refused (ECONNREFUSED)' from the first failed check."""
    failed = next((c for c in cell.checks if c.status != "ok"), None)
    if failed is None:
        return cell.status
    name = f" ({failed.errno_name})" if failed.errno_name else ""
    return f"{cell.status}{name}"
