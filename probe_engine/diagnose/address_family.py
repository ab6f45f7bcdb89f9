"""Rule "address-family": a name resolves to ::1 (or any IPv6 address) and an IPv4 one, and on
the same port the IPv6 address fails while the IPv4 one connects: the service listens on IPv4
only, and clients that use the first address only (`socket.connect((name, port))`, Node.js
17+) are refused. Seen within one cell (its dns record and per-address tcp records), or
across one row's cells (a dns column's answer, and tcp columns on those addresses)."""

from __future__ import annotations

from collections.abc import Iterable

from ..agent.address import is_loopback
from ..results import CellResult, CheckRecord, MatrixResult
from .cause import Cause, cause
from .cells import Hop, hops, index

RULE = "address-family"


def _answers(
    lookups: Iterable[tuple[CellResult, CheckRecord]],
) -> list[tuple[CellResult, CheckRecord]]:
    """Successful lookups (not of a proxy: the index keeps no other) with their cells."""
    return [(c, record) for c, record in lookups if record.status == "ok" and record.addresses]


def address_family(result: MatrixResult) -> list[Cause]:
    found = []
    cells_of = index(result)
    for row, cells in cells_of.rows.items():
        if len(cells_of.families[row] & {"ipv4", "ipv6"}) < 2:
            continue  # one family in the whole row (a scan of one address): nothing to compare
        answers = _answers(cells_of.lookups.get(row, []))
        tried: dict[int | None, list[tuple[CellResult, Hop]]] = {}
        for cell in cells:
            for hop in hops(cell):
                if hop.family in ("ipv4", "ipv6"):
                    tried.setdefault(hop.port, []).append((cell, hop))
        for port, entries in tried.items():
            if len({h.family for _, h in entries}) < 2:
                continue  # one family on this port: nothing to compare (a scan's ports)
            for bad_family, good_family in (("ipv6", "ipv4"), ("ipv4", "ipv6")):
                bad = [(c, h) for c, h in entries if h.family == bad_family and h.status != "ok"]
                good = [(c, h) for c, h in entries if h.family == good_family and h.status == "ok"]
                if not bad or not good:
                    continue
                seen = _cause(row, port, bad, good, answers)
                if seen is not None:
                    found.append(seen)
    return found


def _cause(
    row: str,
    port: int | None,
    bad: list[tuple[CellResult, Hop]],
    good: list[tuple[CellResult, Hop]],
    answers: list[tuple[CellResult, CheckRecord]],
) -> Cause | None:
    """`bad` hops of one family fail where `good` ones of the other connect on one port."""
    good_family = good[0][1].family
    bad_addresses = {h.address for _, h in bad}
    good_addresses = {h.address for _, h in good}
    link = next(
        (
            (cell, record)
            for cell, record in answers
            if bad_addresses & set(record.addresses or [])
            and good_addresses & set(record.addresses or [])
        ),
        None,
    )
    loopback = all(is_loopback(a) for a in bad_addresses | good_addresses)
    if link is None and not loopback:
        return None  # unrelated addresses: two hosts, not two families of one
    name = (link[1].host or link[0].target) if link is not None else "localhost"
    return cause(
        RULE,
        name,
        [c for c, _ in bad],
        [good[0][0]] + ([link[0]] if link is not None else []),
        facts={
            "source": row,
            "port": port,
            "failing": sorted(bad_addresses),
            "working": sorted(good_addresses),
            "name": name,
        },
        variant="resolved" if link is not None else "loopback",
        bad=bad[0],
        good=good[0],
        link=link,
        only="IPv4" if good_family == "ipv4" else "IPv6",
        bad_addresses=bad_addresses,
        good_addresses=good_addresses,
    )
