"""How loud a finding is: the one severity policy, read from the expectations of the cells a
finding explains and from whether another path works."""

from __future__ import annotations

from collections.abc import Iterable

from ..results import CellResult, Severity


def severity(cells: Iterable[CellResult], contrast: bool) -> Severity:
    """How loud a finding is, from the cells it explains (`contrast`: it names a path that
    works).

    An unmet expectation is an error. A failure the user declared (met) only explains: info,
    never a warning or an error, as does a finding whose cells all work in the end. A failure
    nobody declared is an error where another path works (something is wrong, and fixable)
    and a warning where it fails everywhere (maybe down on purpose: `expect:` says so). So a
    healthy matrix (every cell ok, or every failure declared) raises no warning and no error.
    """
    return of_declared({c.met for c in cells if c.status != "ok"}, contrast)


def of_declared(declared: set[bool | None], contrast: bool) -> Severity:
    """severity() from what the failing cells declared (their `met`: None where nothing was
    declared, False where the expectation is unmet, True where the failure was expected)."""
    if False in declared:
        return "error"
    if None not in declared:
        return "info"
    return "error" if contrast else "warning"
