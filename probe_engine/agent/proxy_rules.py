"""Each HTTP client's proxy rules, re-implemented for places where the client itself is absent.

Where requests or httpx is importable, the agent asks the library (agent/clients.py); curl is
asked by running it (the shell source). These rules are the fallback, and what the diagnosis
replays on a source's variables. They are ports of the clients' own code, checked case by case
against the real releases named in RELEASES by tests/test_proxy_differential.py, and differ in
ways that matter:
- urllib honours <scheme>_proxy in either case (lower case wins, an empty lower-case value
  unsets), never all_proxy; NO_PROXY entries are suffixes of the host as written in the URL,
  port included; only a value of exactly "*" exempts everything.
- requests adds all_proxy; an IPv4 host matches NO_PROXY addresses and CIDR ranges, any other
  host matches entries on label boundaries (with or without the port), then urllib's rules.
- httpx turns each NO_PROXY entry into a URL pattern: a name matches itself and its subdomains,
  "*.example.com" matches nothing, an address matches only itself (a CIDR range reads as its
  first address), "host:port" only that port; an entry it cannot parse ("[::1]") fails every
  request; a single "*" entry disables every proxy.
- curl reads http_proxy only in lower case, other <scheme>_proxy in both, then all_proxy;
  names (IPv6 addresses too) match on label boundaries, IPv4 addresses as CIDR ranges; an
  empty variable counts as unset.
Standard library only and Python 3.8 compatible: shipped inside the agent.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import struct
import urllib.request
from typing import Callable, Mapping
from urllib.parse import quote, urlsplit

# urllib's own NO_PROXY test; pure once given the proxies (not in the type stubs).
_bypass: Callable[..., bool] = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]

# The releases these rules were last checked against, case by case.
RELEASES = {"requests": "2.34.2", "httpx": "0.29.0", "curl": "7.88.1"}


class Verdict:
    """One client's decision for one URL: the proxy value it takes and from which variable,
    the NO_PROXY entry that exempted the host, variables it ignores, or why it cannot send."""

    __slots__ = ("error", "ignored", "no_proxy_match", "no_proxy_variable", "proxy", "variable")

    def __init__(self) -> None:
        self.proxy: str | None = None
        self.variable: str | None = None
        self.no_proxy_variable: str | None = None
        self.no_proxy_match: str | None = None
        self.ignored: list[str] = []
        self.error: str | None = None


# --- urllib ---------------------------------------------------------------------------------


def environment_proxies(env: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """urllib.request.getproxies_environment() on a mapping: ({scheme: value}, {scheme:
    variable}). Any *_proxy variable counts (no_proxy becomes "no"); a non-empty lower-case
    variable wins, an empty one unsets; in CGI (REQUEST_METHOD set) HTTP_PROXY is dropped."""
    proxies: dict[str, str] = {}
    names: dict[str, str] = {}
    for name, value in env.items():
        lower = name.lower()
        if value and lower[-6:] == "_proxy":
            proxies[lower[:-6]], names[lower[:-6]] = value, name
    if "REQUEST_METHOD" in env:
        proxies.pop("http", None)
    for name, value in env.items():
        if name[-6:] == "_proxy":
            key = name.lower()[:-6]
            if value:
                proxies[key], names[key] = value, name
            else:
                proxies.pop(key, None)
    return proxies, {k: v for k, v in names.items() if k in proxies}


def _first_entry(entries: list[str], matches: Callable[[str], bool]) -> str | None:
    return next((e for e in entries if e and matches(e)), None)


def _urllib(url: str, env: Mapping[str, str]) -> Verdict:
    verdict = Verdict()
    proxies, names = environment_proxies(env)
    request = urllib.request.Request(url)
    proxy = proxies.get(request.type)
    if not proxy:
        return verdict
    no_proxy = proxies.get("no", "")
    # The library's own function, given the proxies explicitly: the same code urlopen runs.
    if request.host and _bypass(request.host, proxies):
        verdict.no_proxy_variable = names.get("no")
        entries = [e.strip() for e in no_proxy.split(",")]
        if no_proxy == "*":
            verdict.no_proxy_match = "*"
        else:
            verdict.no_proxy_match = _first_entry(
                [e for e in entries if e != "*"],
                lambda e: _bypass(request.host, {"no": e}),
            )
        return verdict
    verdict.proxy, verdict.variable = proxy, names.get(request.type)
    return verdict


# --- requests -------------------------------------------------------------------------------


def _inet_aton(text: str) -> bytes | None:
    try:
        return socket.inet_aton(text)
    except (OSError, ValueError):
        return None


def _requests_cidr(entry: str) -> tuple[int, int] | None:
    """(network, mask) of a NO_PROXY entry requests reads as a CIDR range, else None."""
    if entry.count("/") != 1:
        return None
    address, _, bits = entry.partition("/")
    try:
        mask_bits = int(bits)
    except ValueError:
        return None
    packed = _inet_aton(address)
    if mask_bits < 1 or mask_bits > 32 or packed is None:
        return None
    mask = 0xFFFFFFFF ^ (1 << 32 - mask_bits) - 1
    return int(struct.unpack(">I", packed)[0]) & mask, mask


def _requests_entry_matches(entry: str, hostname: str, port: int | None) -> bool:
    packed = _inet_aton(hostname)
    if packed is not None:
        cidr = _requests_cidr(entry)
        if cidr is not None:
            return int(struct.unpack(">I", packed)[0]) & cidr[1] == cidr[0]
        return hostname == entry
    with_port = f"{hostname}:{port}" if port else hostname
    name = entry.lstrip(".")
    if name in (hostname, with_port):
        return True
    return hostname.endswith("." + name) or with_port.endswith("." + name)


def _url_port(url: str) -> int | None:
    try:
        return urlsplit(url).port
    except ValueError:
        return None


def _requests(url: str, env: Mapping[str, str]) -> Verdict:
    verdict = Verdict()
    parts = urlsplit(url)
    hostname = parts.hostname
    proxies, names = environment_proxies(env)
    if hostname is None:
        return verdict
    no_proxy_variable = "no_proxy" if env.get("no_proxy") else "NO_PROXY"
    no_proxy = env.get("no_proxy") or env.get("NO_PROXY")
    if no_proxy:
        entries = [e for e in no_proxy.replace(" ", "").split(",") if e]
        port = _url_port(url)
        found = _first_entry(entries, lambda e: _requests_entry_matches(e, hostname, port))
        if found is not None:
            verdict.no_proxy_variable, verdict.no_proxy_match = no_proxy_variable, found
            return verdict
    # Then urllib's own rules, on the bare host name.
    urllib_no = proxies.get("no", "")
    if _bypass(hostname, proxies):
        verdict.no_proxy_variable = names.get("no")
        verdict.no_proxy_match = (
            "*"
            if urllib_no == "*"
            else _first_entry(
                [e.strip() for e in urllib_no.split(",") if e.strip() != "*"],
                lambda e: _bypass(hostname, {"no": e}),
            )
        )
        return verdict
    scheme = parts.scheme.lower()
    for key in (scheme + "://" + hostname, scheme, "all://" + hostname, "all"):
        if key in proxies:
            verdict.proxy, verdict.variable = proxies[key], names.get(key)
            break
    if verdict.proxy and verdict.proxy.lower().startswith("socks") and not _importable("socks"):
        verdict.error = "InvalidSchema: Missing dependencies for SOCKS support."
    return verdict


# --- httpx ----------------------------------------------------------------------------------

_AUTHORITY = re.compile(r"(?:(?P<userinfo>.*)@)?(?P<host>(\[.*\]|[^:@]*)):?(?P<port>.*)?")
_DEFAULT_PORTS = {"ftp": 21, "http": 80, "https": 443, "ws": 80, "wss": 443}


class HttpxUrlError(ValueError):
    """What httpx raises for a URL it cannot parse (httpx.InvalidURL)."""


def _httpx_host(host: str) -> str:
    if not host:
        return ""
    if re.match(r"^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise HttpxUrlError(f"Invalid IPv4 address: {host!r}") from None
        return host
    if re.match(r"^\[.*\]$", host):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise HttpxUrlError(f"Invalid IPv6 address: {host!r}") from None
        return host[1:-1]
    if host.isascii():
        return quote(host.lower(), safe="!$&'()*+,;=" + '"`{}%|\\')
    try:
        return host.lower().encode("idna").decode("ascii")
    except UnicodeError:
        raise HttpxUrlError(f"Invalid IDNA hostname: {host!r}") from None


def _httpx_url(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) as httpx.URL parses and normalises them (default port: None)."""
    match = re.match(r"(?:(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*):)?(?://(?P<authority>[^/?#]*))?", url)
    scheme = ((match.group("scheme") if match else "") or "").lower()
    authority = (match.group("authority") if match else "") or ""
    parts = _AUTHORITY.match(authority)
    host = _httpx_host((parts.group("host") if parts else "") or "")
    raw_port = parts.group("port") if parts else None
    port: int | None = None
    if raw_port:
        try:
            port = int(raw_port)
        except ValueError:
            raise HttpxUrlError(f"Invalid port: {raw_port!r}") from None
        if port == _DEFAULT_PORTS.get(scheme):
            port = None
    return scheme, host, port


