"""Rule "source-differs": the same target works from one source and fails from another; say
what differs between the two places as far as the engine sees (see differences.py).

Failures through a proxy are left to "proxy-differs", which knows each client's rules.
"""

from __future__ import annotations

from ..results import CellResult, Finding, MatrixResult, SourceInfo
from ..status import FAILED
from .cells import by_target, evidence, source_info
from .differences import Difference, compare
from .phrasing import failure_words, listing, meaning, next_step
from .severity import severity


def _reference(failed: CellResult, ok: list[CellResult], infos: dict[str, SourceInfo]) -> str:
    """The working row to compare with: a sibling of the same source first (another pod of
    the same selector), then one of the same kind, then the first."""
    kind = infos[failed.source].kind if failed.source in infos else None
    for cell in ok:
        if cell.source_name == failed.source_name:
            return cell.source
    for cell in ok:
        if cell.source in infos and infos[cell.source].kind == kind:
            return cell.source
    return ok[0].source


def source_differs(result: MatrixResult) -> list[Finding]:
    """One finding per failing row and the working row it is compared with."""
    infos = {s.name: s for s in result.sources}
    # failing row -> [(its failed cell, the ok cells of that cell's column)]
    failing: dict[str, list[tuple[CellResult, list[CellResult]]]] = {}
    for _column, cells in by_target(result).items():
        ok = [c for c in cells if c.status == "ok"]
        if not ok:
            continue
        for cell in cells:
            if cell.status in FAILED and not (cell.proxy and cell.proxy.used):
                failing.setdefault(cell.source, []).append((cell, ok))
    findings = []
    for bad, items in failing.items():
        # One comparison row for as many targets as possible, so a finding reads as one story.
        groups: dict[str, list[tuple[CellResult, CellResult]]] = {}
        votes: dict[str, int] = {}
        for _cell, ok in items:
            for other in ok:
                votes[other.source] = votes.get(other.source, 0) + 1
        for cell, ok in items:
            preferred = _reference(cell, ok, infos)
            best = max(
                (o.source for o in ok),
                key=lambda s: (s == preferred, votes.get(s, 0)),
            )
            partner = next(o for o in ok if o.source == best)
            groups.setdefault(best, []).append((cell, partner))
        for good, pairs in groups.items():
            findings.append(_finding(result, bad, good, pairs))
    return findings


TOOL_FACTS = {"tools", "source_address"}


def _same_place(result: MatrixResult, bad: str, good: str) -> bool:
    """Both rows report one network namespace on one host (unknown is not the same)."""
    b, g = source_info(result, bad), source_info(result, good)
    if b is None or g is None or not b.facts.get("netns"):
        return False
    keys = ("netns", "hostname")
    return all(b.facts.get(k) == g.facts.get(k) for k in keys)


def _tool_finding(
    bad: str,
    good: str,
    pairs: list[tuple[CellResult, CellResult]],
    tool: Difference,
    detail: str,
) -> Finding:
    """Same place, same path: the only difference is what ran the probe. Never a network
    cause (no firewall, no route): the tool's own words say what it did."""
    failed_cells = [f for f, _ in pairs]
    targets = [f.target for f in failed_cells]
    said = next(
        (c.message for f in failed_cells for c in f.checks if c.status != "ok" and c.message),
        failed_cells[0].message,
    )
    detail += (
        f" Both run in the same network namespace and took the same path (addresses, routes, "
        f"resolver, proxy decision): the only difference is the tool. {tool.text}."
    )
    if said:
        detail += f" It said: {said}"
    return Finding(
        rule="source-differs",
        severity=severity(failed_cells, contradiction=True),
        title=f"{bad} fails where {good} succeeds on the same path: only the tool differs",
        detail=detail,
        evidence=evidence(failed_cells + [o for _, o in pairs]),
        next_step=(
            f"The network is not the cause: run {bad}'s tool by hand with its verbose option "
            f"and compare its options (timeouts, retries, proxy, CA) with {good}'s."
        ),
        facts={
            "failing_source": bad,
            "working_source": good,
            "targets": targets,
            "differences": [tool.text],
            "only_the_tool_differs": True,
            **tool.facts,
        },
    )


def _finding(
    result: MatrixResult, bad: str, good: str, pairs: list[tuple[CellResult, CellResult]]
) -> Finding:
    failed_cells = [f for f, _ in pairs]
    targets = [f.target for f in failed_cells]
    differences = compare(source_info(result, bad), source_info(result, good), pairs, bad, good)
    words: dict[str, list[str]] = {}
    for cell in failed_cells:
        words.setdefault(failure_words(cell), []).append(cell.target)
    outcome = "; ".join(f"{listing(t)}: {w}" for w, t in words.items())
    detail = (
        f"From {bad}: {outcome} ({meaning(failed_cells[0])}). From {good} the same "
        f"{'target works' if len(targets) == 1 else 'targets work'}."
    )
    # Facts of the path (namespace, routes, addresses, resolver, proxy, family, port) against
    # facts of the tool alone: with none of the first, the network is not the difference.
    path = [d for d in differences if not set(d.facts) <= TOOL_FACTS]
    tool_only = next((d for d in differences if "tools" in d.facts), None)
    if tool_only is not None and not path and _same_place(result, bad, good):
        return _tool_finding(bad, good, pairs, tool_only, detail)
    if differences:
        detail += " What differs: " + "; ".join(d.text for d in differences) + "."
    else:
        detail += (
            f" Nothing {bad} and {good} report differs (network namespace, addresses, routes, "
            "resolver, proxy decision): the failure may depend on timing (a service still "
            "starting, a flapping backend) or on rules the probe cannot see (a firewall "
            "matching the process's user or cgroup)."
        )
    step = next((d.next_step for d in differences if d.next_step), None)
    facts: dict[str, object] = {
        "failing_source": bad,
        "working_source": good,
        "targets": targets,
        "differences": [d.text for d in differences],
    }
    for d in differences:
        facts.update(d.facts)
    return Finding(
        rule="source-differs",
        severity=severity(failed_cells, contradiction=True),
        title=f"{bad} fails where {good} succeeds: {listing(targets)}",
        detail=detail,
        evidence=evidence(failed_cells + [o for _, o in pairs]),
        next_step=step or next_step(failed_cells[0]),
        facts=facts,
    )
