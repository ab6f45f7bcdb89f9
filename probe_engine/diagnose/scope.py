"""Rules "source-down" and "target-down": a whole row or a whole column fails.

These come first: when everything from one source fails, the cause is where that source runs
(or that it could not run at all), and per-cell findings for its cells would only repeat it;
when one target fails from every source that otherwise works, the target itself is down or on
another port. Each finding names the most likely cause it can prove, so the reader sees it first.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..results import CellResult, Finding, MatrixResult, SourceInfo, TargetInfo
from ..status import FAILED
from .common import (
    by_source,
    by_target,
    evidence,
    failure_words,
    first_failure,
    listing,
    severity,
    source_info,
    target_info,
)
from .differences import Difference, compare
from .explain import meaning, next_step
from .proxy import CLIENT_RULES, no_proxy_note
from .service import causes, is_service

KIND_HINTS = {
    "process": "Check that the interpreter starts with that environment (`python3 -c pass`).",
    "shell": "Install the tool there, or fix PATH in the source's env.",
    "docker": "Check that the container exists and runs (`docker ps -a`), and that it has a shell.",
    "kubernetes": "Check that the pods exist and run, and that exec is allowed (RBAC pods/exec).",
    "netns": "Check that the namespace exists (`ip netns list`) and that the run has root.",
}


@dataclass(frozen=True)
class DownRow:
    row: str
    cells: list[CellResult]  # the row's probed cells, all failing
    could_not_run: bool
    contrast: dict[str, CellResult]  # target -> an ok cell of another row


def down_rows(result: MatrixResult) -> dict[str, DownRow]:
    """Rows that could not run, or that fail every cell while other rows reach some of the same
    targets (with one cell only, that is a per-cell difference, not a row problem)."""
    columns = by_target(result)
    infos = {s.name: s for s in result.sources}
    down: dict[str, DownRow] = {}
    for row, cells in by_source(result).items():
        probed = [c for c in cells if c.status not in ("cancelled", "target-error")]
        if not probed:
            continue
        info = infos.get(row)
        could_not_run = info is not None and info.status == "error"
        if all(c.status == "source-error" for c in probed) or (
            could_not_run and not any(c.status == "ok" for c in probed)
        ):
            down[row] = DownRow(row, probed, True, {})
            continue
        # A cell that could not run there (a local-only tunnel, say) proves nothing either way.
        probed = [c for c in probed if c.status != "source-error"]
        if len(probed) < 2 or not all(c.status in FAILED for c in probed):
            continue
        contrast: dict[str, CellResult] = {}
        for cell in probed:
            ok = [o for o in columns[cell.target] if o.status == "ok" and o.source != row]
            siblings = [o for o in ok if o.source_name == cell.source_name]
            if ok:
                contrast[cell.target] = (siblings or ok)[0]
        if contrast:
            down[row] = DownRow(row, probed, False, contrast)
    return down


def source_down(result: MatrixResult) -> list[Finding]:
    findings = []
    down = down_rows(result)
    failed_to_run: dict[tuple[str, str], list[DownRow]] = {}
    for item in down.values():
        if item.could_not_run:
            info = source_info(result, item.row)
            message = (info.message if info else None) or item.cells[0].message or "no detail"
            failed_to_run.setdefault((item.cells[0].source_name, message), []).append(item)
        else:
            findings.append(_row_fails(result, item))
    for (source_name, message), items in failed_to_run.items():
        rows = [i.row for i in items]
        cells = [c for i in items for c in i.cells]
        info = source_info(result, rows[0])
        kind = info.kind if info else ""
        findings.append(
            Finding(
                rule="source-down",
                severity=severity(cells, contradiction=True),
                title=f"{listing(rows)} could not run its probes: {message}",
                detail=(
                    f"All {len(cells)} cells of {listing(rows)} are source-error: {message}. "
                    "Nothing is known about the network from there until the probe can run."
                ),
                evidence=evidence(cells),
                next_step=KIND_HINTS.get(kind, "Fix what the message says, then run again."),
                facts={"source": source_name, "rows": rows, "kind": kind, "message": message},
            )
        )
    return findings


def _failures(cells: list[CellResult]) -> str:
    """'api and db: refused (ECONNREFUSED); cache: timeout'."""
    groups: dict[str, list[str]] = {}
    for cell in cells:
        groups.setdefault(failure_words(cell), []).append(cell.target)
    return "; ".join(f"{listing(targets)}: {words}" for words, targets in groups.items())


def _row_fails(result: MatrixResult, item: DownRow) -> Finding:
    row = item.row
    bad_info = source_info(result, row)
    pairs = [(c, item.contrast[c.target]) for c in item.cells if c.target in item.contrast]
    # The working rows, those reaching most of this row's targets first.
    goods = [s for s, _ in Counter(o.source for _, o in pairs).most_common()]
    causes_text: list[str] = []
    next_line = None
    facts: dict[str, object] = {}
    proxied = [c for c in item.cells if c.status == "proxy-error" and c.proxy and c.proxy.used]
    if proxied and len({c.proxy.url for c in proxied if c.proxy}) == 1:
        next_line = _proxy_cause(proxied[0], bad_info, causes_text, facts)
    differences: list[Difference] = []
    for index, good in enumerate(goods[:3]):
        with_good = [(f, o) for f, o in pairs if o.source == good]
        for found in compare(bad_info, source_info(result, good), with_good, row, good):
            # Beyond the first working row, only the specific causes: not the context again.
            if (index == 0 or found.rank < 30) and all(found.text != d.text for d in differences):
                differences.append(found)
    differences.sort(key=lambda d: d.rank)
    causes_text += [d.text for d in differences]
    next_line = next_line or next((d.next_step for d in differences if d.next_step), None)
    reached = "; ".join(
        f"{good} reaches {listing([o.target for _, o in pairs if o.source == good])}"
        for good in goods
    )
    detail = (
        f"From {row}: {_failures(item.cells)}. Yet {reached}: the cause lies with {row} (where "
        "or how it runs), not with the targets."
    )
    if causes_text:
        detail += " What differs: " + "; ".join(causes_text) + "."
    else:
        detail += (
            " The engine sees no difference in network namespace, routes or proxy settings "
            f"between {row} and {listing(goods)}: {meaning(item.cells[0])}."
        )
    facts.update(
        source=row,
        working=goods,
        differences=[d.text for d in differences],
        **{k: v for d in differences for k, v in d.facts.items()},
    )
    return Finding(
        rule="source-down",
        severity=severity(item.cells, contradiction=True),
        title=f"Everything from {row} fails ({len(item.cells)} cells) while {listing(goods)} "
        f"reach{'es' if len(goods) == 1 else ''} the same targets",
        detail=detail,
        evidence=evidence(item.cells + [o for _, o in pairs]),
        next_step=next_line or next_step(item.cells[0]),
        facts=facts,
    )


def _proxy_cause(
    first: CellResult, info: SourceInfo | None, causes_text: list[str], facts: dict[str, object]
) -> str:
    """Every failure of the row went to one proxy: that proxy is the first cause."""
    assert first.proxy is not None
    rule = CLIENT_RULES.get(first.proxy.client, first.proxy.client)
    failed = first_failure(first)
    causes_text.append(
        f"every HTTP request from {first.source} goes through {first.proxy.variable}="
        f"{first.proxy.url} ({rule}) and that proxy fails"
        + (f" ({failed.errno_name})" if failed and failed.errno_name else "")
    )
    note, note_facts = no_proxy_note(first, info)
    if note:
        causes_text.append(note)
    facts.update(proxy=first.proxy.model_dump(exclude_none=True), **note_facts)
    return (
        f"Fix or unset {first.proxy.variable} in {first.source}'s environment, or exempt the "
        "targets in NO_PROXY."
    )


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
            hosts = {_host(c.endpoint) for column in columns for c in candidates[column]}
            key = (signature, tuple(sorted(hosts)))
        label, kept = merged.setdefault(key, (target_name, []))
        if label != target_name:
            merged[key] = ("", kept)  # several targets: name the columns, not one target
        kept.extend(columns)
    return [
        _column_fails(result, label, columns, candidates, infos, working_rows)
        for label, columns in merged.values()
    ]


def _host(endpoint: str) -> str:
    """127.0.0.1 from 127.0.0.1:80, [::1]:80 or http://127.0.0.1:80/health."""
    netloc = urlsplit(endpoint).netloc if "://" in endpoint else endpoint
    netloc = netloc.split(" ")[0]
    if netloc.startswith("["):
        return netloc[1 : netloc.find("]")]
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