class _Pattern:
    """httpx's URLPattern: scheme ('' for all), host (a regex; '*' prefixes are wildcards)."""

    def __init__(self, key: str, proxy: str | None, entry: str | None) -> None:
        scheme, host, port = _httpx_url(key)
        self.key, self.proxy, self.entry = key, proxy, entry
        self.scheme = "" if scheme == "all" else scheme
        self.host = "" if host == "*" else host
        self.port = port
        self.regex: re.Pattern[str] | None = None
        if host and host != "*":
            if host.startswith("*."):
                self.regex = re.compile(f"^.+\\.{re.escape(host[2:])}$")
            elif host.startswith("*"):
                self.regex = re.compile(f"^(.+\\.)?{re.escape(host[1:])}$")
            else:
                self.regex = re.compile(f"^{re.escape(host)}$")

    def priority(self) -> tuple[int, int, int]:
        return (0 if self.port is not None else 1, -len(self.host), -len(self.scheme))

    def matches(self, scheme: str, host: str, port: int | None) -> bool:
        if self.scheme and self.scheme != scheme:
            return False
        if self.host and self.regex is not None and not self.regex.match(host):
            return False
        return self.port is None or self.port == port


def _httpx_no_proxy_key(entry: str) -> str:
    def is_address(version: int) -> bool:
        try:
            ipaddress.ip_address(entry.split("/", maxsplit=1)[0])
        except ValueError:
            return False
        return ipaddress.ip_address(entry.split("/", maxsplit=1)[0]).version == version

    if "://" in entry:
        return entry
    if is_address(4):
        return "all://" + entry
    if is_address(6):
        return f"all://[{entry}]"
    if entry.lower() == "localhost":
        return "all://" + entry
    return "all://*" + entry


