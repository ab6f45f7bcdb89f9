"""What the place a probe runs in looks like: the facts a diagnosis compares between sources.

Only what is safe to report: proxy variables with passwords hidden, never the environment.
Standard library only and Python 3.8 compatible: shipped inside the agent.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import struct
import sys
from typing import Mapping, TypedDict

from .proxy import proxy_environment


class ResolvConf(TypedDict):
    nameservers: list[str]
    search: list[str]
    options: list[str]


class Route(TypedDict):
    """One IPv4 route, as `ip route` would name it: 10.96.0.0/12 via GATEWAY dev DEVICE."""

    destination: str
    gateway: str
    device: str


class PlaceFacts(TypedDict, total=False):
    """What the agent reports of the place it runs in (its hello); every key optional to
    readers, as other places (a shell prober, a container's API) report less."""

    hostname: str
    python: str
    executable: str
    pid: int
    netns: str | None
    proxy_env: dict[str, str]
    resolv_conf: ResolvConf
    routes: list[Route]
    default_route: bool
    addresses: list[str]


def _read(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


def resolv_conf(text: str | None) -> ResolvConf:
    nameservers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    for line in (text or "").splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if words[0] == "nameserver" and len(words) > 1:
            nameservers.append(words[1])
        elif words[0] in ("search", "domain"):
            search = words[1:]
        elif words[0] == "options":
            options.extend(words[1:])
    return ResolvConf(nameservers=nameservers, search=search, options=options)


def ipv4_routes(text: str | None) -> list[Route]:
    """/proc/net/route as destination/prefix, gateway and device."""
    routes = []
    for line in (text or "").splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        device, destination, gateway, mask = fields[0], fields[1], fields[2], fields[7]

        def address(hex_text: str) -> str:
            return socket.inet_ntoa(struct.pack("<I", int(hex_text, 16)))

        prefix = bin(int(mask, 16)).count("1")
        routes.append(
            Route(
                destination=f"{address(destination)}/{prefix}",
                gateway=address(gateway),
                device=device,
            )
        )
    return routes


def has_default_route(routes: list[Route]) -> bool:
    return any(r["destination"] == "0.0.0.0/0" for r in routes)


def local_addresses(fib_trie: str | None, if_inet6: str | None) -> list[str]:
    """This namespace's own addresses (IPv4 from fib_trie's LOCAL entries, IPv6 from if_inet6)."""
    found: list[str] = []
    previous = ""
    for line in (fib_trie or "").splitlines():
        stripped = line.strip()
        if "/32 host LOCAL" in stripped and previous.startswith("|--"):
            address = previous.split()[1]
            if address not in found:
                found.append(address)
        previous = stripped
    for line in (if_inet6 or "").splitlines():
        fields = line.split()
        if fields:
            raw = fields[0]
            address = socket.inet_ntop(socket.AF_INET6, bytes.fromhex(raw))
            if address not in found:
                found.append(address)
    return found


def gather(env: Mapping[str, str] | None = None) -> PlaceFacts:
    env = os.environ if env is None else env
    netns = None
    with contextlib.suppress(OSError):
        netns = os.readlink("/proc/self/ns/net")
    routes = ipv4_routes(_read("/proc/net/route"))
    return PlaceFacts(
        hostname=socket.gethostname(),
        python=platform.python_version(),
        executable=sys.executable,
        pid=os.getpid(),
        netns=netns,
        proxy_env=proxy_environment(env),
        resolv_conf=resolv_conf(_read("/etc/resolv.conf")),
        routes=routes,
        default_route=has_default_route(routes),
        addresses=local_addresses(_read("/proc/net/fib_trie"), _read("/proc/net/if_inet6")),
    )
