"""Addresses in words and back: is this text an IP literal, of which family, and host:port.

Standard library only and Python 3.8 compatible: shipped inside the agent, and the one place
the engine, the reports and the diagnosis take these from.
"""

from __future__ import annotations

import ipaddress
from typing import Union

# A runtime alias: Python 3.8 cannot evaluate `A | B`.
IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


def ip_literal(text: str | None) -> IPAddress | None:
    """The address when `text` is an IP literal ('10.0.0.1', '::1', '[::1]'), else None."""
    try:
        return ipaddress.ip_address((text or "").strip("[]"))
    except ValueError:
        return None


def family_of(text: str | None) -> str | None:
    """'ipv4' / 'ipv6' for an address literal, None for a name."""
    address = ip_literal(text)
    if address is None:
        return None
    return "ipv6" if address.version == 6 else "ipv4"


def is_loopback(text: str | None) -> bool:
    """127.0.0.0/8 or ::1."""
    address = ip_literal(text)
    return address is not None and address.is_loopback


def hostport(host: str, port: int | None) -> str:
    """'10.0.0.1:80', '[::1]:80' (an IPv6 address is bracketed before its port), or the host
    alone when there is no port."""
    if not port:
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
