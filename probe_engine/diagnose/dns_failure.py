"""Rule "dns-failure": what a failed lookup means: NXDOMAIN (the name does not exist), no answer
(EAI_AGAIN: the resolver is unreachable), or no address of the asked family. A fallback: the
broader rules usually explain these cells first."""

from __future__ import annotations

from ..results import CellResult, CheckRecord, MatrixResult
from .cause import Cause, cause
from .cells import first_failure, index

RULE = "dns-failure"


def dns_failure(result: MatrixResult) -> list[Cause]:
    """One cause per column and failure reason, for lookups no broader rule explained."""
    found = []
    cells_of = index(result)
    # A lookup decided only cells that made one (the index keeps each row's) and failed.
    looked_up = {
        cell.target
        for lookups in cells_of.lookups.values()
        for cell, _record in lookups
        if cell.status != "ok"
    }
    for column in cells_of.in_order(looked_up):
        cells = cells_of.columns[column]
        groups: dict[str, list[tuple[CellResult, CheckRecord]]] = {}
        for cell in cells:
            failed = first_failure(cell)
            if failed is not None and failed.name == "dns" and failed.role != "proxy":
                groups.setdefault(failed.reason or failed.status, []).append((cell, failed))
        probed = [c.source for c in cells if c.status not in ("source-error", "cancelled")]
        for reason, items in groups.items():
            record = items[0][1]
            found.append(
                cause(
                    RULE,
                    column,
                    [c for c, _ in items],
                    facts={
                        "name": record.host,
                        "reason": reason,
                        "code": record.errno_name or reason,
                        "resolver": record.resolver,
                    },
                    record=record,
                    probed=probed,
                )
            )
    return found
