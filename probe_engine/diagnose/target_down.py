"""Rule "target-down": a whole column fails.

When one target fails from every source that probed it, the target itself is down or on
another port; per-cell findings would only repeat it. Cells stopped at their proxy never
reached the target and say nothing about it; rows that fail everything are explained by
"source-down". Many ports of one host failing alike are one cause: a port scan, summarised
with the ports that are open."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..results import CellResult, MatrixResult, TargetInfo
from .cause import Cause, cause
from .cells import down_rows, first_failure, host_of, index, target_info
from .facts import is_service
from .index import Index
from .phrasing import column_words
from .ping_filtered import filtered_pings
from .service_causes import causes

RULE = "target-down"
SHOWN_COLUMNS = 20


def _stopped_at_proxy(cell: CellResult) -> bool:
    return cell.status == "proxy-error" and cell.proxy is not None and cell.proxy.used


def target_down(result: MatrixResult) -> list[Cause]:
    """One cause per target (and failure pattern) that fails from every source that probed it."""
    down = down_rows(result)
    cells_of = index(result)
    reached, infos = cells_of.reached, cells_of.targets
    candidates: dict[str, list[CellResult]] = {}
    hows: dict[str, list[_How]] = {}  # how each candidate cell failed, in the same order
    silent_pings = filtered_pings(result)  # their host is up: "ping-filtered" says so
    for column, cells in cells_of.columns.items():
        if column in cells_of.ok_columns:
            continue  # an ok cell is always seen, and it works: not a column that fails
        seen = [
            c
            for c in cells
            if c.status not in ("cancelled", "source-error")
            and c.source not in down
            and not (c.status == "proxy-error" and c.proxy is not None and c.proxy.used)
        ]
        if not seen:
            continue  # the rest fail (or could not be resolved): ok cells were ruled out above
        if seen[0].endpoint in reached:
            continue  # the same endpoint works in another column: timing, not the target
        if silent_pings and any((c.source, c.target) in silent_pings for c in seen):
            continue
        candidates[column] = seen
        hows[column] = [_how(c) for c in seen]
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
            ("via",) if info is not None and info.via else tuple(sorted(set(hows[column])))
        )
        groups.setdefault((target_name, signature), []).append(column)
    # Targets that name the same endpoint and fail the same way are one cause.
    merged: dict[tuple[object, ...], tuple[str, list[str]]] = {}
    for (target_name, signature), columns in groups.items():
        if signature == ("via",):
            key: tuple[object, ...] = (target_name, signature)
        else:
            # Per host: many ports of one host failing alike (a scan) is one cause.
            hosts = set()
            for column in columns:
                info = infos.get(column)
                if info is not None and info.host:
                    hosts.add(info.host)  # host_of() of every cell of the column
                else:
                    hosts.update(host_of(c, info) for c in candidates[column])
            key = (signature, tuple(sorted(hosts)))
        label, kept = merged.setdefault(key, (target_name, []))
        if label != target_name:
            merged[key] = ("", kept)  # several targets: name the columns, not one target
        kept.extend(columns)
    scene = _Scene(result, candidates, hows, cells_of, set(down))
    return [_column_fails(scene, label, columns) for label, columns in merged.values()]


@dataclass(frozen=True)
class _Scene:
    """The run's columns failing from every working source (`candidates`, by column) and how
    each of their cells failed (`hows`), the run's index and the rows that fail as a whole."""

    result: MatrixResult
    candidates: dict[str, list[CellResult]]
    hows: dict[str, list[_How]]
    index: Index
    down: set[str]


def _port(info: TargetInfo | None) -> int | None:
    return info.port if info is not None and info.kind == "tcp" else None


_How = tuple[str, str, str, int, str]


def _how(cell: CellResult) -> _How:
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
    for column in scene.index.ok_columns:
        info = scene.index.targets.get(column)
        if info is None or info.kind != "tcp" or info.host != host or info.port is None:
            continue
        found.add(info.port)
    return sorted(found)


def _first(values: Iterable[str], limit: int) -> list[str]:
    """The first `limit` distinct values, in order (read no further: a scan has 10,000)."""
    found: dict[str, None] = {}
    for value in values:
        if value not in found:
            found[value] = None
            if len(found) == limit:
                break
    return list(found)


def _column_fails(scene: _Scene, target_name: str, columns: list[str]) -> Cause:
    """The cause of `columns` (of `target_name`, or of several targets when empty) failing."""
    result, candidates, index = scene.result, scene.candidates, scene.index
    infos = index.targets
    cells = [c for col in columns for c in candidates[col]]
    info = infos.get(columns[0]) or target_info(result, columns[0])
    service = causes(info) if info is not None and is_service(info) else []
    stopped = (
        [
            c
            for col in columns
            for c in index.columns[col]
            if _stopped_at_proxy(c) and c.source not in scene.down
        ]
        if "proxy-error" in index.by_status
        else []
    )
    scan = _is_scan(columns, infos, info is not None and bool(info.via))
    host = host_of(cells[0], info)
    # One pass: words -> the rows and the columns that saw them. A cell's words follow from
    # how it failed (but a target-error's message), so they are made once per way of failing.
    by_source: dict[str, dict[str, None]] = {}
    by_column: dict[str, dict[str, None]] = {}
    said: dict[_How, str] = {}
    for column in columns:
        for c, how in zip(candidates[column], scene.hows[column]):
            if c.status == "target-error":
                words = column_words(c)
            else:
                words = said.get(how) or said.setdefault(how, column_words(c))
            by_source.setdefault(words, {})[c.source] = None
            by_column.setdefault(words, {})[column] = None
    ports = {p for p in (_port(infos.get(column)) for column in columns) if p is not None}
    statuses = {words: list(rows) for words, rows in by_source.items()}
    facts: dict[str, object] = {
        "target": target_name,
        "columns": columns[:SHOWN_COLUMNS],
        "columns_total": len(columns),
        "endpoints": _first((c.endpoint for c in cells), SHOWN_COLUMNS),
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
        probed=_first((c.source for c in cells), len(index.rows)),
        working_rows={c.source for c in index.by_status.get("ok", [])},
    )
