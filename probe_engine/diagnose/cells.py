"""Reading cells: grouped by row or column, the check that decided a cell, the addresses it
tried, the rows that fail as a whole.

The groupings come from the run's index (index.py: one pass over the cells, shared by every
rule); what is made per cell (its hops) is made only for the cells a rule reads, and kept for
one diagnosis (`fresh()` starts one), so 10,000 cells cost one pass, not one per rule
(bench/diagnosis.py measures it).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..agent.address import family_of
from ..results import CellResult, CheckRecord, MatrixResult, SourceInfo, TargetInfo
from ..status import FAILED
from .index import Index, build

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


def index(result: MatrixResult) -> Index:
    """The run's cells, grouped and counted in one pass (index.py), once per diagnosis."""
    found: Index = kept("index", result, build)
    return found


def by_target(result: MatrixResult) -> dict[str, list[CellResult]]:
    """The cells of each column (read, never changed, by the rules)."""
    return index(result).columns


def by_source(result: MatrixResult) -> dict[str, list[CellResult]]:
    """The cells of each row (read, never changed, by the rules)."""
    return index(result).rows


def source_info(result: MatrixResult, row: str) -> SourceInfo | None:
    return index(result).sources.get(row)


def target_info(result: MatrixResult, column: str) -> TargetInfo | None:
    return index(result).targets.get(column)


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
    return [as_hop(r) for r in cell.checks if r.name == "tcp" and r.address and r.role != "proxy"]


def as_hop(record: CheckRecord) -> Hop:
    """The hop of a tcp record to an address (not the proxy's)."""
    assert record.address
    return Hop(
        record.address,
        record.port,
        record.family or family_of(record.address),
        record.status,
        record.errno_name,
        record.source_address,
    )


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
    found = index(result)
    down: dict[str, DownRow] = {}
    for row, cells in found.rows.items():
        # From the row's status counts: its cells are listed only for the rows that are down.
        counts = found.row_statuses[row]
        probed = len(cells) - counts.get("cancelled", 0) - counts.get("target-error", 0)
        if not probed:
            continue
        info = found.sources.get(row)
        could_not_run = info is not None and info.status == "error"
        source_errors, ok = counts.get("source-error", 0), counts.get("ok", 0)
        if source_errors == probed or (could_not_run and not ok):
            cut = [c for c in cells if c.status not in ("cancelled", "target-error")]
            down[row] = DownRow(row, cut, True, {})
            continue
        # A cell that could not run there (a local-only tunnel, say) proves nothing either way.
        if probed - source_errors < 2 or ok:
            continue  # the rest are ok or failed: one ok cell and the row works
        failed = [c for c in cells if c.status in FAILED]
        contrast: dict[str, CellResult] = {}
        for cell in failed:
            others = [o for o in found.ok_columns.get(cell.target, []) if o.source != row]
            siblings = [o for o in others if o.source_name == cell.source_name]
            if others:
                contrast[cell.target] = (siblings or others)[0]
        if contrast:
            down[row] = DownRow(row, failed, False, contrast)
    return down


def asked_names(record: CheckRecord) -> list[str] | None:
    """The names a nameserver lookup asked, its search list applied (the agent's `tried`)."""
    value = (record.model_extra or {}).get("tried")
    return [str(name) for name in value] if isinstance(value, list) else None
