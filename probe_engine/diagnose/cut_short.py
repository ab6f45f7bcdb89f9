"""Rule "cut-short": the run was cut (its deadline, or an interrupt) while cells were still
working; say in which phase they hung and for how long, from the phases each cut cell
reports (a cut cell keeps what it finished and the phase it was in).
"""

from __future__ import annotations

from ..results import CellResult, Finding, MatrixResult
from .cells import evidence
from .phrasing import listing
from .severity import severity

DOING = {
    "dns": "resolving their names",
    "tcp": "connecting (no answer to the SYN yet)",
    "http": "waiting for the HTTP answer",
}
STEPS = {
    "dns": "The resolver did not answer in time: check the nameservers these sources use "
    "(/etc/resolv.conf), or give the run a longer --deadline.",
    "tcp": "Nothing answered the connects: a host that is down or a firewall dropping them, "
    "or a run whose --deadline is shorter than the cells' timeout.",
    "http": "These servers accepted the connection but did not answer: look at the service "
    "(a blocked worker, a full queue), or give the run a longer --deadline.",
}


def _phase(cell: CellResult) -> str | None:
    """The phase a cut cell was in: its last check, cancelled."""
    last = cell.checks[-1] if cell.checks else None
    return last.name if last is not None and last.status == "cancelled" else None


def cut_short(result: MatrixResult) -> list[Finding]:
    """One finding per phase the cut cells were in."""
    by_phase: dict[str, list[CellResult]] = {}
    for cell in result.cells:
        phase = _phase(cell) if cell.status == "cancelled" else None
        if phase is not None:
            by_phase.setdefault(phase, []).append(cell)
    findings = []
    by = "an interrupt" if result.interrupted else "the run's deadline"
    for phase, cells in by_phase.items():
        longest = max(cells, key=lambda c: c.checks[-1].duration_ms)
        pairs = [f"{c.source} -> {c.target}" for c in cells]
        waited = longest.checks[-1].duration_ms
        detail = (
            f"{by.capitalize()} cut {listing(pairs)} while {DOING.get(phase, phase)}; "
            f"{longest.source} -> {longest.target} had been at it {waited:.0f} ms "
            f"({longest.message.split(': ', 1)[-1] if longest.message else phase})."
        )
        findings.append(
            Finding(
                rule="cut-short",
                severity=severity(cells, contradiction=False),
                title=f"{len(cells)} {'cell was' if len(cells) == 1 else 'cells were'} cut "
                f"while {DOING.get(phase, phase)}: {listing([c.target for c in cells])}",
                detail=detail,
                evidence=evidence(cells),
                next_step=STEPS.get(phase, "Give the run a longer --deadline."),
                facts={
                    "phase": phase,
                    "cut_by": "interrupt" if result.interrupted else "deadline",
                    "cells": pairs,
                    "longest_ms": round(waited, 1),
                },
            )
        )
    return findings
