"""What differs between two sources, as far as the engine sees: where each runs (network
namespace, networks, addresses, routes, default route, resolv.conf, proxy variables) and
what each did for the same targets (addresses resolved and tried, family, port, proxy, tool).

Used by the rules that compare a failing source with a working one. Facts a source kind does
not report are skipped, never guessed: an absent fact is not a difference.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..agent.address import family_of, ip_literal, is_loopback
from ..facts import RowFacts
from ..results import CellResult, SourceInfo
from .cells import hops
from .facts import network_names, route_for, row_facts
from .grammar import listing
from .phrasing import client_words, describe_route, possessive, rules_words


@dataclass(frozen=True)
class Difference:
    """One difference, with how likely it is the cause (lower `rank` comes first)."""

    rank: int
    text: str
    next_step: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)


def compare(
    bad: SourceInfo | None,
    good: SourceInfo | None,
    pairs: Sequence[tuple[CellResult, CellResult]],
    bad_name: str,
    good_name: str,
) -> list[Difference]:
    """Differences between a failing row and a working one over (failed, ok) cell pairs of the
    same targets, most likely cause first."""
    bf, gf = row_facts(bad), row_facts(good)
    found: list[Difference] = []
    looped = _loopback(bf, gf, pairs, bad_name, good_name)
    found += looped or _namespaces(bf, gf, bad_name, good_name, bad.kind if bad else None)
    found += _routes(bf, gf, pairs, bad_name, good_name)
    found += _networks(bf, gf, _failed_addresses(pairs), bad_name, good_name)
    found += _resolution(bf, gf, pairs, bad_name, good_name)
    found += _families_and_ports(pairs, bad_name, good_name)
    found += _proxies(pairs, bad_name, good_name)
    found += _tools(pairs, bad_name, good_name)
    found += _source_addresses(pairs, good_name)
    return sorted(found, key=lambda d: d.rank)


def _failed_addresses(pairs: Sequence[tuple[CellResult, CellResult]]) -> list[str]:
    seen: list[str] = []
    for failed, _ok in pairs:
        for hop in hops(failed):
            if hop.status != "ok" and hop.address not in seen:
                seen.append(hop.address)
    return seen


def _netns(facts: RowFacts) -> str | None:
    return facts.get("netns") or None


def _same_place(bf: RowFacts, gf: RowFacts) -> bool:
    """One network namespace: equal inodes on one machine (inodes repeat across machines)."""
    b, g = _netns(bf), _netns(gf)
    hb, hg = bf.get("hostname"), gf.get("hostname")
    return b == g and (hb is None or hg is None or hb == hg)


def _namespaces(
    bf: RowFacts, gf: RowFacts, bad_name: str, good_name: str, bad_kind: str | None
) -> list[Difference]:
    b, g = _netns(bf), _netns(gf)
    if not b or not g or _same_place(bf, gf):
        return []
    # Only a container can be moved onto another network with `docker network connect`; a
    # node, a pod or a namespace needs its routes and firewall looked at instead.
    step = (
        f"Run {bad_name} on the network {good_name} is on (e.g. `docker network connect`)."
        if bad_kind == "docker"
        else f"Compare the routes and firewall rules of {bad_name}'s network namespace with "
        f"{good_name}'s, or probe from where {good_name} runs."
    )
    return [
        Difference(
            30,
            f"{bad_name} and {good_name} run in different network namespaces ({b} vs {g}): "
            "they see different interfaces, addresses and routes",
            step,
            {"netns": {bad_name: b, good_name: g}},
        )
    ]


def _loopback(
    bf: RowFacts,
    gf: RowFacts,
    pairs: Sequence[tuple[CellResult, CellResult]],
    bad_name: str,
    good_name: str,
) -> list[Difference]:
    b, g = _netns(bf), _netns(gf)
    looped = [a for a in _failed_addresses(pairs) if is_loopback(a)]
    if not looped or not b or not g or _same_place(bf, gf):
        return []
    return [
        Difference(
            5,
            f"{listing(looped)} is the loopback of each network namespace: {bad_name} ({b}) "
            f"reaches its own loopback, not that of {good_name} ({g}), so a service listening "
            f"on {good_name}'s loopback is invisible to {bad_name}",
            f"Make the service listen on an address {bad_name} can reach (not the loopback), "
            "or run both in one network namespace.",
            {"loopback": looped, "netns": {bad_name: b, good_name: g}},
        )
    ]


def _is_local(address: str, facts: RowFacts) -> bool:
    return is_loopback(address) or address in facts.get("addresses", [])


def _routes(
    bf: RowFacts,
    gf: RowFacts,
    pairs: Sequence[tuple[CellResult, CellResult]],
    bad_name: str,
    good_name: str,
) -> list[Difference]:
    if "routes" not in bf:
        return []
    unrouted: list[str] = []
    other: list[str] = []
    good_routes: dict[str, str] = {}
    facts: dict[str, Any] = {}
    nameservers = _silent_nameservers(bf, pairs)
    for address in _failed_addresses(pairs) + nameservers:
        if family_of(address) != "ipv4" or _is_local(address, bf):
            continue
        mine = route_for(address, bf.get("routes"))
        theirs = route_for(address, gf.get("routes")) if "routes" in gf else None
        if theirs is not None:
            good_routes[address] = describe_route(theirs)
        if mine is None:
            unrouted.append(address)
        elif theirs is not None and mine != theirs:
            other.append(
                f"{bad_name} routes {address} by {describe_route(mine)} where {good_name} "
                f"uses {describe_route(theirs)}"
            )
        facts[address] = {
            bad_name: describe_route(mine) if mine else None,
            good_name: good_routes.get(address),
        }
    found = []
    if unrouted:
        default = bf.get("default_route")
        named = [f"its nameserver {a}" if a in nameservers else a for a in unrouted]
        text = f"{bad_name} has no route to {listing(named, 6)}" + (
            " (and no default route)" if default is False else ""
        )
        known = [f"{a} ({good_routes[a]})" for a in unrouted if a in good_routes]
        if known:
            text += f"; {good_name} has routes for {'it' if len(unrouted) == 1 else 'them'}: "
            text += listing(known, 6)
        elif _is_local(unrouted[0], gf):
            text += f"; for {good_name} it is a local address"
        found.append(
            Difference(
                10,
                text,
                f"Give {bad_name} a route to {unrouted[0]} (`ip route get {unrouted[0]}` there "
                f"shows the gap), or attach it to the network {good_name} is on.",
                {"routes": facts},
            )
        )
    if other:
        found.append(Difference(20, "; ".join(other), None, {"routes": facts}))
    return found


def _silent_nameservers(
    facts: RowFacts, pairs: Sequence[tuple[CellResult, CellResult]]
) -> list[str]:
    """The source's nameservers, when one of its lookups got no answer (EAI_AGAIN): a resolver
    it has no route to is the usual reason."""
    silent = any(
        r.name == "dns" and r.reason == "no-answer" and r.resolver in (None, "system")
        for failed, _ok in pairs
        for r in failed.checks
    )
    resolv = facts.get("resolv_conf")
    if not silent or resolv is None:
        return []
    return [n for n in resolv["nameservers"] if family_of(n) == "ipv4"]


def _networks(
    bf: RowFacts,
    gf: RowFacts,
    failed: list[str],
    bad_name: str,
    good_name: str,
) -> list[Difference]:
    """Container networks (a `networks` fact, as container sources report it), then the
    sources' own addresses: the working one on the failed address's network, the other not."""
    found = []
    b, g = network_names(bf), network_names(gf)
    if b is not None and g is not None and g - b:
        missing = sorted(g - b)
        found.append(
            Difference(
                8,
                f"{bad_name} is not attached to network {listing(missing)}, which {good_name} "
                f"is on ({bad_name}: {listing(sorted(b)) or 'none'})",
                f"Attach {bad_name} to {missing[0]} (`docker network connect {missing[0]} ...`).",
                {"networks": {bad_name: sorted(b), good_name: sorted(g)}},
            )
        )
    ba, ga = _own_addresses(bf), _own_addresses(gf)
    if ba is not None and ga is not None and not found:
        targets = [ipaddress.ip_address(a) for a in failed if family_of(a) == "ipv4"]
        subnets = [s for s in _subnets(gf, ga) if any(t in s for t in targets)]
        lacking = [s for s in subnets if not any(a in s for a in ba)]
        if lacking:
            shown = [str(a) for s in lacking for a in ga if a in s]
            found.append(
                Difference(
                    25,
                    f"{good_name} has an address on {listing([str(s) for s in lacking])} "
                    f"({listing(shown)}); {bad_name} has none there",
                    None,
                    {
                        "addresses": {
                            bad_name: [str(a) for a in ba],
                            good_name: [str(a) for a in ga],
                        }
                    },
                )
            )
    return found


def _own_addresses(facts: RowFacts) -> list[ipaddress.IPv4Address] | None:
    raw = facts.get("addresses")
    if raw is None:
        return None
    found = (ip_literal(item) for item in raw)
    return [a for a in found if isinstance(a, ipaddress.IPv4Address)]


def _subnets(facts: RowFacts, own: list[ipaddress.IPv4Address]) -> list[ipaddress.IPv4Network]:
    """Directly connected IPv4 networks (routes without a gateway) holding one of `own`."""
    nets = []
    for route in facts.get("routes", []):
        if route["gateway"] != "0.0.0.0":
            continue
        try:
            net = ipaddress.ip_network(route["destination"], strict=False)
        except ValueError:
            continue
        if (
            isinstance(net, ipaddress.IPv4Network)
            and net.prefixlen > 0
            and any(a in net for a in own)
            and net not in nets
        ):
            nets.append(net)
    return nets


def _dns_records(cell: CellResult) -> list[Any]:
    return [r for r in cell.checks if r.name == "dns" and r.role != "proxy"]


def _resolution(
    bf: RowFacts,
    gf: RowFacts,
    pairs: Sequence[tuple[CellResult, CellResult]],
    bad_name: str,
    good_name: str,
) -> list[Difference]:
    found = []
    dns_failed = False
    for failed, ok in pairs:
        mine, theirs = _dns_records(failed), _dns_records(ok)
        if not mine or not theirs:
            continue
        m, t = mine[-1], theirs[-1]
        if m.status != "ok":
            dns_failed = True
        if m.status == "ok" and t.status == "ok" and m.addresses != theirs[-1].addresses:
            found.append(
                Difference(
                    15,
                    f"{m.host or failed.target} resolves differently: {bad_name} got "
                    f"{listing(m.addresses or []) or 'nothing'} (from {m.resolver}), "
                    f"{good_name} got {listing(t.addresses or []) or 'nothing'} "
                    f"(from {t.resolver})",
                    f"Compare the resolvers of {bad_name} and {good_name} (/etc/resolv.conf, "
                    "/etc/hosts); one of them has a stale or different record.",
                    {"resolved": {bad_name: m.addresses, good_name: t.addresses}},
                )
            )
    if dns_failed:
        br, gr = bf.get("resolv_conf"), gf.get("resolv_conf")
        if br is not None and gr is not None and br != gr:
            parts = [
                f"{key} {' '.join(mine) or '(none)'} vs {' '.join(theirs) or '(none)'}"
                for key, mine, theirs in (
                    ("nameservers", br["nameservers"], gr["nameservers"]),
                    ("search", br["search"], gr["search"]),
                    ("options", br["options"], gr["options"]),
                )
                if mine != theirs
            ]
            found.append(
                Difference(
                    9,
                    f"their resolv.conf differ ({bad_name} vs {good_name}): {'; '.join(parts)}",
                    f"Give {bad_name} the nameservers and search list {good_name} uses.",
                    {"resolv_conf": {bad_name: br, good_name: gr}},
                )
            )
    return found[:3]


def _families_and_ports(
    pairs: Sequence[tuple[CellResult, CellResult]], bad_name: str, good_name: str
) -> list[Difference]:
    found = []
    for failed, ok in pairs:
        fh, oh = hops(failed), [h for h in hops(ok) if h.status == "ok"]
        if not fh or not oh:
            continue
        f_fam = {h.family for h in fh if h.family}
        o_fam = {h.family for h in oh if h.family}
        if f_fam and o_fam and not f_fam & o_fam:
            found.append(
                Difference(
                    14,
                    f"for {failed.target}, {bad_name} tried {listing(sorted(f_fam))} "
                    f"({listing([h.address for h in fh])}) while {good_name} connected over "
                    f"{listing(sorted(o_fam))} ({listing([h.address for h in oh])})",
                    "Make the service listen on both address families, or pin the family.",
                    {"families": {bad_name: sorted(f_fam), good_name: sorted(o_fam)}},
                )
            )
        f_ports = {h.port for h in fh if h.port}
        o_ports = {h.port for h in oh if h.port}
        if f_ports and o_ports and f_ports != o_ports:
            found.append(
                Difference(
                    12,
                    f"for {failed.target}, {bad_name} connects to port "
                    f"{listing([str(p) for p in sorted(f_ports)])} but {good_name} to "
                    f"{listing([str(p) for p in sorted(o_ports)])}",
                    f"Use the port that works for {good_name}.",
                    {"ports": {bad_name: sorted(f_ports), good_name: sorted(o_ports)}},
                )
            )
    return found[:2]


def _proxies(
    pairs: Sequence[tuple[CellResult, CellResult]], bad_name: str, good_name: str
) -> list[Difference]:
    for failed, ok in pairs:
        fp, op = failed.proxy, ok.proxy
        if op is not None and op.used and not (fp is not None and fp.used):
            return [
                Difference(
                    22,
                    f"{good_name} reaches {ok.target} through its proxy {op.url} (from "
                    f"{op.variable}), {bad_name} connects directly",
                    f"Let {bad_name} use the same proxy, or give it the direct route the proxy "
                    "has.",
                    {"proxy": {good_name: op.model_dump(exclude_none=True)}},
                )
            ]
    return []


def _tools(
    pairs: Sequence[tuple[CellResult, CellResult]], bad_name: str, good_name: str
) -> list[Difference]:
    failed, ok = pairs[0]

    def tool(cell: CellResult) -> str:
        proxy = cell.proxy
        client = proxy.client if proxy else None
        base = cell.tool or "agent"
        if base != "agent":
            return base
        sender = next((c.client for c in cell.checks if c.name == "http" and c.client), None)
        said = client_words(sender) if sender else None
        if client == "none":
            return f"the Python agent ({said or 'its client'}, proxy variables ignored)"
        if said:
            return f"the Python agent ({said})"
        if proxy is not None and proxy.rules:  # no request sent: who decided on the proxy
            return f"the Python agent ({rules_words(proxy.rules)})"
        return (
            f"the Python agent ({possessive(client)} proxy rules)" if client else "the Python agent"
        )

    if tool(failed) == tool(ok):
        return []
    return [
        Difference(
            40,
            f"{bad_name} probes with {tool(failed)}, {good_name} with {tool(ok)}",
            None,
            {"tools": {bad_name: failed.tool, good_name: ok.tool}},
        )
    ]


def _source_addresses(
    pairs: Sequence[tuple[CellResult, CellResult]], good_name: str
) -> list[Difference]:
    used = []
    for _failed, ok in pairs:
        for hop in hops(ok):
            # loopback to loopback says nothing about the path
            if hop.status == "ok" and hop.source_address and not is_loopback(hop.address):
                entry = f"{hop.source_address} to {hop.address}"
                if entry not in used:
                    used.append(entry)
    if not used:
        return []
    return [
        Difference(
            60,
            f"{good_name} connected from {listing(used, 2)}",
            None,
            {"source_address": {good_name: used}},
        )
    ]
