"""Rule "search-list": a short name fails while a longer name starting with it resolves: the
search list (or ndots) does not complete the short name."""

from __future__ import annotations

from collections.abc import Iterable

from ..results import CellResult, CheckRecord, Finding, MatrixResult
from .cells import asked_names, by_source, evidence, source_info
from .facts import row_facts
from .phrasing import DNS_REASONS, listing
from .severity import severity


def _lookups(cells: Iterable[CellResult]) -> list[tuple[CellResult, CheckRecord]]:
    return [
        (cell, record)
        for cell in cells
        for record in cell.checks
        if record.name == "dns" and record.host and record.role != "proxy"
    ]


def search_list(result: MatrixResult) -> list[Finding]:
    findings = []
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
            findings.append(_search_finding(result, row, (cell, record), full))
    return findings


def _search_finding(
    result: MatrixResult,
    row: str,
    failed: tuple[CellResult, CheckRecord],
    resolved: tuple[CellResult, CheckRecord],
) -> Finding:
    """The short name of `failed` fails where the longer name of `resolved` resolves."""
    (cell, record), (ok_cell, ok_record) = failed, resolved
    short = (record.host or "").rstrip(".")
    fqdn = (ok_record.host or "").rstrip(".")
    suffix = fqdn[len(short) + 1 :]
    tried = asked_names(record)
    search: list[str] | None = None
    ndots = None
    info = source_info(result, row)
    resolv = row_facts(info).get("resolv_conf")
    if record.resolver == "system" and resolv is not None:
        search = resolv["search"]
        ndots = next(
            (o.split(":", 1)[1] for o in resolv["options"] if o.startswith("ndots:")), None
        )
    elif tried is not None:
        search = [t[len(short) + 1 :] for t in tried if t.startswith(short + ".")]
    if search is None:
        about = "the search list the resolver used is unknown"
    elif not search:
        about = f"there is no search list, so {short} is asked as is"
    elif suffix in search:
        about = (
            f"{suffix} is in the search list ({' '.join(search)}), yet {short} failed: check "
            "ndots and that this resolver applies the list"
        )
    else:
        about = f"none of the search domains ({' '.join(search)}) is {suffix}"
    asked = f" (asked as {', '.join(tried)})" if tried is not None else ""
    dots = f"; ndots:{ndots}" if ndots else ""
    detail = (
        f"From {row}: {short} {DNS_REASONS.get(record.reason or '', 'fails')} "
        f"({record.errno_name or record.reason}){asked}, while {fqdn} resolves to "
        f"{listing(ok_record.addresses or [])}. A short name only works when the resolver "
        f"appends the right domain from its search list: {about}{dots}."
    )
    return Finding(
        rule="search-list",
        severity=severity([cell], contradiction=True),
        title=f"{short} fails while {fqdn} resolves: the search list does not complete it",
        detail=detail,
        evidence=evidence([cell, ok_cell]),
        next_step=(
            f"Use the full name {fqdn}, or add {suffix} to the search list (resolv.conf `search`;"
            " in Kubernetes a pod's namespace decides it)."
        ),
        facts={
            "source": row,
            "short": short,
            "fqdn": fqdn,
            "search": search,
            "tried": tried,
            "ndots": ndots,
        },
    )
