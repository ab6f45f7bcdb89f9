"""Rule "source-differs": the same target works from one source and fails from another; say
what differs between the two places as far as the engine sees (see differences.py). When
they run in one place and took the same path, only the tool differs: never a network cause.

Failures through a proxy are left to "proxy-differs", which knows each client's rules.
"""

from __future__ import annotations

from ..results import CellResult, MatrixResult, SourceInfo
from ..status import FAILED
from .cause import Cause, cause
from .cells import index, source_info
from .differences import compare

RULE = "source-differs"
TOOL_FACTS = {"tools", "source_address"}


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


def source_differs(result: MatrixResult) -> list[Cause]:
    """One cause per failing row and the working row it is compared with."""
    infos = index(result).sources
    # failing row -> [(its failed cell, the ok cells of that cell's column)]
    failing: dict[str, list[tuple[CellResult, list[CellResult]]]] = {}
    cells_of = index(result)
    for column in cells_of.in_order(cells_of.ok_columns):
        cells, ok = cells_of.columns[column], cells_of.ok_columns[column]
        for cell in cells:
            if cell.status in FAILED and not (cell.proxy and cell.proxy.used):
                failing.setdefault(cell.source, []).append((cell, ok))
    found = []
    for bad, items in failing.items():
        # One comparison row for as many targets as possible, so a finding reads as one story.
        groups: dict[str, list[tuple[CellResult, CellResult]]] = {}
        votes: dict[str, int] = {}
        for _cell, ok in items:
            for other in ok:
                votes[other.source] = votes.get(other.source, 0) + 1
        for cell, ok in items:
            preferred = _reference(cell, ok, infos)
            best = max((o.source for o in ok), key=lambda s: (s == preferred, votes.get(s, 0)))
            partner = next(o for o in ok if o.source == best)
            groups.setdefault(best, []).append((cell, partner))
        for good, pairs in groups.items():
            found.append(_cause(result, bad, good, pairs))
    return found


def _same_place(result: MatrixResult, bad: str, good: str) -> bool:
    """Both rows report one network namespace on one host (unknown is not the same)."""
    b, g = source_info(result, bad), source_info(result, good)
    if b is None or g is None or not b.facts.get("netns"):
        return False
    keys = ("netns", "hostname")
    return all(b.facts.get(k) == g.facts.get(k) for k in keys)


def _cause(
    result: MatrixResult, bad: str, good: str, pairs: list[tuple[CellResult, CellResult]]
) -> Cause:
    failed_cells = [f for f, _ in pairs]
    targets = [f.target for f in failed_cells]
    differences = compare(source_info(result, bad), source_info(result, good), pairs, bad, good)
    # Facts of the path (namespace, routes, addresses, resolver, proxy, family, port) against
    # facts of the tool alone: with none of the first, the network is not the difference.
    path = [d for d in differences if not set(d.facts) <= TOOL_FACTS]
    tool = next((d for d in differences if "tools" in d.facts), None)
    tool_only = tool is not None and not path and _same_place(result, bad, good)
    if tool is not None and tool_only:
        differences = [tool]
    facts: dict[str, object] = {
        "failing_source": bad,
        "working_source": good,
        "targets": targets,
        "differences": [d.text for d in differences],
    }
    if tool_only:
        facts["only_the_tool_differs"] = True
    for d in differences:
        facts.update(d.facts)
    return cause(
        RULE,
        bad,
        failed_cells,
        [o for _, o in pairs],
        facts=facts,
        variant="tool-only" if tool_only else "",
        good=good,
        differences=differences,
    )
