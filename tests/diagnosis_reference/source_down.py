"""Rule "source-down": a whole row fails.

It comes first: when everything from one source fails, the cause is where that source runs (or
that it could not run at all), and per-cell findings for its cells would only repeat it. The
cause names what differs from the rows that work (differences.py), a failing proxy first."""

from __future__ import annotations

from collections import Counter

from probe_engine.diagnose.cause import Cause, cause
from probe_engine.diagnose.cells import DownRow, source_info, target_info
from probe_engine.diagnose.differences import Difference, compare
from probe_engine.diagnose.no_proxy import no_proxy_note
from probe_engine.results import MatrixResult

from .grouping import down_rows

RULE = "source-down"


def source_down(result: MatrixResult) -> list[Cause]:
    found = []
    failed_to_run: dict[tuple[str, str], list[DownRow]] = {}
    for item in down_rows(result).values():
        if item.could_not_run:
            info = source_info(result, item.row)
            message = (info.message if info else None) or item.cells[0].message or "no detail"
            failed_to_run.setdefault((item.cells[0].source_name, message), []).append(item)
        else:
            found.append(_row_fails(result, item))
    for (source_name, message), items in failed_to_run.items():
        rows = [i.row for i in items]
        info = source_info(result, rows[0])
        kind = info.kind if info else ""
        found.append(
            cause(
                RULE,
                rows[0],
                [c for i in items for c in i.cells],
                facts={"source": source_name, "rows": rows, "kind": kind, "message": message},
                variant="could-not-run",
            )
        )
    return found


def _row_fails(result: MatrixResult, item: DownRow) -> Cause:
    row = item.row
    bad_info = source_info(result, row)
    pairs = [(c, item.contrast[c.target]) for c in item.cells if c.target in item.contrast]
    # The working rows, those reaching most of this row's targets first.
    goods = [s for s, _ in Counter(o.source for _, o in pairs).most_common()]
    facts: dict[str, object] = {}
    proxied = [c for c in item.cells if c.status == "proxy-error" and c.proxy and c.proxy.used]
    proxy_note = ""
    if proxied and len({c.proxy.url for c in proxied if c.proxy}) == 1:
        target = target_info(result, proxied[0].target)
        proxy_note, note_facts = no_proxy_note(proxied[0], bad_info, target)
        proxy = proxied[0].proxy
        assert proxy is not None
        facts.update(proxy=proxy.model_dump(exclude_none=True), **note_facts)
    else:
        proxied = []
    differences: list[Difference] = []
    for index, good in enumerate(goods[:3]):
        with_good = [(f, o) for f, o in pairs if o.source == good]
        for seen in compare(bad_info, source_info(result, good), with_good, row, good):
            # Beyond the first working row, only the specific causes: not the context again.
            if (index == 0 or seen.rank < 30) and all(seen.text != d.text for d in differences):
                differences.append(seen)
    differences.sort(key=lambda d: d.rank)
    facts.update(
        source=row,
        working=goods,
        differences=[d.text for d in differences],
        **{k: v for d in differences for k, v in d.facts.items()},
    )
    return cause(
        RULE,
        row,
        item.cells,
        [o for _, o in pairs],
        facts=facts,
        variant="fails-everything",
        pairs=pairs,
        goods=goods,
        differences=differences,
        proxied=proxied[0] if proxied else None,
        proxy_note=proxy_note,
        info=bad_info,
    )
