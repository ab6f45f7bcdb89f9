"""Rule "cut-short": the run was cut (its deadline, or an interrupt) while cells were still
working; say in which phase they hung and for how long, from the phases each cut cell
reports (a cut cell keeps what it finished and the phase it was in).
"""

from __future__ import annotations

from ..results import CellResult, MatrixResult
from .cause import Cause, cause
from .cells import index

RULE = "cut-short"


def _phase(cell: CellResult) -> str | None:
    """The phase a cut cell was in: its last check, cancelled."""
    last = cell.checks[-1] if cell.checks else None
    return last.name if last is not None and last.status == "cancelled" else None


def cut_short(result: MatrixResult) -> list[Cause]:
    """One cause per phase the cut cells were in."""
    by_phase: dict[str, list[CellResult]] = {}
    for cell in index(result).with_status("cancelled"):
        phase = _phase(cell)
        if phase is not None:
            by_phase.setdefault(phase, []).append(cell)
    found = []
    for phase, cells in by_phase.items():
        longest = max(cells, key=lambda c: c.checks[-1].duration_ms)
        found.append(
            cause(
                RULE,
                phase,
                cells,
                facts={
                    "phase": phase,
                    "cut_by": "interrupt" if result.interrupted else "deadline",
                    "cells": [f"{c.source} -> {c.target}" for c in cells[:20]],
                    "longest_ms": round(longest.checks[-1].duration_ms, 1),
                },
                longest=longest,
            )
        )
    return found
