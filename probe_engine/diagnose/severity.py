"""How loud a finding is: the one severity policy every rule follows."""

from __future__ import annotations

from collections.abc import Iterable

from ..results import CellResult, Severity


def severity(cells: Iterable[CellResult], contradiction: bool) -> Severity:
    """How loud a finding is, from the failing cells it rests on.

    An unmet expectation is an error. Where the user declared every failure (all met), the
    finding only explains: info, or a warning when sources contradict each other (one path
    works, another does not). Failures nobody declared are errors when another path works
    (something is wrong, and fixable) and warnings otherwise (maybe down on purpose).
    A healthy matrix (all ok, or all met with no contradiction) therefore raises no alarm.
    """
    failing = [c for c in cells if c.status != "ok"]
    if any(c.met is False for c in failing):
        return "error"
    if failing and all(c.met is True for c in failing):
        return "warning" if contradiction else "info"
    return "error" if contradiction else "warning"
