"""What a rule finds, before any word is written: a structured cause.

A rule reads the result and returns causes; words/ phrases each one (by its rule id) and
findings.py turns it into a Finding (severity from the failing cells' expectations, evidence
capped, counts exact). A rule never writes a sentence, so no rule invents its own grammar.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..results import CellResult


@dataclass(frozen=True, eq=False)
class Cause:
    """One explanation, as data.

    `rule`: the rule's id. `subject`: what the finding is about (a target, a row, a Service,
    an address:port), as the reader knows it. `failing`: the cells it explains (their
    expectations set its severity; cells that are ok here, like a race that ended well,
    raise nothing). `contrast`: working cells it compares with. `facts`: what it rests on,
    JSON-ready (report.json's finding.facts). `variant`: which of the rule's sentences fits.
    `context`: what the words need beyond the facts (row and column infos, clauses of the
    shared fact readers); never written to a report.
    """

    rule: str
    subject: str
    failing: tuple[CellResult, ...]
    contrast: tuple[CellResult, ...] = ()
    facts: Mapping[str, Any] = field(default_factory=dict)
    variant: str = ""
    context: Mapping[str, Any] = field(default_factory=dict)


def cause(  # noqa: PLR0913 -- a Cause's fields; those past `contrast` by keyword only
    rule: str,
    subject: str,
    failing: Iterable[CellResult],
    contrast: Iterable[CellResult] = (),
    *,
    facts: Mapping[str, Any] | None = None,
    variant: str = "",
    **context: Any,
) -> Cause:
    """A Cause, each cell once (in the order given); a contrasting cell that also fails here
    is failing, not contrast."""
    failing_cells = _unique(list(failing))
    contrast_cells = _unique(list(contrast))
    if contrast_cells:
        seen = {id(c) for c in failing_cells}
        contrast_cells = tuple(c for c in contrast_cells if id(c) not in seen)
    return Cause(rule, subject, failing_cells, contrast_cells, dict(facts or {}), variant, context)


def _unique(cells: Iterable[CellResult]) -> tuple[CellResult, ...]:
    """Each cell once, in the order given. A run has one object per cell and rules cite the
    run's own objects, so identity is the cell's (source, target), and cheaper to compare
    over a scan's 10,000 cells (bench/diagnosis.py)."""
    return tuple(dict(zip(map(id, cells), cells)).values())
