"""What every cell result must satisfy, checked by the engine on each one as it arrives.

A place reports a cell as a status and the checks behind it. A status that its own checks do
not support (an `ok` tcp cell that never connected to its port, a dns cell about another name)
cannot be a network fact: it is a fault of the engine or the agent, and reporting it would be
the worst answer this tool can give, "reachable" when it is not. The engine turns such a cell
into a source-error naming the broken invariant and the run exits 3.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from .agent.address import hostport, ip_literal
from .agent.plans import Plan
from .results import CellResult, CheckRecord
from .status import FAILED, STATUSES

# The phases a cell of each target kind may record, in order of appearance.
CHECKS_OF_KIND: Mapping[str, frozenset[str]] = {
    "dns": frozenset({"dns"}),
    "tcp": frozenset({"dns", "tcp"}),
    "http": frozenset({"dns", "tcp", "http"}),
    "icmp": frozenset({"dns", "icmp"}),
    "udp": frozenset({"dns", "udp"}),
}
# Statuses that are not answers from the network: they need no check behind them.
NOT_ANSWERS = frozenset(STATUSES) - FAILED - {"ok"}


def broken_invariants(cell: CellResult, plan: Plan | None) -> list[str]:
    """Why `cell` cannot be a true result of `plan` (empty when it can)."""
    if plan is None:
        return []
    checks = cell.checks
    if (
        plan["kind"] == "tcp"
        and len(checks) == 1
        and checks[0].name == "tcp"
        and checks[0].status == cell.status != "ok"
    ):
        # A scan's closed or filtered port, the bulk of a large run, in a few comparisons: one
        # tcp check that failed as the cell did (every_broken_invariant agrees: tests/).
        return []
    return every_broken_invariant(cell, plan)


def every_broken_invariant(cell: CellResult, plan: Plan) -> list[str]:
    """broken_invariants, every rule asked of every cell."""
    kind = plan["kind"]
    allowed = CHECKS_OF_KIND.get(kind)
    problems: list[str] = []
    if allowed is not None:
        foreign = sorted({c.name for c in cell.checks} - allowed)
        if foreign:
            problems.append(f"a {kind} cell carries {'/'.join(foreign)} checks")
    if cell.status in NOT_ANSWERS:
        return problems
    failed = next((c for c in cell.checks if c.status != "ok"), None)
    if cell.checks and (failed.status if failed else "ok") != cell.status:
        said = f"{failed.name} {failed.status}" if failed else "every check ok"
        problems.append(f"the cell says {cell.status} but its checks say {said}")
    if kind == "dns":
        host = plan["host"]
        if not any(c.name == "dns" and _same_name(c.host, host) for c in cell.checks):
            problems.append(f"a dns cell has no dns check for its own name {host}")
    elif kind in ("tcp", "http") and cell.status == "ok":
        problems.extend(_connected_problems(cell, plan))
        if kind == "http" and not any(c.name == "http" and c.status == "ok" for c in cell.checks):
            problems.append("an ok http cell has no ok http check")
    elif kind in ("icmp", "udp") and cell.status == "ok":
        problems.extend(_answered_problems(cell, plan))
    return problems


def _answered_problems(cell: CellResult, plan: Plan) -> list[str]:
    """An ok icmp cell got an echo reply, an ok udp cell a datagram back, from an address of
    its own target (and port): silence is never ok."""
    kind, host, port = plan["kind"], plan["host"], plan.get("port")
    addresses = plan.get("addresses") or ()
    for check in cell.checks:
        if check.name != kind or check.status != "ok":
            continue
        answered = (check.received or 0) > 0 if kind == "icmp" else check.received_bytes is not None
        if not answered or (kind == "udp" and check.port != port):
            continue
        if check.address is not None and _address_of(check, host, addresses, cell.checks):
            return []
    what = "an echo reply from" if kind == "icmp" else "a datagram back from"
    return [f"an ok {kind} cell has no {kind} check with {what} {hostport(host, port)}"]


def _connected_problems(cell: CellResult, plan: Plan) -> list[str]:
    """An ok tcp or http cell connected to an address of its own target and port (or of the
    proxy its client chose)."""
    proxied = cell.proxy is not None and cell.proxy.used
    if proxied:
        host, port = _proxy_endpoint(cell.proxy.url if cell.proxy else None)
        addresses: Sequence[str] = ()
        role = "proxy"
    else:
        host, port = plan["host"], plan.get("port")
        addresses = plan.get("addresses") or ()
        role = "target"
    wanted = f"{'the proxy ' if proxied else ''}{hostport(host, port)}"
    for check in cell.checks:
        if check.name != "tcp" or check.status != "ok" or (check.role or "target") != role:
            continue
        if port is not None and check.port is not None and check.port != port:
            continue
        if _address_of(check, host, addresses, cell.checks):
            return []
    return [f"an ok {plan['kind']} cell has no tcp check that connected to {wanted}"]


def _address_of(
    check: CheckRecord, host: str, addresses: Sequence[str], checks: Sequence[CheckRecord]
) -> bool:
    """Whether the connected address belongs to `host`: an address the plan named, the host
    literal itself, or an address this very cell resolved the host to. A tool that resolves
    inside itself (curl) leaves no dns check: then only the port can be checked."""
    address = check.address
    if address is None:
        return True
    if addresses:
        return any(_same_address(address, a) for a in addresses)
    if ip_literal(host) is not None or _same_name(address, host):
        return _same_address(address, host) or _same_name(address, host)
    lookups = [c for c in checks if c.name == "dns" and _same_name(c.host, host)]
    if not lookups:
        return True
    return any(_same_address(address, a) for c in lookups for a in c.addresses or ())


def _proxy_endpoint(url: str | None) -> tuple[str, int | None]:
    if not url:
        return "", None
    parts = urlsplit(url if "://" in url else "http://" + url)
    try:
        port = parts.port
    except ValueError:
        port = None
    default = {"http": 80, "https": 443}.get(parts.scheme.lower(), 1080)
    return parts.hostname or "", port or default


def _same_name(one: str | None, other: str) -> bool:
    return (one or "").rstrip(".").lower() == other.rstrip(".").lower()


def _same_address(one: str, other: str) -> bool:
    address = ip_literal(one)
    return address is not None and address == ip_literal(other)
