"""Rule "source-down": a whole row fails.

It comes first: when everything from one source fails, the cause is where that source runs (or
that it could not run at all), and per-cell findings for its cells would only repeat it. The
finding names the most likely cause it can prove, so the reader sees it first."""

from __future__ import annotations

from collections import Counter

from ..results import CellResult, Finding, MatrixResult, SourceInfo, TargetInfo
from .cells import DownRow, down_rows, evidence, first_failure, source_info, target_info
from .differences import Difference, compare
from .no_proxy import no_proxy_note
from .phrasing import CLIENT_RULES, failure_words, listing, meaning, next_step
from .severity import severity

KIND_HINTS = {
    "process": "Check that the interpreter starts with that environment (`python3 -c pass`).",
    "shell": "Install the tool there, or fix PATH in the source's env.",
    "docker": "Check that the container exists and runs (`docker ps -a`), and that it has a shell.",
    "kubernetes": "Check that the pods exist and run, and that exec is allowed (RBAC pods/exec).",
    "netns": "Check that the namespace exists (`ip netns list`) and that the run has root.",
}


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
        target = target_info(result, proxied[0].target)
        next_line = _proxy_cause(proxied[0], bad_info, target, causes_text, facts)
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
    first: CellResult,
    info: SourceInfo | None,
    target: TargetInfo | None,
    causes_text: list[str],
    facts: dict[str, object],
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
    note, note_facts = no_proxy_note(first, info, target)
    if note:
        causes_text.append(note)
    facts.update(proxy=first.proxy.model_dump(exclude_none=True), **note_facts)
    return (
        f"Fix or unset {first.proxy.variable} in {first.source}'s environment, or exempt the "
        "targets in NO_PROXY."
    )