def _words(cell: CellResult) -> str:
    """failure_words, with the reason of a column that could not be probed."""
    if cell.status == "target-error" and cell.message:
        return f"target-error ({cell.message})"
    return failure_words(cell)


def _column_fails(
    result: MatrixResult,
    target_name: str,
    columns: list[str],
    candidates: dict[str, list[CellResult]],
    infos: dict[str, TargetInfo],
    working_rows: set[str],
) -> Finding:
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
            hosts = list(dict.fromkeys(_host(e) for e in endpoints))
            where = f"{listing(hosts)} ({len(endpoints)} endpoints)"
        verb = "fail" if named != target_name and len(columns) > 1 and not target_name else "fails"
        title = f"{named} {verb} from every source: {failure_words(first)} at {where}"
    by_words: dict[str, list[str]] = {}
    for c in cells:
        by_words.setdefault(_words(c), []).append(c.source)
    by_column: dict[str, list[str]] = {}
    for c in cells:
        by_column.setdefault(_words(c), []).append(c.target)
    if len(columns) > 1 and len(by_column) > 1:
        how = "; ".join(f"{listing(t)}: {w}" for w, t in by_column.items())
        seen = f"From {listing(sources)}, {how}."
    elif len(by_words) > 1:
        how = "; ".join(f"{w} from {listing(s)}" for w, s in by_words.items())
        seen = f"It fails differently by source: {how}."
    else:
        seen = (
            f"{listing(sources)} {'sees' if len(sources) == 1 else 'all see'} "
            f"{failure_words(first)}."
        )
    detail = f"{seen} Why: {cause}."
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
