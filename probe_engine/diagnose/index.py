"""One pass over a run's cells, shared by every rule.

A scan of 10,000 cells has 5000 columns, almost all alike; rules that each walked every cell
(and built every cell's hops) cost a diagnosis three times what it costs now (bench/README.md,
"Diagnosis at scan size"). The pass groups the cells (by row, by column), counts each row's
statuses, and notes the few things only a cell's checks say: its lookups, the address
families its connects tried, which address:ports were both refused and reached, which cells
connected more than once. A scan's checks (one direct connect per cell) are read in bulk, in
C (map, compress, set); any other run's one by one. Rules read these and walk only the cells
they may cite; hops (cells.hops) are made only for those.

Everything keeps the run's order (cells, then checks), so a rule reading the index finds its
causes in the order it would have walking the cells (tests/test_diagnose_index.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import compress, count, groupby, repeat
from operator import attrgetter, eq, itemgetter

from ..agent.address import family_of
from ..results import CellResult, CheckRecord, MatrixResult, SourceInfo, TargetInfo

_NAME = attrgetter("name")
_STATUS = attrgetter("status")
_SOURCE = attrgetter("source")
_PROXY = attrgetter("proxy")
_CHECKS = attrgetter("checks")
_ROLE = attrgetter("role")
_ADDRESS = attrgetter("address")
_PORT = attrgetter("port")
_FAMILY = attrgetter("family")


@dataclass(eq=False)
class Index:
    """What the rules read of a run, in its cells' order.

    `columns`, `rows`: the cells of each target, each source. `ok`: the cells that are ok;
    `ok_columns`: the ok cells of each column that has one; `reached`: their endpoints.
    `row_statuses`: how many cells of each status a row has; `statuses`: in the whole run.
    `kinds`: the kinds of target the run has; `via`: the targets that are one way to a
    Kubernetes Service (`services()`: the kubernetes-service targets). `proxied`: cells whose
    proxy was used. `lookups`: each row's dns records not of a proxy, with their cell.
    `families`: the address families each row's connects tried (its hops'). `raced`: the
    address:ports that cells not going through a proxy found both refused and accepting.
    `retried`: cells that connected to addresses twice or more (a change of heart inside one
    cell needs two).
    """

    result: MatrixResult
    sources: dict[str, SourceInfo]
    targets: dict[str, TargetInfo]
    kinds: set[str]
    via: list[TargetInfo]
    columns: dict[str, list[CellResult]] = field(default_factory=dict)
    rows: dict[str, list[CellResult]] = field(default_factory=dict)
    ok: list[CellResult] = field(default_factory=list)
    ok_columns: dict[str, list[CellResult]] = field(default_factory=dict)
    reached: set[str] = field(default_factory=set)
    row_statuses: dict[str, Counter[str]] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    proxied: list[CellResult] = field(default_factory=list)
    lookups: dict[str, list[tuple[CellResult, CheckRecord]]] = field(default_factory=dict)
    families: dict[str, set[str]] = field(default_factory=dict)
    raced: set[tuple[str, int | None]] = field(default_factory=set)
    retried: list[CellResult] = field(default_factory=list)
    _order: dict[str, int] | None = None

    def with_status(self, status: str) -> list[CellResult]:
        """The cells of one status, in order (walks the cells only if the run has some)."""
        if status == "ok":
            return self.ok
        if status not in self.statuses:
            return []
        return [c for c in self.result.cells if c.status == status]

    def services(self) -> list[TargetInfo]:
        """The kubernetes-service targets, in order (none read when the run has none)."""
        if "kubernetes-service" not in self.kinds:
            return []
        return [t for t in self.result.targets if t.kind == "kubernetes-service"]

    def in_order(self, columns: Iterable[str]) -> list[str]:
        """Some columns, in the run's order of columns (a rule that cites a few columns of a
        scan's 5000 walks those only, and finds its causes in the order it would have)."""
        if self._order is None:
            self._order = dict(zip(self.columns, count()))
        return sorted(columns, key=self._order.__getitem__)


