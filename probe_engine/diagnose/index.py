"""One pass over a run's cells, shared by every rule.

A scan of 10,000 cells has 5000 columns, almost all alike; rules that each walked every cell
(and built every cell's hops) cost a diagnosis five times what one pass does (bench/
diagnosis.py). The pass groups the cells (by row, by column, by status), counts each row's
statuses, and notes the few things only a cell's checks say: its lookups, the address
families its connects tried, which addresses were both refused and reached, which cells tried
one address more than once. Rules read these and walk only the cells they may cite; hops
(cells.hops) are made only for those.

Everything keeps the run's order (cells, then checks), so a rule reading the index finds its
causes in the order it would have walking the cells.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..agent.address import family_of
from ..results import CellResult, CheckRecord, MatrixResult, SourceInfo, TargetInfo

# The two tcp outcomes readiness-race compares, as bits of one flag per address:port.
REACHED, REFUSED = 1, 2


@dataclass(eq=False)
class Index:
    """What the rules read of a run, in its cells' order.

    `columns`, `rows`: the cells of each target, each source. `ok_columns`: the ok cells of
    each column that has one. `by_status`: the cells of each status. `row_statuses`: how many
    cells of each status a row has. `reached`: endpoints some cell reached. `proxied`: cells
    whose proxy was used. `lookups`: each row's dns records not of a proxy, with their cell.
    `families`: the address families each row's direct connects tried (its hops').
    `tcp_outcomes`: for each address:port that cells not going through a proxy connected to,
    REACHED and/or REFUSED. `retried`: cells that connected to addresses twice or more (a
    change of heart inside one cell needs two).
    """

    result: MatrixResult
    sources: dict[str, SourceInfo]
    targets: dict[str, TargetInfo]
    columns: dict[str, list[CellResult]] = field(default_factory=dict)
    rows: dict[str, list[CellResult]] = field(default_factory=dict)
    ok_columns: dict[str, list[CellResult]] = field(default_factory=dict)
    by_status: dict[str, list[CellResult]] = field(default_factory=dict)
    row_statuses: dict[str, dict[str, int]] = field(default_factory=dict)
    reached: set[str] = field(default_factory=set)
    proxied: list[CellResult] = field(default_factory=list)
    lookups: dict[str, list[tuple[CellResult, CheckRecord]]] = field(default_factory=dict)
    families: dict[str, set[str]] = field(default_factory=dict)
    tcp_outcomes: dict[tuple[str, int | None], int] = field(default_factory=dict)
    retried: list[CellResult] = field(default_factory=list)

    def columns_of_status(self, status: str) -> set[str]:
        """The columns with a cell of this status."""
        return {c.target for c in self.by_status.get(status, [])}


def build(result: MatrixResult) -> Index:
    """The index of one run: one pass over its cells and their checks."""
    index = Index(
        result,
        sources={s.name: s for s in result.sources},
        targets={t.name: t for t in result.targets},
    )
    columns, rows, ok_columns = index.columns, index.rows, index.ok_columns
    by_status, row_statuses = index.by_status, index.row_statuses
    families = index.families
    for cell in result.cells:
        target, source, status = cell.target, cell.source, cell.status
        # setdefault would build an empty list per cell: a get is cheaper over 10,000 cells.
        column = columns.get(target)
        if column is None:
            columns[target] = [cell]
        else:
            column.append(cell)
        row = rows.get(source)
        if row is None:
            rows[source] = row = [cell]
            row_statuses[source] = counts = {}
            families[source] = seen_families = set()
        else:
            row.append(cell)
            counts, seen_families = row_statuses[source], families[source]
        counts[status] = counts.get(status, 0) + 1
        same = by_status.get(status)
        if same is None:
            by_status[status] = [cell]
        else:
            same.append(cell)
        if status == "ok":
            index.reached.add(cell.endpoint)
            ok_columns.setdefault(target, []).append(cell)
        proxy = cell.proxy
        direct = proxy is None or not proxy.used
        if not direct:
            index.proxied.append(cell)
        connects = _read_checks(index, cell, direct, seen_families)
        if connects > 1:
            index.retried.append(cell)
    return index


def _read_checks(index: Index, cell: CellResult, direct: bool, families: set[str]) -> int:
    """Note what a cell's checks say (its lookups, the families and outcomes of its connects);
    how many connects to an address it made."""
    connects = 0
    outcomes = index.tcp_outcomes
    for check in cell.checks:
        name = check.name
        if name == "tcp":
            address = check.address
            if not address or check.role == "proxy":
                continue
            connects += 1
            family = check.family or family_of(address)
            if family:
                families.add(family)
            if direct:
                outcome = check.status
                bit = REACHED if outcome == "ok" else REFUSED if outcome == "refused" else 0
                if bit:
                    key = (address, check.port)
                    outcomes[key] = outcomes.get(key, 0) | bit
        elif name == "dns" and check.role != "proxy":
            index.lookups.setdefault(cell.source, []).append((cell, check))
    return connects
