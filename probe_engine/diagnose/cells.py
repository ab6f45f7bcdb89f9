"""Reading cells: grouped by row or column, the check that decided a cell, the addresses it
tried, the rows that fail as a whole, and the evidence a finding cites."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from ..agent.address import family_of
from ..results import CellResult, CheckRecord, Evidence, MatrixResult, SourceInfo, TargetInfo
from ..status import FAILED


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
    """Evidence in the order given, each cell once."""
    seen: set[tuple[str, str]] = set()
    out = []
    for c in cells:
        if (c.source, c.target) not in seen:
            seen.add((c.source, c.target))
            out.append(Evidence(source=c.source, target=c.target, status=c.status))
    return out


def source_info(result: MatrixResult, row: str) -> SourceInfo | None:
    return next((s for s in result.sources if s.name == row), None)


def target_info(result: MatrixResult, column: str) -> TargetInfo | None:
    return next((t for t in result.targets if t.name == column), None)


def first_failure(cell: CellResult) -> CheckRecord | None:
    """The check that decided the cell's status (the first one that is not ok)."""
    return next((c for c in cell.checks if c.status != "ok"), None)


@dataclass(frozen=True)
class Hop:
    """One address a cell connected to (or tried), from its tcp records."""

    address: str
    port: int | None
    family: str | None
    status: str
    errno_name: str | None
    source_address: str | None


def hops(cell: CellResult) -> list[Hop]:
    """The target addresses a cell tried (not the proxy's), in the order it tried them."""
    found = [
        Hop(
            r.address,
            r.port,
            r.family or family_of(r.address),
            r.status,
            r.errno_name,
            r.source_address,
        )
        for r in cell.checks
        if r.name == "tcp" and r.address and r.role != "proxy"
    ]
    return found


def host_of(cell: CellResult, info: TargetInfo | None) -> str:
    """The name or address a cell's column probes: its target's host, else the first address
    the cell tried, else its endpoint (words, used as a label only)."""
    if info is not None and info.host:
        return info.host
    tried = hops(cell)
    return tried[0].address if tried else cell.endpoint


@dataclass(frozen=True)
class DownRow:
    row: str
    cells: list[CellResult]  # the row's probed cells, all failing
    could_not_run: bool
    contrast: dict[str, CellResult]  # target -> an ok cell of another row


def down_rows(result: MatrixResult) -> dict[str, DownRow]:
    """Rows that could not run, or that fail every cell while other rows reach some of the same
    targets (with one cell only, that is a per-cell difference, not a row problem)."""
    columns = by_target(result)
    infos = {s.name: s for s in result.sources}
    down: dict[str, DownRow] = {}
    for row, cells in by_source(result).items():
        probed = [c for c in cells if c.status not in ("cancelled", "target-error")]
        if not probed:
            continue
        info = infos.get(row)
        could_not_run = info is not None and info.status == "error"
        if all(c.status == "source-error" for c in probed) or (
            could_not_run and not any(c.status == "ok" for c in probed)
        ):
            down[row] = DownRow(row, probed, True, {})
            continue
        # A cell that could not run there (a local-only tunnel, say) proves nothing either way.
        probed = [c for c in probed if c.status != "source-error"]
        if len(probed) < 2 or not all(c.status in FAILED for c in probed):
            continue
        contrast: dict[str, CellResult] = {}
        for cell in probed:
            ok = [o for o in columns[cell.target] if o.status == "ok" and o.source != row]
            siblings = [o for o in ok if o.source_name == cell.source_name]
            if ok:
                contrast[cell.target] = (siblings or ok)[0]
        if contrast:
            down[row] = DownRow(row, probed, False, contrast)
    return down


def asked_names(record: CheckRecord) -> list[str] | None:
    """The names a nameserver lookup asked, its search list applied (the agent's `tried`)."""
    value = (record.model_extra or {}).get("tried")
    return [str(name) for name in value] if isinstance(value, list) else None