def build(result: MatrixResult, in_bulk: bool = True) -> Index:
    """The index of one run: one pass over its cells and their checks. A scan's cells (one
    direct connect each) are read in bulk, in C; `in_bulk=False` reads them one by one (the
    tests compare the two)."""
    cells = result.cells
    index = Index(
        result,
        sources=dict(zip(map(_NAME, result.sources), result.sources)),
        targets=dict(zip(map(_NAME, result.targets), result.targets)),
        kinds=set(map(attrgetter("kind"), result.targets)),
        via=list(compress(result.targets, map(attrgetter("via"), result.targets))),
    )
    columns, rows = index.columns, index.rows
    for source, same in groupby(cells, _SOURCE):  # rows come in runs: grouped in C
        row = rows.get(source)
        if row is None:
            rows[source] = list(same)
        else:
            row.extend(same)
    for cell in cells:
        # setdefault would build an empty list per cell: a get is cheaper over 10,000 cells.
        column = columns.get(cell.target)
        if column is None:
            columns[cell.target] = [cell]
        else:
            column.append(cell)
    statuses = list(map(_STATUS, cells))
    index.ok = list(compress(cells, map(eq, statuses, repeat("ok"))))
    if any(map(_PROXY, cells)):
        index.proxied = [c for c in cells if c.proxy is not None and c.proxy.used]
    for source, row in rows.items():  # counted in C, row by row
        index.row_statuses[source] = counts = Counter(map(_STATUS, row))
        index.statuses.update(counts)
    for cell in index.ok:
        index.reached.add(cell.endpoint)
        index.ok_columns.setdefault(cell.target, []).append(cell)
    if not (in_bulk and _read_connects(index)):
        _read_checks(index)
    return index


def _read_connects(index: Index) -> bool:
    """Read a scan's checks in bulk (in C): when every cell made one direct tcp connect to an
    address, its hop is that check; False (nothing read) for any other run."""
    cells = index.result.cells
    checks = list(map(_CHECKS, cells))
    if index.proxied or set(map(len, checks)) != {1}:
        return False
    records = list(map(itemgetter(0), checks))
    if set(map(_NAME, records)) != {"tcp"} or "proxy" in set(map(_ROLE, records)):
        return False
    addresses = list(map(_ADDRESS, records))
    if not all(addresses):
        return False
    families = set(map(_FAMILY, records))
    if len(families) == 1 and None not in families and "" not in families:
        for source in index.rows:  # one family in the whole run (a scan of one address)
            index.families[source] = set(families)
    else:
        for source, row in index.rows.items():
            hops = list(map(itemgetter(0), map(_CHECKS, row)))
            index.families[source] = {r.family or family_of(r.address) or "" for r in hops}
    outcomes = list(map(_STATUS, records))
    oks = list(compress(records, map(eq, outcomes, repeat("ok"))))
    if oks and "refused" in outcomes:
        # Few connects reach (a scan's open ports): look up only those address:ports.
        reached = {(r.address, r.port) for r in oks}
        keys = list(zip(addresses, map(_PORT, records)))
        hits = list(map(reached.__contains__, keys))
        index.raced = {
            key
            for key, outcome in zip(compress(keys, hits), compress(outcomes, hits))
            if outcome == "refused"
        }
    return True


def _read_checks(index: Index) -> None:
    """Read the checks of every cell, one by one: the lookups, families and outcomes of its
    connects, and the cells that connected more than once."""
    families, lookups, retried = index.families, index.lookups, index.retried
    proxied = {id(c) for c in index.proxied}
    reached: list[tuple[str, int | None]] = []
    refused: list[tuple[str, int | None]] = []
    for cell in index.result.cells:
        source = cell.source
        seen_families = families.get(source)
        if seen_families is None:
            families[source] = seen_families = set()
        direct = id(cell) not in proxied
        connects = 0
        for check in cell.checks:
            name = check.name
            if name == "tcp":
                address = check.address
                if not address or check.role == "proxy":
                    continue
                connects += 1
                seen_families.add(check.family or family_of(address) or "")
                if direct:
                    outcome = check.status
                    if outcome == "refused":
                        refused.append((address, check.port))
                    elif outcome == "ok":
                        reached.append((address, check.port))
            elif name == "dns" and check.role != "proxy":
                lookups.setdefault(source, []).append((cell, check))
        if connects > 1:
            retried.append(cell)
    if reached and refused:
        index.raced = set(reached) & set(refused)
