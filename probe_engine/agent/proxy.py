"""Which proxy an HTTP client would use for a URL, given an environment, client by client.

The clients disagree, and that disagreement is a classic cause of "curl works, Python does not":
- curl ignores upper-case HTTP_PROXY (httpoxy hardening) but honours http_proxy, HTTPS_PROXY,
  https_proxy, ALL_PROXY and all_proxy; NO_PROXY entries match domain suffixes and CIDR ranges.
- requests (and urllib) honour both cases, lower case first; requests matches NO_PROXY IP
  entries as CIDR ranges and host entries as plain suffixes.
- httpx honours both cases too, but a NO_PROXY entry with an address only matches that exact
  address: CIDR ranges are not understood.
Standard library only and Python 3.8 compatible: shipped inside the agent.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Mapping
from urllib.parse import urlsplit, urlunsplit

from .address import ip_literal

# A password may itself hold "@" (clients split at the last one): it runs to the last "@"
# before the host. A user part without a password is often a token: hidden whole.
_PASSWORD = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):[^/\s]*@(?=[^@/\s]*(?:[/\s]|$))"
)
_TOKEN = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^:/@\s*]+@(?=[^@/\s]*(?:[/\s]|$))")


# Query parameters that carry secrets by convention (?token=..., &api_key=..., &sig=...).
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&](?:[a-z0-9_.-]*token|api[_-]?key|apikey|key|password|passwd|pwd|secret|"
    r"client[_-]?secret|sig|signature|auth|authorization|credential|session)=)[^&#\s]+",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """Hide credentials in URLs anywhere in a text: http://u:secret@h -> http://u:***@h,
    http://token@h -> http://***@h, ?access_token=abc -> ?access_token=***."""
    text = _PASSWORD.sub(lambda m: m.group("scheme") + m.group("user") + ":***@", text)
    text = _TOKEN.sub(lambda m: m.group("scheme") + "***@", text)
    return _SECRET_QUERY.sub(lambda m: m.group("key") + "***", text)


def _lookup(env: Mapping[str, str], name: str, client: str) -> tuple[str | None, str | None]:
    """(value, variable) of a proxy variable, honouring the client's case rules."""
    lower, upper = name.lower(), name.upper()
    candidates = [lower] if client == "curl" and lower == "http_proxy" else [lower, upper]
    for variable in candidates:
        value = env.get(variable)
        if value:
            return value, variable
    return None, None


def _no_proxy_entries(env: Mapping[str, str], client: str) -> tuple[list[str], str | None]:
    value, variable = _lookup(env, "no_proxy", client)
    if not value:
        return [], None
    return [e.strip() for e in value.split(",") if e.strip()], variable


def _matches(entry: str, host: str, port: int | None, client: str) -> bool:
    """Does one NO_PROXY entry exempt host[:port] for this client?"""
    if entry == "*":
        return True
    host = host.lower()
    entry_l = entry.lower()
    ip = ip_literal(host)
    if client == "httpx":
        if "://" in entry_l:
            parts = urlsplit(entry_l)
            return parts.hostname == host and (parts.port is None or parts.port == port)
        entry_ip = ip_literal(entry_l.split("/")[0])
        if entry_ip is not None:
            # httpx turns "10.0.0.0/8" into the pattern all://10.0.0.0: only that address.
            return ip is not None and ip == entry_ip
        if entry_l.startswith("."):
            # "*.example.com": subdomains only.
            return host.endswith(entry_l) and len(host) > len(entry_l)
        return host == entry_l or host.endswith("." + entry_l)
    if ip is not None:
        if "/" in entry_l and client in ("requests", "curl"):
            try:
                return ip in ipaddress.ip_network(entry_l, strict=False)
            except ValueError:
                return False
        entry_host = entry_l.rsplit(":", 1)[0] if entry_l.count(":") == 1 else entry_l
        return ip_literal(entry_host) == ip
    if client == "requests":
        with_port = f"{host}:{port}" if port else host
        return host.endswith(entry_l) or with_port.endswith(entry_l)
    # curl and urllib: the entry (leading dot optional) is the host or one of its parent domains.
    name = entry_l.lstrip(".")
    if client == "urllib" and ":" in name:
        name, _, entry_port = name.partition(":")
        if port is not None and entry_port and str(port) != entry_port:
            return False
    return host == name or host.endswith("." + name)


def decide(url: str, env: Mapping[str, str], client: str) -> tuple[dict[str, object], str | None]:
    """The proxy `client` would use for `url` in `env`: (JSON-ready record, proxy URL or None).

    The record holds: client, used (bool), url (redacted) and variable when used,
    no_proxy_variable and no_proxy_match when a NO_PROXY entry exempted the host, ignored
    (variables set but not honoured by this client, e.g. HTTP_PROXY for curl). The returned
    URL keeps its credentials, for the request only.
    """
    record: dict[str, object] = {"client": client, "used": False}
    if client == "none":
        return record, None
    parts = urlsplit(url)
    scheme = (parts.scheme or "http").lower()
    host = parts.hostname or ""
    port = parts.port or (443 if scheme == "https" else 80)
    ignored = [
        name for name in ("HTTP_PROXY",) if client == "curl" and env.get(name) and scheme == "http"
    ]
    if ignored:
        record["ignored"] = ignored
    if client in ("requests", "urllib", "httpx") and env.get("REQUEST_METHOD"):
        # CGI environments: Python drops HTTP_PROXY (httpoxy), as curl always does.
        env = {k: v for k, v in env.items() if k != "HTTP_PROXY"}
    value, variable = _lookup(env, scheme + "_proxy", client)
    if value is None:
        value, variable = _lookup(env, "all_proxy", client)
    if value is None:
        return record, None
    entries, no_proxy_variable = _no_proxy_entries(env, client)
    for entry in entries:
        if _matches(entry, host, port, client):
            record.update(no_proxy_variable=no_proxy_variable, no_proxy_match=entry)
            return record, None
    if "://" not in value:
        value = "http://" + value
    record.update(used=True, url=redact(value), variable=variable)
    return record, value


def proxy_address(proxy_url: str) -> tuple[str, int, str]:
    """(host, port, scheme) of a proxy URL; curl and Python default the port to 1080/80."""
    parts = urlsplit(proxy_url if "://" in proxy_url else "http://" + proxy_url)
    scheme = parts.scheme.lower()
    default = {"http": 80, "https": 443}.get(scheme, 1080)
    return parts.hostname or "", parts.port or default, scheme


def strip_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


PROXY_VARIABLES = (
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
)


def proxy_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The proxy variables set in env, passwords redacted: safe to report."""
    return {name: redact(env[name]) for name in PROXY_VARIABLES if env.get(name)}
