"""Expands a matrix into cells: sources x columns, minus excludes, within --select."""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from .agent.plans import Plan
from .errors import SpecError, SpecErrors
from .model import CellRequest, Column
from .spec import CellPattern, Matrix
from .status import Status


@dataclass(frozen=True)
class Selection:
    """--select source=GLOB,target=GLOB, repeatable: the globs given for one key are
    alternatives (`--select source=a --select source=b`: either row), the keys narrow each
    other (`--select source=a --select target=db`: both). Every glob must match something the
    matrix declares: a typo is bad input, never a run of nothing that passes."""

    sources: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()

    @classmethod
    def parse(cls, texts: str | Sequence[str] | None) -> Selection:
        if not texts:
            return cls()
        values: dict[str, list[str]] = {"source": [], "target": []}
        for text in [texts] if isinstance(texts, str) else texts:
            for part in text.split(","):
                key, equals, value = part.partition("=")
                key = key.strip()
                if not equals or key not in values or not value.strip():
                    raise SpecError(f"{part!r} is not source=GLOB or target=GLOB", field="--select")
                values[key].append(value.strip())
        return cls(tuple(values["source"]), tuple(values["target"]))

    def admits(self, source: str, column: Column) -> bool:
        return (not self.sources or any(_matches(g, source) for g in self.sources)) and (
            not self.targets
            or any(_matches(g, column.target_name, column.name) for g in self.targets)
        )

    def check(self, matrix: Matrix, columns: Mapping[str, Sequence[Column]] | None = None) -> None:
        """Raise (bad input, exit 2) for a glob that matches no declared source, or no target
        or column, naming what is declared, as the matrix's own patterns do."""
        problems = []
        sources = list(matrix.sources)
        for glob in self.sources:
            # A row of a fanned-out source is "source/instance": the source decides here.
            if not any(_matches(g, name) for g in (glob, glob.split("/")[0]) for name in sources):
                problems.append(
                    f"source {glob!r} matches no source (declared: {', '.join(sources)})"
                )
        names = list(matrix.targets)
        columns_seen = [c.name for cs in (columns or {}).values() for c in cs]
        for glob in self.targets:
            # Before the columns are known, "scan:80" and "svc/dns" stand for their target.
            stems = {glob, re.split(r"[:/]", glob, maxsplit=1)[0]} if columns is None else {glob}
            if not any(_matches(g, n) for g in stems for n in [*names, *columns_seen]):
                shown = ", ".join(names)
                if columns is not None and columns_seen != names:
                    shown += "; columns: " + ", ".join(columns_seen[:20])
                problems.append(f"target {glob!r} matches no target (declared: {shown})")
        if problems:
            raise SpecErrors([SpecError(p, field="--select") for p in problems])


def _matches(pattern: str, *names: str) -> bool:
    match = _glob(pattern)
    return any(match(name) for name in names)


@functools.lru_cache(maxsize=4096)
def _glob(pattern: str) -> Callable[[str], object]:
    """fnmatch.fnmatchcase(NAME, pattern) as a function of NAME, made once per pattern: a
    matrix's patterns are asked of every cell (a scan has thousands)."""
    if pattern == "*":
        return lambda name: True
    if not any(c in pattern for c in "*?["):
        return pattern.__eq__
    return re.compile(fnmatch.translate(pattern)).match


def pattern_matches(
    pattern: CellPattern, source: str, column: Column, row: str | None = None
) -> bool:
    """A pattern names a source (or a row source/instance) and a target (or a column)."""
    by_source = _glob(pattern.source)
    if not (by_source(source) or (row and by_source(row))):
        return False
    by_target = _glob(pattern.target)
    return bool(by_target(column.target_name) or by_target(column.name))


BINDABLE = frozenset({"tcp", "http", "icmp", "udp"})


def with_source_bind(column: Column, bind: dict[str, str]) -> Column:
    """The column as this source probes it: from the source's chosen address or interface,
    unless the target chose its own."""
    plan = column.plan
    if plan is None or plan["kind"] not in BINDABLE or plan.get("bind"):
        return column
    return replace(column, plan=Plan(**{**plan, "bind": bind}))


def with_marker(column: Column, marker: str) -> Column:
    """An http column whose requests carry `marker` as their User-Agent, so the server's own
    log tells which run and cell reached it; a User-Agent the target sets wins."""
    plan = column.plan
    if plan is None or plan["kind"] != "http":
        return column
    headers = dict(plan.get("headers") or {})
    if any(name.lower() == "user-agent" for name in headers):
        return column
    headers["User-Agent"] = marker
    return replace(column, plan=Plan(**{**plan, "headers": headers}))


def expand(
    matrix: Matrix,
    columns: Mapping[str, Sequence[Column]],
    selection: Selection = Selection(),
    timeout: float | None = None,
    marker: str | None = None,
) -> list[CellRequest]:
    """Every cell to run, in matrix order (sources, then columns). With `marker` ("probe-engine/
    0.1 run=ID"), each http cell's User-Agent is the marker and its cell number."""
    cells: list[CellRequest] = []
    kept, excluded = matrix.cells, matrix.exclude
    selected = bool(selection.sources or selection.targets)
    for source, spec in matrix.sources.items():
        bind = getattr(spec, "bind", None)
        for target in matrix.targets:
            for listed in columns.get(target, ()):
                column = with_source_bind(listed, bind.plan()) if bind is not None else listed
                if kept is not None and not any(pattern_matches(p, source, column) for p in kept):
                    continue
                if excluded and any(pattern_matches(p, source, column) for p in excluded):
                    continue
                if selected and not selection.admits(source, column):
                    continue
                cell_timeout = timeout or column.timeout or matrix.defaults.timeout
                if marker is not None and column.plan is not None and column.plan["kind"] == "http":
                    column = with_marker(column, f"{marker} cell={len(cells)}")
                cells.append(CellRequest(len(cells), source, column, cell_timeout))
    return cells


def expectation_for(
    matrix: Matrix, source: str, row: str, column: Column
) -> tuple[Status, ...] | None:
    """The statuses expected of a cell: the last matching `expect` entry wins."""
    found = None
    for expectation in matrix.expect:
        if pattern_matches(expectation, source, column, row):
            found = expectation.statuses()
    return found
