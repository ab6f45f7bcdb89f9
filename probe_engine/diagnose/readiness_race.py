"""Rule "readiness-race": the same address and port is refused, then accepts, within one run.

Nothing listened when the first attempt ran and something did by the later one: the service
was still starting, and tests that start right after a deploy hit the same race. Kept simple:
1. two cells of one row (or of rows sharing a network namespace, hence the same view of the
   address) reach the same address:port directly, the earlier refused, a later one ok;
2. within one cell, a tcp record to an address is refused and a later one to it connects.
The reverse (ok, then refused) is reported too: the service stopped or restarted mid-run.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..agent.address import hostport
from ..results import CellResult, MatrixResult
from .cause import Cause, cause
from .cells import Hop, as_hop, hops, index
from .facts import row_facts

RULE = "readiness-race"


def _when(cell: CellResult, hop: Hop | None = None) -> datetime | None:
    """When a cell's attempt happened: its start plus the attempt's own duration."""
    if cell.started_at is None:
        return None
    spent = 0.0
    if hop is not None:
        record = next(
            (r for r in cell.checks if r.name == "tcp" and r.address == hop.address), None
        )
        spent = record.duration_ms if record else 0.0
    return cell.started_at + timedelta(milliseconds=spent)


def _views(result: MatrixResult) -> dict[str, str]:
    """Rows in one network namespace see an address the same way; others only their own."""
    views = {}
    for info in result.sources:
        facts = row_facts(info)
        netns, host = facts.get("netns"), facts.get("hostname")
        views[info.name] = f"netns:{host}:{netns}" if netns else f"row:{info.name}"
    return views


def readiness_race(result: MatrixResult) -> list[Cause]:
    cells = index(result)
    # A race inside a cell needs two connects; across cells, an address:port both refused
    # and reached (the index says which): without either, no cell is read (a scan's case).
    retried = [c for c in cells.retried if not (c.proxy is not None and c.proxy.used)]
    in_cells = [race for c in retried if (race := _in_cell(c)) is not None]
    raced = cells.raced
    if not raced:
        return in_cells
    explained = {id(c.failing[0]) for c in in_cells}
    found = list(in_cells)
    attempts: dict[tuple[str, str, int | None], list[tuple[CellResult, Hop]]] = {}
    views = _views(result)
    for cell in result.cells:
        if (cell.proxy is not None and cell.proxy.used) or id(cell) in explained:
            continue
        for record in cell.checks:  # its hops, made only for the addresses that raced
            if record.status in ("ok", "refused") and (record.address, record.port) in raced:
                if record.name != "tcp" or record.role == "proxy":
                    continue
                hop = as_hop(record)
                key = (views.get(cell.source, f"row:{cell.source}"), hop.address, hop.port)
                attempts.setdefault(key, []).append((cell, hop))
    for (_view_key, address, port), tried in attempts.items():
        if len({hop.status for _, hop in tried}) < 2:
            continue  # only refused, or only ok: no race (most keys; no clock read for them)
        seen = [(when, c, h) for c, h in tried if (when := _when(c, h)) is not None]
        seen.sort(key=lambda item: item[0])
        statuses = [hop.status for _, _, hop in seen]
        if "refused" not in statuses or "ok" not in statuses:
            continue
        first_refused = statuses.index("refused")
        later_ok = next((i for i in range(first_refused, len(seen)) if statuses[i] == "ok"), None)
        if later_ok is not None:
            found.append(_race(seen[first_refused], seen[later_ok], address, port))
        else:
            found.append(_stopped(seen[statuses.index("ok")], seen[first_refused], address, port))
    return found


def _race(
    refused: tuple[datetime, CellResult, Hop],
    ok: tuple[datetime, CellResult, Hop],
    address: str,
    port: int | None,
) -> Cause:
    t0, bad, _ = refused
    t1, good, _ = ok
    return cause(
        RULE,
        hostport(address, port),
        [bad],
        [good],
        facts={
            "address": address,
            "port": port,
            "refused_at": t0.isoformat(),
            "ok_at": t1.isoformat(),
            "gap_s": round((t1 - t0).total_seconds(), 3),
        },
        variant="started",
        refused_at=t0,
        ok_at=t1,
    )


def _stopped(
    ok: tuple[datetime, CellResult, Hop],
    refused: tuple[datetime, CellResult, Hop],
    address: str,
    port: int | None,
) -> Cause:
    t0, good, _ = ok
    t1, bad, _ = refused
    return cause(
        RULE,
        hostport(address, port),
        [bad],
        [good],
        facts={"address": address, "port": port, "gap_s": round((t1 - t0).total_seconds(), 3)},
        variant="stopped",
    )


def _in_cell(cell: CellResult) -> Cause | None:
    """A refusal followed by a success inside one cell: a tcp record to an address refused,
    and a later one to the same address connecting."""
    if len(cell.checks) < 2:
        return None  # one check: one attempt, no change of heart inside the cell
    seen: dict[tuple[str, int | None], str] = {}
    for hop in hops(cell):
        key = (hop.address, hop.port)
        if seen.get(key) == "refused" and hop.status == "ok":
            break
        seen[key] = hop.status
    else:
        return None
    # It worked in the end: a cell that is ok raises nothing (severity reads its status).
    return cause(
        RULE, cell.target, [cell], facts={"attempts": ["refused", "ok"]}, variant="in-cell"
    )
