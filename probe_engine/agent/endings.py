"""How a cell that did not finish ends: the record of the phase it was in when its deadline
passed (a timeout of the probe, errno empty: distinct from the kernel's ETIMEDOUT) or when the
run was stopped (cancelled, saying what it was doing and for how long); and how far a cut-short
cell got, in words.

Standard library only and Python 3.8 compatible: shipped inside the agent.
"""

from __future__ import annotations

import time

from .cell import Cell
from .records import Check
from .tcp import Connector


def time_out(cell: Cell, connector: Connector) -> None:
    """The cell's deadline passed: the phase under way is recorded as the probe's timeout."""
    message = f"no answer within {cell.timeout:g}s (the probe's deadline, not the kernel's)"
    elapsed = (time.monotonic() - cell.phase_started) * 1000.0
    if cell.phase == "tcp":
        _abort_connects(cell, connector, message, "proxy-error" if cell.proxy_url else "timeout")
    elif cell.phase in ("dns", "http", "proxy", "icmp", "udp"):
        record: Check = {
            "name": "http" if cell.phase == "proxy" else cell.phase,
            "status": "timeout",
            "message": message,
            "duration_ms": elapsed,
        }
        if cell.phase == "dns":
            record.update({"host": _asked(cell), "reason": "no-answer"})
            if cell.proxy_url:
                record["status"] = "proxy-error"
        cell.checks.append(record)


def cut_short(cell: Cell, connector: Connector, now: float) -> None:
    """The run was stopped: the phase under way is recorded as cancelled, with what the cell
    was doing and for how long. Where a run hung is what its user pressed Ctrl-C to learn."""
    elapsed = (now - cell.phase_started) * 1000.0
    doing = DOING.get(cell.phase, cell.phase)
    message = f"{doing} when the run was cut, for {elapsed:.0f} ms"
    if cell.phase == "tcp":
        _abort_connects(cell, connector, message, "cancelled")
    else:
        name = cell.phase if cell.phase in ("dns", "icmp", "udp") else "http"
        record: Check = {"name": name, "status": "cancelled", "message": message}
        record["duration_ms"] = elapsed
        if name == "dns":
            record["host"] = _asked(cell)
        cell.checks.append(record)
    cell.cut = True


def _abort_connects(cell: Cell, connector: Connector, message: str, status: str) -> None:
    """Connects still in flight stop, each recorded with `status` and no errno (the kernel
    said nothing); the cell's tcp records join its checks in address order."""
    for index, attempt in enumerate(cell.attempts):
        if index in cell.tcp_records:
            continue
        connector.abort(attempt)
        record = attempt.record(None, message)
        record.update({"status": status, "errno": None, "errno_name": None})
        cell.tcp_records[index] = record
    cell.checks.extend(cell.tcp_records[i] for i in sorted(cell.tcp_records))


def _asked(cell: Cell) -> str | None:
    """The name a dns phase was resolving: a dns cell's own host, or the target's."""
    return cell.plan.get("host") if cell.plan["kind"] == "dns" else cell.host


# What a cell was doing in each phase, for the cells a stopped run cuts short.
DOING = {
    "queued": "waiting to start",
    "proxy": "its client was deciding its proxy",
    "dns": "resolving",
    "tcp": "connecting",
    "http": "waiting for the HTTP answer",
    "icmp": "pinging",
    "udp": "waiting for a UDP answer",
}

_DONE = {"dns": "ok", "tcp": "connected", "http": "answered", "icmp": "answered", "udp": "answered"}

_IN_PROGRESS = {
    "dns": "resolving",
    "tcp": "connecting",
    "http": "waiting",
    "icmp": "pinging",
    "udp": "waiting",
}


def phase_summary(checks: list[Check]) -> str:
    """'dns ok 2 ms, tcp connected 1 ms, http waiting 2013 ms': each phase, how it ended (or
    what it was still doing), and for how long."""
    parts = []
    for check in checks:
        name, status = check.get("name", "?"), check.get("status", "?")
        if status == "cancelled":
            word = _IN_PROGRESS.get(name, "in progress")
        else:
            word = _DONE.get(name, "ok") if status == "ok" else status
        parts.append(f"{name} {word} {float(check.get('duration_ms') or 0):.0f} ms")
    return ", ".join(parts)
