"""Rule "search-list": a short name fails while a longer name starting with it resolves: the
search list (or ndots) does not complete the short name."""

from __future__ import annotations

from ..results import CellResult, CheckRecord, MatrixResult
from .cause import Cause, cause
from .cells import asked_names, index, source_info
from .facts import row_facts

RULE = "search-list"


def search_list(result: MatrixResult) -> list[Cause]:
    found = []
    # Each row's lookups (not of a proxy), from the index: no pass over a scan's cells.
    cells = index(result)
    for row in cells.rows:
        lookups = [(cell, record) for cell, record in cells.lookups.get(row, []) if record.host]
        oks = [(c, r) for c, r in lookups if r.status == "ok"]
        for cell, record in lookups:
            if record.status == "ok" or record.reason not in ("nxdomain", "no-address"):
                continue
            short = (record.host or "").rstrip(".")
            full = next(
                (
                    (c, r)
                    for c, r in oks
                    if (r.host or "").rstrip(".").startswith(short + ".") and c is not cell
                ),
                None,
            )
            if full is None or (record.host or "").endswith("."):
                continue
            found.append(_cause(result, row, (cell, record), full))
    return found


def _cause(
    result: MatrixResult,
    row: str,
    failed: tuple[CellResult, CheckRecord],
    resolved: tuple[CellResult, CheckRecord],
) -> Cause:
    """The short name of `failed` fails where the longer name of `resolved` resolves."""
    (cell, record), (ok_cell, ok_record) = failed, resolved
    short = (record.host or "").rstrip(".")
    fqdn = (ok_record.host or "").rstrip(".")
    tried = asked_names(record)
    search: list[str] | None = None
    ndots = None
    resolv = row_facts(source_info(result, row)).get("resolv_conf")
    if record.resolver == "system" and resolv is not None:
        search = resolv["search"]
        ndots = next(
            (o.split(":", 1)[1] for o in resolv["options"] if o.startswith("ndots:")), None
        )
    elif tried is not None:
        search = [t[len(short) + 1 :] for t in tried if t.startswith(short + ".")]
    return cause(
        RULE,
        short,
        [cell],
        [ok_cell],
        facts={
            "source": row,
            "short": short,
            "fqdn": fqdn,
            "search": search,
            "tried": tried,
            "ndots": ndots,
        },
        record=record,
        ok_record=ok_record,
    )
