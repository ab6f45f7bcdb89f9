"""Rule "proxy-differs": one source goes through a proxy and fails where another goes direct
(or the same source's other clients would), with why each client decided as it did: which
variables it honours, and why a NO_PROXY that is set did not exempt the host for it."""

from __future__ import annotations

from ..results import CellResult, MatrixResult
from ..status import FAILED
from .cause import Cause, cause
from .cells import index, source_info, target_info
from .no_proxy import no_proxy_fix, no_proxy_note

RULE = "proxy-differs"


def proxy_differs(result: MatrixResult) -> list[Cause]:
    """One cause per failing source and proxy, listing every target it affects."""
    groups: dict[tuple[str, str | None], list[tuple[CellResult, CellResult | None]]] = {}
    cells_of = index(result)
    stopped = {c.target for c in cells_of.proxied if c.status in FAILED}  # at their proxy
    for column in cells_of.in_order(stopped):
        cells = cells_of.columns[column]
        ok = cells_of.ok_columns.get(column, [])
        direct = [c for c in ok if not (c.proxy and c.proxy.used)]
        for failed in cells:
            if failed.status in FAILED and failed.proxy and failed.proxy.used:
                key = (failed.source, failed.proxy.url)
                groups.setdefault(key, []).append((failed, direct[0] if direct else None))
    found = []
    for (source, _url), pairs in groups.items():
        failed = pairs[0][0]
        proxy = failed.proxy
        assert proxy is not None
        info = source_info(result, source)
        note, note_facts = no_proxy_note(failed, info, target_info(result, failed.target))
        fix = no_proxy_fix(result, [f for f, _ in pairs], info)
        goods = [g for _, g in pairs if g is not None]
        found.append(
            cause(
                RULE,
                source,
                [f for f, _ in pairs],
                goods,
                facts={
                    "proxy": proxy.model_dump(exclude_none=True),
                    "targets": [f.target for f, _ in pairs],
                    **note_facts,
                    "no_proxy_fix": fix.facts(),
                },
                variant="contrast" if goods else "",
                note=note,
                fix=fix,
                info=info,
            )
        )
    return found