def _httpx(url: str, env: Mapping[str, str]) -> Verdict:
    verdict = Verdict()
    proxies, names = environment_proxies(env)
    mounts: list[tuple[str, str | None, str | None]] = []  # (key, proxy, entry)
    for scheme in ("http", "https", "all"):
        if proxies.get(scheme):
            value = proxies[scheme]
            mounts.append((scheme + "://", value if "://" in value else "http://" + value, scheme))
    no_proxy = proxies.get("no", "")
    for entry in (e.strip() for e in no_proxy.split(",")):
        if entry == "*":
            # One "*" entry drops every proxy, whatever the other entries say.
            verdict.no_proxy_variable, verdict.no_proxy_match = names.get("no"), "*"
            return verdict
        if entry:
            mounts.append((_httpx_no_proxy_key(entry), None, entry))
    try:
        # Building the client parses every pattern and every proxy: one bad entry fails all.
        patterns: dict[str, _Pattern] = {}
        for key, proxy, source in mounts:
            patterns[key] = _Pattern(key, proxy, source)
        for pattern in patterns.values():
            if pattern.proxy is not None:
                proxy_scheme = _httpx_url(pattern.proxy)[0]
                if proxy_scheme not in ("http", "https", "socks5", "socks5h"):
                    verdict.error = (
                        f"ValueError: Unknown scheme for proxy URL URL({pattern.proxy!r})"
                    )
                    return verdict
                if proxy_scheme.startswith("socks") and not _importable("socksio"):
                    verdict.error = (
                        "ImportError: Using SOCKS proxy, but the 'socksio' package is not "
                        "installed. Make sure to install httpx using `pip install httpx[socks]`."
                    )
                    return verdict
        scheme, host, port = _httpx_url(url)
    except HttpxUrlError as exc:
        verdict.error = f"InvalidURL: {exc}"
        return verdict
    for pattern in sorted(patterns.values(), key=lambda p: p.priority()):
        if pattern.matches(scheme, host, port):
            if pattern.proxy is None:
                verdict.no_proxy_variable, verdict.no_proxy_match = names.get("no"), pattern.entry
            else:
                verdict.proxy = proxies[pattern.entry or ""]
                verdict.variable = names.get(pattern.entry or "")
            break
    return verdict


