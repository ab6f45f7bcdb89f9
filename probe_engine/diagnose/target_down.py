"""Rule "target-down": a whole column fails.

When one target fails from every source that otherwise works, the target itself is down or on
another port; per-cell findings would only repeat it. The finding names the most likely cause
it can prove (a Service's own facts first), so the reader sees it first."""

from __future__ import annotations

from dataclasses import dataclass

from ..results import CellResult, Finding, MatrixResult, TargetInfo
from ..status import FAILED
from .cells import by_target, down_rows, evidence, first_failure, host_of, target_info
from .facts import is_service
from .phrasing import failure_words, listing, meaning, next_step
from .service_causes import causes
from .severity import severity


def target_down(result: MatrixResult) -> list[Finding]:
    """One finding per target (and failure pattern) that fails from every working source."""
    down = down_rows(result)
    reached = {c.endpoint for c in result.cells if c.status == "ok"}
    working_rows = {c.source for c in result.cells if c.status == "ok"}
    infos = {t.name: t for t in result.targets}
    candidates: dict[str, list[CellResult]] = {}
    for column, cells in by_target(result).items():
        seen = [
            c
            for c in cells
            if c.source not in down and c.status not in ("cancelled", "source-error")
        ]
        if not seen or not all(c.status in FAILED or c.status == "target-error" for c in seen):
            continue
        if seen[0].endpoint in reached:
            continue  # the same endpoint works in another column: timing, not the target
        candidates[column] = seen
    groups: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for column, cells in candidates.items():
        info = infos.get(column)
        target_name = cells[0].target_name
        if info is not None and info.via:
            siblings = [t.name for t in result.targets if t.target_name == target_name]
            if not all(s in candidates for s in siblings):
                continue  # some ways to this Service work: "via-differs" explains it
        # One finding per Service (its ways fail for one reason); per failure pattern else.
        signature = (
            ("via",)
            if info is not None and info.via
            else tuple(sorted({failure_words(c) for c in cells}))
        )
        groups.setdefault((target_name, signature), []).append(column)
    # Targets that name the same endpoint and fail the same way are one cause: one finding.
    merged: dict[tuple[object, ...], tuple[str, list[str]]] = {}
    for (target_name, signature), columns in groups.items():
        if signature == ("via",):
            key: tuple[object, ...] = (target_name, signature)
        else:
            # Per host: many ports of one host failing alike (a scan) is one cause.
            hosts = {
                host_of(c, infos.get(column)) for column in columns for c in candidates[column]
            }
            key = (signature, tuple(sorted(hosts)))
        label, kept = merged.setdefault(key, (target_name, []))
        if label != target_name:
            merged[key] = ("", kept)  # several targets: name the columns, not one target
        kept.extend(columns)
    scene = _Scene(result, candidates, infos, working_rows)
    return [_column_fails(scene, label, columns) for label, columns in merged.values()]


def _words(cell: CellResult) -> str:
    """failure_words, with the reason of a column that could not be probed."""
    if cell.status == "target-error" and cell.message:
        return f"target-error ({cell.message})"
    return failure_words(cell)


@dataclass(frozen=True)
class _Scene:
    """The run's columns failing from every working source (`candidates`, by column)."""

    result: MatrixResult
    candidates: dict[str, list[CellResult]]
    infos: dict[str, TargetInfo]
    working_rows: set[str]  # rows with at least one ok cell


def _seen(
    cells: list[CellResult],
    columns: list[str],
    by_words: dict[str, list[str]],
    first: CellResult,
) -> str:
    """How the columns fail, from which sources: one sentence."""
    sources = list(dict.fromkeys(c.source for c in cells))
    by_column: dict[str, list[str]] = {}
    for c in cells:
        by_column.setdefault(_words(c), []).append(c.target)
    if len(columns) > 1 and len(by_column) > 1:
        how = "; ".join(f"{listing(t)}: {w}" for w, t in by_column.items())
        return f"From {listing(sources)}, {how}."
    if len(by_words) > 1:
        how = "; ".join(f"{w} from {listing(s)}" for w, s in by_words.items())
        return f"It fails differently by source: {how}."
    return (
        f"{listing(sources)} {'sees' if len(sources) == 1 else 'all see'} {failure_words(first)}."
    )


def _column_fails(scene: _Scene, target_name: str, columns: list[str]) -> Finding:
    result, candidates, infos = scene.result, scene.candidates, scene.infos
    working_rows = scene.working_rows
    cells = [c for col in columns for c in candidates[col]]
    first = cells[0]
    sources = list(dict.fromkeys(c.source for c in cells))
    info = infos.get(columns[0]) or target_info(result, columns[0])
    service = causes(info) if info is not None and is_service(info) else []
    if len(columns) == 1:
        named = columns[0]
    else:
        named = f"{target_name} ({listing(columns)})" if target_name else listing(columns)
    probed = [c for c in cells if c.status != "target-error"]
    if service:
        cause = service[0].text
        title = f"{named} fails from every source: {service[0].short}"
    elif not probed:
        cause = first.message or "the target could not be resolved"
        title = f"{named} could not be resolved: {cause}"
    else:
        first = probed[0]
        cause = meaning(first)
        endpoints = list(dict.fromkeys(c.endpoint for c in probed))
        where = first.endpoint
        if len(endpoints) > 1:
            hosts = list(dict.fromkeys(host_of(c, infos.get(c.target)) for c in probed))
            where = f"{listing(hosts)} ({len(endpoints)} endpoints)"
        verb = "fail" if named != target_name and len(columns) > 1 and not target_name else "fails"
        title = f"{named} {verb} from every source: {failure_words(first)} at {where}"
    by_words: dict[str, list[str]] = {}
    for c in cells:
        by_words.setdefault(_words(c), []).append(c.source)
    detail = f"{_seen(cells, columns, by_words, first)} Why: {cause}."
    if service and len(service) > 1:
        detail += " Also: " + "; ".join(c.text for c in service[1:]) + "."
    if first.status != "target-error" and not service and set(sources) & working_rows:
        failed = first_failure(first)
        if failed is not None and failed.name == "dns":
            what = "the name (or its resolver)"
        elif (failed is not None and failed.name == "http") or first.status == "reset":
            what = "the service itself (it is reached, and fails)"
        else:
            what = "the target itself (or its port)"
        detail += f" The same sources reach other targets, so {what} is the likely cause."
    return Finding(
        rule="target-down",
        severity=severity(cells, contradiction=False),
        title=title,
        detail=detail.strip(),
        evidence=evidence(cells),
        next_step=service[0].next_step if service else next_step(first),
        facts={
            "target": target_name,
            "columns": columns,
            "endpoints": list(dict.fromkeys(c.endpoint for c in cells)),
            "statuses": dict(by_words),
            "service": [c.facts for c in service],
        },
    )
