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
from ..results import CellResult, Finding, MatrixResult
from .cells import Hop, evidence, hops
from .facts import row_facts
from .severity import severity

WAIT = (
    "Wait for readiness before the tests: `probe-engine wait TARGET --timeout 2m` (or the "
    "Airflow ProbeReadySensor) before running them."
)


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


def readiness_race(result: MatrixResult) -> list[Finding]:
    findings = []
    attempts: dict[tuple[str, str, int | None], list[tuple[datetime, CellResult, Hop]]] = {}
    views = _views(result)
    for cell in result.cells:
        if cell.proxy is not None and cell.proxy.used:
            continue
        in_cell = _in_cell(cell)
        if in_cell is not None:
            findings.append(in_cell)
            continue
        for hop in hops(cell):
            when = _when(cell, hop)
            if when is not None and hop.status in ("ok", "refused"):
                key = (views.get(cell.source, f"row:{cell.source}"), hop.address, hop.port)
                attempts.setdefault(key, []).append((when, cell, hop))
    for (_view_key, address, port), seen in attempts.items():
        seen.sort(key=lambda item: item[0])
        statuses = [hop.status for _, _, hop in seen]
        if "refused" not in statuses or "ok" not in statuses:
            continue
        first_refused = statuses.index("refused")
        later_ok = next((i for i in range(first_refused, len(seen)) if statuses[i] == "ok"), None)
        if later_ok is not None:
            findings.append(_race(seen[first_refused], seen[later_ok], address, port))
        else:
            findings.append(
                _stopped(seen[statuses.index("ok")], seen[first_refused], address, port)
            )
    return findings


def _clock(moment: datetime) -> str:
    return moment.strftime("%H:%M:%S.%f")[:-3]


def _race(
    refused: tuple[datetime, CellResult, Hop],
    ok: tuple[datetime, CellResult, Hop],
    address: str,
    port: int | None,
) -> Finding:
    t0, bad, _ = refused
    t1, good, _ = ok
    gap = (t1 - t0).total_seconds()
    at = hostport(address, port)
    who = bad.source if bad.source == good.source else f"{bad.source} and {good.source}"
    return Finding(
        rule="readiness-race",
        severity=severity([bad], contradiction=False),
        title=f"{at} refused, then accepted {gap:.2f} s later: a readiness race",
        detail=(
            f"From {who}: {bad.target} was refused (ECONNREFUSED) at {_clock(t0)} and "
            f"{good.target} connected to the same {at} at {_clock(t1)}. "
            "Nothing listened at first, then something did: the service was still starting. "
            "Tests started right after a deploy hit the same race."
        ),
        evidence=evidence([bad, good]),
        next_step=WAIT,
        facts={
            "address": address,
            "port": port,
            "refused_at": t0.isoformat(),
            "ok_at": t1.isoformat(),
            "gap_s": round(gap, 3),
        },
    )


def _stopped(
    ok: tuple[datetime, CellResult, Hop],
    refused: tuple[datetime, CellResult, Hop],
    address: str,
    port: int | None,
) -> Finding:
    t0, good, _ = ok
    t1, bad, _ = refused
    gap = (t1 - t0).total_seconds()
    at = hostport(address, port)
    return Finding(
        rule="readiness-race",
        severity=severity([bad], contradiction=True),
        title=f"{at} accepted, then refused {gap:.2f} s later: it stopped",
        detail=(
            f"{good.target} connected to {at} from {good.source}, then "
            f"{bad.target} was refused (ECONNREFUSED) from {bad.source}: the service stopped, "
            "crashed or restarted during the run."
        ),
        evidence=evidence([bad, good]),
        next_step="Check the service's restarts and logs (`kubectl get pods`: RESTARTS).",
        facts={"address": address, "port": port, "gap_s": round(gap, 3)},
    )


def _in_cell(cell: CellResult) -> Finding | None:
    """A refusal followed by a success inside one cell: a tcp record to an address refused,
    and a later one to the same address connecting."""
    seen: dict[tuple[str, int | None], str] = {}
    for hop in hops(cell):
        key = (hop.address, hop.port)
        if seen.get(key) == "refused" and hop.status == "ok":
            break
        seen[key] = hop.status
    else:
        return None
    statuses, retries = ["refused", "ok"], 1
    return Finding(
        rule="readiness-race",
        # It worked in the end: worth knowing, not an alarm.
        severity="info" if cell.status == "ok" else severity([cell], contradiction=False),
        title=f"{cell.target} from {cell.source} was refused before it answered: a readiness race",
        detail=(
            f"{cell.source} was refused (ECONNREFUSED) by {cell.endpoint} and succeeded "
            f"{retries} attempt(s) later: the service was still starting when probing began."
        ),
        evidence=evidence([cell]),
        next_step=WAIT,
        facts={"attempts": statuses},
    )
