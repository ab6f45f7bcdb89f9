"""Rule "search-list": a short name fails while a longer name starting with it resolves: the
search list (or ndots) does not complete the short name."""

from __future__ import annotations

from collections.abc import Iterable

from probe_engine.diagnose.cause import Cause, cause
from probe_engine.diagnose.cells import asked_names, source_info
from probe_engine.diagnose.facts import row_facts
from probe_engine.results import CellResult, CheckRecord, MatrixResult

from .grouping import by_source

RULE = "search-list"


def _lookups(cells: Iterable[CellResult]) -> list[tuple[CellResult, CheckRecord]]:
    return [
        (cell, record)
        for cell in cells
        for record in cell.checks
        if record.name == "dns" and record.host and record.role != "proxy"
    ]


def search_list(result: MatrixResult) -> list[Cause]:
    found = []
    for row, cells in by_source(result).items():
        lookups = _lookups(cells)
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
