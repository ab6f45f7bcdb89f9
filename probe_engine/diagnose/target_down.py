"""Rule "target-down": a whole column fails.

When one target fails from every source that probed it, the target itself is down or on
another port; per-cell findings would only repeat it. Cells stopped at their proxy never
reached the target and say nothing about it; rows that fail everything are explained by
"source-down". Many ports of one host failing alike are one cause: a port scan, summarised
with the ports that are open."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain, compress
from operator import attrgetter
from typing import cast

from ..results import CellResult, MatrixResult, TargetInfo
from .cause import Cause, cause
from .cells import down_rows, host_of, index, target_info
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
    infos = cells_of.targets
    candidates, hows = _candidates(result, cells_of, set(down))
    # Targets that name the same endpoint and fail the same way are one cause.
    merged: dict[tuple[object, ...], tuple[str, list[str], _Signature]] = {}
    for (target_name, signature), columns in _groups(result, candidates, hows).items():
        if signature is VIA:
            key: tuple[object, ...] = (target_name, signature)
        else:
            # Per host: many ports of one host failing alike (a scan) is one cause.
            info = infos.get(columns[0]) if len(columns) == 1 else None
            if info is not None and info.host:
                hosts: tuple[str, ...] = (info.host,)  # a target of one column (5000 of them)
            else:
                hosts = tuple(sorted(_hosts(columns, infos, candidates)))
            key = (signature, hosts)
        entry = merged.get(key)
        if entry is None:
            merged[key] = (target_name, list(columns), signature)
            continue
        label, kept, _ = entry
        if label != target_name:
            merged[key] = ("", kept, signature)  # several targets: name the columns
        kept.extend(columns)
    scene = _Scene(result, candidates, hows, cells_of, set(down))
    return [_column_fails(scene, label, columns, way) for label, columns, way in merged.values()]


def _hosts(
    columns: list[str], infos: dict[str, TargetInfo], candidates: dict[str, list[CellResult]]
) -> set[str]:
    """host_of() the cells of the columns: their targets' hosts (read in C when every column
    has one: a scan's 5000), else per cell."""
    named = list(map(attrgetter("host"), filter(None, map(infos.get, columns))))
    if len(named) == len(columns) and all(named):
        return set(named)
    found = set()
    for column in columns:
        info = infos.get(column)
        if info is not None and info.host:
            found.add(info.host)  # host_of() of every cell of the column
        else:
            found.update(host_of(c, info) for c in candidates[column])
    return found


def _groups(
    result: MatrixResult, candidates: dict[str, list[CellResult]], hows: dict[str, list[_How]]
) -> dict[tuple[str, _Signature], list[str]]:
    """The candidate columns by target and failure pattern: one cause per Service (its ways
    fail for one reason); per failure pattern else, a declared failure apart from one nobody
    declared (they are not equally loud)."""
    targets = result.targets
    via = set(compress(map(attrgetter("name"), targets), map(attrgetter("via"), targets)))
    groups: dict[tuple[str, _Signature], list[str]] = {}
    for column, cells in candidates.items():
        target_name = cells[0].target_name
        if via and column in via:
            siblings = [t.name for t in targets if t.target_name == target_name]
            if not all(s in candidates for s in siblings):
                continue  # some ways to this Service work: "via-differs" explains it
            signature: _Signature = VIA
        else:
            ways = hows[column]
            first = ways[0]
            if len(ways) == 1 or ways.count(first) == len(ways):
                signature = (first,)
            else:
                signature = tuple(sorted(set(ways)))
        key = (target_name, signature)
        group = groups.get(key)
        if group is None:
            groups[key] = [column]
        else:
            group.append(column)
    return groups