# --- curl -----------------------------------------------------------------------------------


def _curl_variable(env: Mapping[str, str], scheme: str) -> tuple[str | None, str | None]:
    """(value, variable) curl takes: <scheme>_proxy (http_proxy in lower case only), then
    all_proxy, ALL_PROXY. curl reads a variable set to "" as not set."""
    lower = scheme + "_proxy"
    candidates = [lower] if lower == "http_proxy" else [lower, lower.upper()]
    for variable in [*candidates, "all_proxy", "ALL_PROXY"]:
        if env.get(variable):
            return env[variable], variable
    return None, None


def _curl_cidr4(host: str, entry: str) -> bool:
    check, slash, bits_text = entry.partition("/")
    digits = re.match(r"\d*", bits_text)
    bits = int(digits.group(0)) if slash and digits and digits.group(0) else 0
    if bits > 32 or not _inet_pton4(host) or not _inet_pton4(check):
        return False
    if bits in (0, 32):
        return host == check or socket.inet_aton(host) == socket.inet_aton(check)
    mask = 0xFFFFFFFF ^ ((1 << (32 - bits)) - 1)
    return int(ipaddress.IPv4Address(host)) & mask == int(ipaddress.IPv4Address(check)) & mask


def _curl_entry_matches(entry: str, host: str) -> bool:
    """curl 7.88's check_noproxy for one entry. IPv4 hosts match addresses and CIDR ranges;
    every other host, IPv6 addresses included, matches as a name on label boundaries."""
    if _inet_pton4(host):
        return _curl_cidr4(host, entry)
    name = host[:-1] if host.endswith(".") else host
    token = entry[:-1] if entry.endswith(".") else entry
    if token.startswith("."):
        token = token[1:]
    if len(token) == len(name):
        return token.lower() == name.lower()
    if len(token) < len(name):
        tail = name[len(name) - len(token) :]
        return name[len(name) - len(token) - 1] == "." and tail.lower() == token.lower()
    return False


def _inet_pton4(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET, host)
    except (OSError, ValueError):
        return False
    return True


def _curl(url: str, env: Mapping[str, str]) -> Verdict:
    verdict = Verdict()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.netloc.rpartition("@")[2]
    host = host[1 : host.find("]")] if host.startswith("[") else host.partition(":")[0]
    if scheme == "http" and env.get("HTTP_PROXY"):
        verdict.ignored = ["HTTP_PROXY"]
    variable = "no_proxy" if env.get("no_proxy") else "NO_PROXY"
    no_proxy = env.get(variable)
    if no_proxy and host:
        entries = [e for e in re.split(r"[ \t,]+", no_proxy) if e]
        found = "*" if no_proxy == "*" else None
        if found is None:
            found = _first_entry(entries, lambda e: _curl_entry_matches(e, host))
        if found is not None:
            verdict.no_proxy_variable, verdict.no_proxy_match = variable, found
            return verdict
    verdict.proxy, verdict.variable = _curl_variable(env, scheme)
    return verdict


# --- shared ---------------------------------------------------------------------------------

_IMPORTABLE: dict[str, bool] = {}


def _importable(module: str) -> bool:
    """Whether a module would import here, without importing it (PySocks is `socks`)."""
    if module not in _IMPORTABLE:
        import importlib.util

        try:
            _IMPORTABLE[module] = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            _IMPORTABLE[module] = False
    return _IMPORTABLE[module]


RULES: dict[str, Callable[[str, Mapping[str, str]], Verdict]] = {
    "urllib": _urllib,
    "requests": _requests,
    "httpx": _httpx,
    "curl": _curl,
}
