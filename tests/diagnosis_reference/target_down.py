"""Rule "target-down": a whole column fails.

When one target fails from every source that probed it, the target itself is down or on
another port; per-cell findings would only repeat it. Cells stopped at their proxy never
reached the target and say nothing about it; rows that fail everything are explained by
"source-down". Many ports of one host failing alike are one cause: a port scan, summarised
with the ports that are open."""

from __future__ import annotations

from dataclasses import dataclass

from probe_engine.diagnose.cause import Cause, cause
from probe_engine.diagnose.cells import first_failure, host_of, target_info
from probe_engine.diagnose.facts import is_service
from probe_engine.diagnose.phrasing import column_words
from probe_engine.diagnose.ping_filtered import filtered_pings
from probe_engine.diagnose.service_causes import causes
from probe_engine.results import CellResult, MatrixResult, TargetInfo
from probe_engine.status import FAILED

from .grouping import by_target, down_rows

RULE = "target-down"
SHOWN_COLUMNS = 20


def _stopped_at_proxy(cell: CellResult) -> bool:
    return cell.status == "proxy-error" and cell.proxy is not None and cell.proxy.used


def target_down(result: MatrixResult) -> list[Cause]:
    """One cause per target (and failure pattern) that fails from every source that probed it."""
    down = down_rows(result)
    reached = {c.endpoint for c in result.cells if c.status == "ok"}
    infos = {t.name: t for t in result.targets}
    columns_of = by_target(result)
    candidates: dict[str, list[CellResult]] = {}
    silent_pings = filtered_pings(result)  # their host is up: "ping-filtered" says so
    for column, cells in columns_of.items():
        seen = [
            c
            for c in cells
            if c.status not in ("cancelled", "source-error")
            and c.source not in down
            and not (c.status == "proxy-error" and c.proxy is not None and c.proxy.used)
        ]
        if not seen or not all(c.status in FAILED or c.status == "target-error" for c in seen):
            continue
        if seen[0].endpoint in reached:
            continue  # the same endpoint works in another column: timing, not the target
        if any((c.source, c.target) in silent_pings for c in seen):
            continue
        candidates[column] = seen
    groups: dict[tuple[str, tuple[object, ...]], list[str]] = {}
    for column, cells in candidates.items():
        info = infos.get(column)
        target_name = cells[0].target_name
        if info is not None and info.via:
            siblings = [t.name for t in result.targets if t.target_name == target_name]
            if not all(s in candidates for s in siblings):
                continue  # some ways to this Service work: "via-differs" explains it
        # One cause per Service (its ways fail for one reason); per failure pattern else, a
        # declared failure apart from one nobody declared (they are not equally loud).
        signature: tuple[object, ...] = (
            ("via",) if info is not None and info.via else tuple(sorted({_how(c) for c in cells}))
        )
        groups.setdefault((target_name, signature), []).append(column)
    # Targets that name the same endpoint and fail the same way are one cause.
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
    scene = _Scene(result, candidates, columns_of, infos, set(down))
    return [_column_fails(scene, label, columns) for label, columns in merged.values()]


@dataclass(frozen=True)
class _Scene:
    """The run's columns failing from every working source (`candidates`, by column), all
    its cells by column (`columns_of`), the columns' infos and the rows that fail as a whole."""

    result: MatrixResult
    candidates: dict[str, list[CellResult]]
    columns_of: dict[str, list[CellResult]]
    infos: dict[str, TargetInfo]
    down: set[str]


def _port(info: TargetInfo | None) -> int | None:
    return info.port if info is not None and info.kind == "tcp" else None


def _how(cell: CellResult) -> tuple[str, str, str, int, str]:
    """How a cell failed, as far as it splits causes: the phase that failed (a connect
    timeout and an HTTP timeout are two causes), what failure_words says of it (status,
    errno, HTTP status), and whether it was declared (a tuple: made for every cell)."""
    failed = first_failure(cell)
    if failed is None:
        return ("", cell.status, "", 0, str(cell.met))
    return (
        failed.name,
        cell.status,
        failed.errno_name or "",
        failed.http_status or 0,
        str(cell.met),
    )


def _is_scan(columns: list[str], infos: dict[str, TargetInfo], service: bool) -> bool:
    """Several tcp ports of one host, not the ways to one Service."""
    probed = [infos.get(c) for c in columns]
    return (
        not service
        and len(columns) > 1
        and all(i is not None and i.kind == "tcp" and i.port is not None for i in probed)
        and len({i.host for i in probed if i is not None}) == 1
    )


def _open_ports(host: str, scene: _Scene) -> list[int]:
    """Ports of `host` that some row reached (as plain tcp columns)."""
    found = set()
    for column, cells in scene.columns_of.items():
        info = scene.infos.get(column)
        if info is None or info.kind != "tcp" or info.host != host or info.port is None:
            continue
        for c in cells:
            if c.status == "ok":
                found.add(info.port)
                break
    return sorted(found)


def _column_fails(scene: _Scene, target_name: str, columns: list[str]) -> Cause:
    """The cause of `columns` (of `target_name`, or of several targets when empty) failing."""
    result, candidates, infos = scene.result, scene.candidates, scene.infos
    cells = [c for col in columns for c in candidates[col]]
    info = infos.get(columns[0]) or target_info(result, columns[0])
    service = causes(info) if info is not None and is_service(info) else []
    everything = [c for col in columns for c in scene.columns_of[col]]
    stopped = [c for c in everything if _stopped_at_proxy(c) and c.source not in scene.down]
    scan = _is_scan(columns, infos, info is not None and bool(info.via))
    host = host_of(cells[0], info)
    # One pass: words -> the rows and the columns that saw them, and the ports probed.
    by_source: dict[str, dict[str, None]] = {}
    by_column: dict[str, dict[str, None]] = {}
    for c in cells:
        words = column_words(c)
        by_source.setdefault(words, {})[c.source] = None
        by_column.setdefault(words, {})[c.target] = None
    ports = {p for p in (_port(infos.get(column)) for column in columns) if p is not None}
    statuses = {words: list(rows) for words, rows in by_source.items()}
    facts: dict[str, object] = {
        "target": target_name,
        "columns": columns[:SHOWN_COLUMNS],
        "columns_total": len(columns),
        "endpoints": list(dict.fromkeys(c.endpoint for c in cells))[:SHOWN_COLUMNS],
        "statuses": statuses,
        "service": [c.facts for c in service],
    }
    if scan:
        facts["scan"] = {
            "host": host,
            "failing_ports": len(ports),
            "open_ports": _open_ports(host, scene),
        }
    return cause(
        RULE,
        target_name or columns[0],
        cells,
        facts=facts,
        variant="scan" if scan else ("service" if service else ""),
        columns=columns,
        by_column={words: list(names) for words, names in by_column.items()},
        ports=sorted(ports),
        service=service,
        stopped=stopped,
        probed=list(dict.fromkeys(c.source for c in cells)),
        working_rows={c.source for c in result.cells if c.status == "ok"},
    )