def _candidates(
    result: MatrixResult, cells_of: Index, down: set[str]
) -> tuple[dict[str, list[CellResult]], dict[str, list[_How]]]:
    """The columns whose every seen cell fails (by column), and how each of those cells
    failed (in the same order)."""
    candidates: dict[str, list[CellResult]] = {}
    hows: dict[str, list[_How]] = {}
    reached, ok_columns = cells_of.reached, cells_of.ok_columns
    silent_pings = filtered_pings(result)  # their host is up: "ping-filtered" says so
    # Every cell is seen when no row is down and none was cut, could not run or stopped at
    # its proxy (a scan): no filtering per cell.
    every = not down and not any(
        s in cells_of.statuses for s in ("cancelled", "source-error", "proxy-error")
    )
    for column, cells in cells_of.columns.items():
        if column in ok_columns:
            continue  # an ok cell is always seen, and it works: not a column that fails
        seen = (
            cells
            if every
            else [
                c
                for c in cells
                if c.status not in ("cancelled", "source-error")
                and c.source not in down
                and not (c.status == "proxy-error" and c.proxy is not None and c.proxy.used)
            ]
        )
        if not seen:
            continue  # the rest fail (or could not be resolved): ok cells were ruled out above
        if seen[0].endpoint in reached:
            continue  # the same endpoint works in another column: timing, not the target
        if silent_pings and any((c.source, c.target) in silent_pings for c in seen):
            continue
        candidates[column] = seen
        ways: list[_How] = []
        # How each cell failed, as far as it splits causes: the phase that failed (a connect
        # timeout and an HTTP timeout are two causes), what failure_words says of it (status,
        # errno, HTTP status), and whether it was declared (tuples: made for every cell).
        for cell in seen:
            for failed in cell.checks:
                if failed.status != "ok":
                    ways.append(
                        (
                            failed.name,
                            cell.status,
                            failed.errno_name or "",
                            failed.http_status or 0,
                            MET[cell.met],
                        )
                    )
                    break
            else:
                ways.append(("", cell.status, "", 0, MET[cell.met]))
        hows[column] = ways
    return candidates, hows


@dataclass(frozen=True)
class _Scene:
    """The run's columns failing from every working source (`candidates`, by column) and how
    each of their cells failed (`hows`), the run's index and the rows that fail as a whole."""

    result: MatrixResult
    candidates: dict[str, list[CellResult]]
    hows: dict[str, list[_How]]
    index: Index
    down: set[str]


_How = tuple[str, str, str, int, str]
Infos = list[TargetInfo]
_Signature = tuple[object, ...]  # the ways a column's cells failed, or VIA
VIA: _Signature = ("via",)
MET = {None: "None", True: "True", False: "False"}  # str(cell.met), read for every cell


def _ports(
    columns: list[str], infos: dict[str, TargetInfo], service: bool
) -> tuple[set[int], bool]:
    """The tcp ports of the columns, and whether they are a scan: several tcp ports of one
    host, not the ways to one Service (read in C where it can: a scan has 5000 columns)."""
    probed = list(map(infos.get, columns))
    known: Infos = list(filter(None, probed))  # a model is true; `None in` would call __eq__
    kinds = set(map(attrgetter("kind"), known))
    tcp = known if kinds == {"tcp"} else [i for i in known if i.kind == "tcp"]
    seen: set[int | None] = set(map(attrgetter("port"), tcp))
    every = len(known) == len(probed) and kinds == {"tcp"} and None not in seen
    seen.discard(None)
    ports = cast(set[int], seen)
    hosts = set(map(attrgetter("host"), known))
    return ports, not service and len(columns) > 1 and every and len(hosts) == 1


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


def _column_fails(
    scene: _Scene, target_name: str, columns: list[str], signature: _Signature
) -> Cause:
    """The cause of `columns` (of `target_name`, or of several targets when empty) failing,
    all in one way (`signature`)."""
    result, candidates, index = scene.result, scene.candidates, scene.index
    infos = index.targets
    cells = list(chain.from_iterable(map(candidates.__getitem__, columns)))
    probed = _first((c.source for c in cells), len(index.rows))
    info = infos.get(columns[0]) or target_info(result, columns[0])
    service = causes(info) if info is not None and is_service(info) else []
    stopped = (
        [
            c
            for col in columns
            for c in index.columns[col]
            if _stopped_at_proxy(c) and c.source not in scene.down
        ]
        if "proxy-error" in index.statuses
        else []
    )
    ports, scan = _ports(columns, infos, info is not None and bool(info.via))
    host = host_of(cells[0], info)
    # Words -> the rows and the columns that saw them. A cell's words follow from how it
    # failed (but a target-error's message): failing in one way, every cell says the same.
    by_source: dict[str, dict[str, None]] = {}
    by_column: dict[str, dict[str, None]] = {}
    said: dict[_How, str] = {}
    if signature != VIA and len(signature) == 1 and cells[0].status != "target-error":
        words = column_words(cells[0])
        by_source[words] = dict.fromkeys(probed)
        by_column[words] = dict.fromkeys(columns)
        columns_read: list[str] = []
    else:
        columns_read = columns
    for column in columns_read:
        for c, how in zip(candidates[column], scene.hows[column]):
            if how[1] == "target-error":
                words = column_words(c)
            else:
                words = said.get(how) or said.setdefault(how, column_words(c))
            rows = by_source.get(words)
            if rows is None:
                rows = by_source[words] = {}
            rows[c.source] = None
            named = by_column.get(words)
            if named is None:
                named = by_column[words] = {}
            named[column] = None
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
        probed=probed,
        working_rows={c.source for c in index.ok},
    )
