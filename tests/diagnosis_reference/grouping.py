"""The groupings as the rules read them before the index: each a walk over every cell."""

from __future__ import annotations

from collections import defaultdict

from probe_engine.diagnose.cells import DownRow
from probe_engine.results import CellResult, MatrixResult
from probe_engine.status import FAILED


def by_target(result: MatrixResult) -> dict[str, list[CellResult]]:
    groups: dict[str, list[CellResult]] = defaultdict(list)
    for cell in result.cells:
        groups[cell.target].append(cell)
    return dict(groups)


def by_source(result: MatrixResult) -> dict[str, list[CellResult]]:
    groups: dict[str, list[CellResult]] = defaultdict(list)
    for cell in result.cells:
        groups[cell.source].append(cell)
    return dict(groups)


def down_rows(result: MatrixResult) -> dict[str, DownRow]:
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
