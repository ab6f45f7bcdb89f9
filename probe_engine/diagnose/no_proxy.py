"""NO_PROXY, client by client: why it did not exempt a host, and which entry would. Each
client's rules (probe_engine.agent.proxy_rules, the rules the agent falls back on and that
tests/test_proxy_differential.py checks against the real requests, httpx, urllib and curl)
are replayed on the row's reported variables: advice is checked, never assumed."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from ..agent.address import family_of, is_loopback
from ..agent.proxy import decide
from ..results import CellResult, MatrixResult, SourceInfo, TargetInfo
from .cells import target_info
from .facts import row_facts
from .grammar import listing

COMPARED_CLIENTS = ("requests", "httpx", "curl", "urllib")
# What a client that does not read CIDR ranges makes of one (proxy_rules.py's findings).
READS_CIDR_AS = {
    "httpx": "it reads {cidr} as the single address {address}",
    "urllib": "it reads {cidr} as a suffix of the host name, which no address has",
}
# A proxy every client honours for either scheme (curl reads only lower-case http_proxy).
STAND_IN = {"http_proxy": "http://proxy.invalid:3128", "https_proxy": "http://proxy.invalid:3128"}


def _variable(env: dict[str, str]) -> str | None:
    return next((v for v in ("no_proxy", "NO_PROXY") if env.get(v)), None)


def _exempts(url: str, no_proxy: str, client: str) -> bool:
    """Whether `client` goes direct to `url` with NO_PROXY=`no_proxy` and a proxy set."""
    record, _proxy = decide(url, {**STAND_IN, "NO_PROXY": no_proxy, "no_proxy": no_proxy}, client)
    return not record.get("used") and not record.get("error")


def no_proxy_note(
    cell: CellResult, info: SourceInfo | None, target: TargetInfo | None
) -> tuple[str, dict[str, Any]]:
    """Why NO_PROXY did not exempt the host for this cell's client, replaying each client's
    rules on the source's variables: ('' , {}) when the source did not report them, or the
    column is no URL."""
    env = row_facts(info).get("proxy_env")
    proxy = cell.proxy
    if env is None or proxy is None or target is None or not target.url or not target.host:
        return "", {}
    host, url = target.host, target.url
    variable = _variable(env)
    if variable is None:
        return f"NO_PROXY is not set, so nothing exempts {host}", {"no_proxy": None}
    verdicts = {c: _exempts(url, env[variable], c) for c in COMPARED_CLIENTS}
    exempting = [c for c, v in verdicts.items() if v]
    text = f"{variable}={env[variable]} is set but does not exempt {host} for {proxy.client}"
    cidrs = [e.strip() for e in env[variable].split(",") if "/" in e]
    if cidrs and not verdicts.get(proxy.client, False) and family_of(host) == "ipv4":
        text += (
            f" ({proxy.client} does not read CIDR ranges: "
            + READS_CIDR_AS.get(proxy.client, "it skips {cidr}").format(
                cidr=cidrs[0], address=cidrs[0].split("/")[0]
            )
            + ")"
        )
    if exempting:
        text += f"; {listing(exempting)} would exempt it"
    return text, {
        "no_proxy": env[variable],
        "exempt_for": exempting,
        "not_exempt_for": [c for c in verdicts if c not in exempting],
    }


@dataclass(frozen=True)
class NoProxyFix:
    """The NO_PROXY value that exempts every failing host for this client, as its own rules
    decide it; and which spellings (CIDR, a suffix) it accepts."""

    client: str
    variable: str
    value: str | None  # None: no NO_PROXY entry helps (e.g. a host the client never exempts)
    added: list[str]
    kind: str  # the row's source kind: where the variable is set
    cidr: str | None = None  # a range covering the hosts, when the client reads CIDR
    cidr_clients: list[str] = field(default_factory=list)  # who reads that range
    current: str | None = None
    suffix: str | None = None  # a domain suffix covering the names, when the client reads it
    suffix_clients: list[str] = field(default_factory=list)

    def facts(self) -> dict[str, Any]:
        return {
            "client": self.client,
            "variable": self.variable,
            "value": self.value,
            "add": self.added,
            "cidr": self.cidr,
            "cidr_accepted_by": self.cidr_clients,
            "suffix": self.suffix,
            "suffix_accepted_by": self.suffix_clients,
        }


def _cidr(hosts: list[str]) -> str | None:
    """The range a user would write for these IPv4 hosts: 127.0.0.0/8 for loopback, else
    the smallest of /24, /16, /8 holding them all."""
    addresses = [ipaddress.IPv4Address(h) for h in hosts if family_of(h) == "ipv4"]
    if not addresses or len(addresses) != len(hosts):
        return None
    if all(is_loopback(h) for h in hosts):
        return "127.0.0.0/8"
    for bits in (24, 16, 8):
        network = ipaddress.IPv4Network(f"{addresses[0]}/{bits}", strict=False)
        if all(a in network for a in addresses):
            return str(network)
    return None


def _suffix(hosts: list[str]) -> str | None:
    """'.svc.cluster.local' for names sharing a parent domain (never for addresses)."""
    if not hosts or any(family_of(h) for h in hosts) or any(h.count(".") < 2 for h in hosts):
        return None
    parents = {h.split(".", 1)[1] for h in hosts}
    return "." + parents.pop() if len(parents) == 1 else None


def _accepting(urls: list[str], entry: str | None) -> list[str]:
    if entry is None:
        return []
    return [c for c in COMPARED_CLIENTS if all(_exempts(u, entry, c) for u in urls)]


def no_proxy_fix(
    result: MatrixResult, cells: list[CellResult], info: SourceInfo | None
) -> NoProxyFix:
    """The NO_PROXY that exempts every host these proxied cells tried, checked with the
    client's own rules: the current value plus the exact hosts (what every client reads)."""
    proxy = cells[0].proxy
    client = proxy.client if proxy else "requests"
    env = row_facts(info).get("proxy_env") or {}
    variable = _variable(env) or "NO_PROXY"
    current = env.get(variable)
    columns = [t for t in (target_info(result, c.target) for c in cells) if t and t.url and t.host]
    urls = list(dict.fromkeys(str(t.url) for t in columns))
    hosts = list(dict.fromkeys(str(t.host) for t in columns))
    entries = [e.strip() for e in (current or "").split(",") if e.strip()]
    added = [h for h in hosts if h not in entries]
    value = ",".join(entries + added) or None
    if value is not None and not all(_exempts(u, value, client) for u in urls):
        value = None
    cidr, suffix = _cidr(hosts), _suffix(hosts)
    return NoProxyFix(
        client,
        variable,
        value,
        added,
        info.kind if info else "",
        cidr,
        _accepting(urls, cidr),
        current,
        suffix,
        _accepting(urls, suffix),
    )
