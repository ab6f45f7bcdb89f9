"""From a cause to a Finding, in one place: its words (words/, by rule id), its severity
(severity.py, from the explained cells' expectations), its evidence (the first few cells, and
how many there are in all) and its facts."""

from __future__ import annotations

from operator import attrgetter

from ..results import CellResult, Evidence, Finding, MatrixResult
from .cause import Cause
from .severity import of_declared
from .words import phrase

# A finding over a 5000-port scan cites a few cells and counts the rest: every report format
# stays small, report.json keeps the counts (evidence_total, failing_total).
FAILING_SHOWN = 8
CONTRAST_SHOWN = 4


def evidence(cells: list[CellResult]) -> list[Evidence]:
    return [Evidence(source=c.source, target=c.target, status=c.status) for c in cells]


def finding(found: Cause, result: MatrixResult) -> Finding:
    """The Finding a cause makes: words, severity, capped evidence, facts."""
    words = phrase(found, result)
    shown = list(found.failing[:FAILING_SHOWN]) + list(found.contrast[:CONTRAST_SHOWN])
    # Read in C: a scan's one finding explains 10,000 cells (some may be ok: a race that ended
    # well explains, and raises nothing).
    statuses = list(map(attrgetter("status"), found.failing))
    working = statuses.count("ok")
    declared = (
        {c.met for c in found.failing if c.status != "ok"}
        if working
        else set(map(attrgetter("met"), found.failing))
    )
    return Finding(
        rule=found.rule,
        severity=of_declared(declared, contrast=bool(found.contrast)),
        title=words.title,
        detail=words.detail,
        evidence=evidence(shown),
        next_step=words.next_step,
        facts=dict(found.facts),
        evidence_total=len(found.failing) + len(found.contrast),
        failing_total=len(statuses) - working,
    )
