"""Reading cells: grouped by row or column, the check that decided a cell, the addresses it
tried, the rows that fail as a whole.

Every rule reads the same cells again: what is read per cell (the deciding check, the
addresses tried) and the groupings are kept for one diagnosis (`fresh()` starts one), so
10,000 cells cost a few passes, not one per rule (bench/diagnosis.py measures it).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..agent.address import family_of
from ..results import CellResult, CheckRecord, MatrixResult, SourceInfo, TargetInfo
from ..status import FAILED

# What was read, by what and by id of the object read, with the object itself: holding it
# keeps its id from being reused. Valid for one diagnosis (diagnose() calls fresh() before
# and after).
_KEPT: dict[str, dict[int, tuple[object, Any]]] = defaultdict(dict)


def fresh() -> None:
    """Forget what was read: a new diagnosis (of another result) begins."""
    _KEPT.clear()


def kept(what: str, thing: object, read: Any) -> Any:
    """read(thing), read once per diagnosis."""
    table = _KEPT[what]
    found = table.get(id(thing))
    if found is None or found[0] is not thing:
        found = table[id(thing)] = (thing, read(thing))
    return found[1]


def _columns(result: MatrixResult) -> dict[str, list[CellResult]]:
    groups: dict[str, list[CellResult]] = defaultdict(list)
    for cell in result.cells:
        groups[cell.target].append(cell)
    return dict(groups)


def _rows(result: MatrixResult) -> dict[str, list[CellResult]]:
    groups: dict[str, list[CellResult]] = defaultdict(list)
    for cell in result.cells:
        groups[cell.source].append(cell)
    return dict(groups)


def by_target(result: MatrixResult) -> dict[str, list[CellResult]]:
    """The cells of each column (read, never changed, by the rules)."""
    found: dict[str, list[CellResult]] = kept("by_target", result, _columns)
    return found


def by_source(result: MatrixResult) -> dict[str, list[CellResult]]:
    """The cells of each row (read, never changed, by the rules)."""
    found: dict[str, list[CellResult]] = kept("by_source", result, _rows)
    return found


def source_info(result: MatrixResult, row: str) -> SourceInfo | None:
    infos: dict[str, SourceInfo] = kept("sources", result, lambda r: {s.name: s for s in r.sources})
    return infos.get(row)


def target_info(result: MatrixResult, column: str) -> TargetInfo | None:
    infos: dict[str, TargetInfo] = kept("targets", result, lambda r: {t.name: t for t in r.targets})
    return infos.get(column)


def first_failure(cell: CellResult) -> CheckRecord | None:
    """The check that decided the cell's status (the first one that is not ok). Read again
    each time: a cell has a few checks, and looking up a kept answer costs more (bench)."""
    for check in cell.checks:
        if check.status != "ok":
            return check
    return None


class Hop(NamedTuple):
    """One address a cell connected to (or tried), from its tcp records (a tuple: made for
    every cell of a run, so cheap to make)."""

    address: str
    port: int | None
    family: str | None
    status: str
    errno_name: str | None
    source_address: str | None


def hops(cell: CellResult) -> list[Hop]:
    """The target addresses a cell tried (not the proxy's), in the order it tried them."""
    # kept() inlined: several rules read every cell's hops, and this runs 10,000s of times.
    table = _KEPT["hops"]
    found = table.get(id(cell))
    if found is None or found[0] is not cell:
        found = table[id(cell)] = (cell, _hops(cell))
    made: list[Hop] = found[1]
    return made


def _hops(cell: CellResult) -> list[Hop]:
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
    found: dict[str, DownRow] = kept("down_rows", result, _down_rows)
    return found


def _down_rows(result: MatrixResult) -> dict[str, DownRow]:
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
