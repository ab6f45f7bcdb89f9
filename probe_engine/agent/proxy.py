"""Proxy records for cells: which proxy a client takes, told the same way whoever decided.

The decision itself comes from the client where it can be asked (agent/clients.py), else from
its re-implemented rules (agent/proxy_rules.py, named "... rules (emulated)" on every cell).
Also: hiding credentials in anything reported. Standard library only and Python 3.8
compatible: shipped inside the agent.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:  # the rules import urllib.request: only an http cell pays for them
    from .proxy_rules import Verdict
from .records import ProxyFacts


@lru_cache(maxsize=None)
def _patterns() -> tuple[re.Pattern[str], ...]:
    """redact()'s patterns, compiled on first use (~1.5 ms: every agent start paid it, with or
    without a proxy variable to redact)."""
    return (
        # A password may itself hold "@" (clients split at the last one): it runs to the last
        # "@" before the host. A user part without a password is often a token: hidden whole.
        re.compile(
            r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):[^/\s]*@"
            r"(?=[^@/\s]*(?:[/\s]|$))"
        ),
        re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^:/@\s*]+@(?=[^@/\s]*(?:[/\s]|$))"),
        # Query parameters that carry secrets by convention (?token=..., &api_key=..., &sig=...).
        re.compile(
            r"(?P<key>[?&](?:[a-z0-9_.-]*token|api[_-]?key|apikey|key|password|passwd|pwd|secret|"
            r"client[_-]?secret|sig|signature|auth|authorization|credential|session)=)[^&#\s]+",
            re.IGNORECASE,
        ),
        # Credentials a server's log may print as it received them: an Authorization header's
        # value, or a bare "Bearer <token>" / "Basic <base64>".
        re.compile(
            r"(?P<key>\b(?:proxy-)?authorization\s*[:=]\s*(?:[A-Za-z][A-Za-z0-9-]*\s+)?)"
            r"[^\s\"',;]+",
            re.IGNORECASE,
        ),
        re.compile(
            r"(?P<key>\b(?i:bearer)\s+)[A-Za-z0-9._~+/=-]{8,}"  # a token
            # base64 (a digit, +, /, = or a capital after its first character), not an English
            # word
            r"|(?P<basic>\b(?i:basic)\s+)(?=.[A-Za-z0-9+/]*[0-9+/=A-Z])[A-Za-z0-9+/]{8,}=*"
        ),
    )


def redact(text: str) -> str:
    """Hide credentials in URLs anywhere in a text: http://u:secret@h -> http://u:***@h,
    http://token@h -> http://***@h, ?access_token=abc -> ?access_token=***; and in log lines,
    Authorization: Bearer abc -> Authorization: Bearer ***."""
    password, token, secret_query, auth_header, auth_scheme = _patterns()
    text = password.sub(lambda m: m.group("scheme") + m.group("user") + ":***@", text)
    text = token.sub(lambda m: m.group("scheme") + "***@", text)
    text = secret_query.sub(lambda m: m.group("key") + "***", text)
    text = auth_header.sub(lambda m: m.group("key") + "***", text)
    return auth_scheme.sub(lambda m: (m.group("key") or m.group("basic")) + "***", text)


def verdict_record(client: str, rules: str, verdict: Verdict) -> tuple[ProxyFacts, str | None]:
    """The JSON-ready proxy record of a verdict, and the proxy URL (credentials kept, for the
    request only; http:// added where the value has no scheme, as every client does)."""
    record: ProxyFacts = {"client": client, "used": False, "rules": rules}
    if verdict.ignored:
        record["ignored"] = list(verdict.ignored)
    if verdict.no_proxy_match is not None or verdict.no_proxy_variable is not None:
        record["no_proxy_variable"] = verdict.no_proxy_variable
        record["no_proxy_match"] = verdict.no_proxy_match
    proxy = verdict.proxy
    if proxy:
        if "://" not in proxy:
            proxy = "http://" + proxy
        record.update({"used": True, "url": redact(proxy), "variable": verdict.variable})
    if verdict.error:
        record["error"] = redact(verdict.error)
    return record, proxy or None


def decide(url: str, env: Mapping[str, str], client: str) -> tuple[ProxyFacts, str | None]:
    """The proxy `client` would use for `url` in `env`, by its re-implemented rules.

    The record holds: client, rules ("requests rules (emulated)"), used, url (redacted) and
    variable when used, no_proxy_variable and no_proxy_match when a NO_PROXY entry exempted
    the host, ignored (variables set but not honoured by this client, e.g. HTTP_PROXY for
    curl), error (why this client cannot send at all in this environment). The returned URL
    keeps its credentials, for the request only.
    """
    if client == "none":
        return {"client": "none", "used": False}, None
    from .proxy_rules import RULES

    rules = RULES.get(client)
    if rules is None:
        raise ValueError(f"unknown HTTP client {client!r}")
    verdict = note_cgi(rules(url, env), env, client)
    return verdict_record(client, f"{client} rules (emulated)", verdict)


def note_cgi(verdict: Verdict, env: Mapping[str, str], client: str) -> Verdict:
    """In CGI (REQUEST_METHOD set) Python clients drop HTTP_PROXY (httpoxy), as curl always
    does for http: say so when it is set."""
    python = client in ("requests", "urllib", "httpx")
    dropped = env.get("REQUEST_METHOD") and env.get("HTTP_PROXY")
    if python and dropped and verdict.variable != "HTTP_PROXY":
        verdict.ignored = ["HTTP_PROXY"]
    return verdict


def proxy_address(proxy_url: str) -> tuple[str, int, str]:
    """(host, port, scheme) of a proxy URL; curl and Python default the port to 1080/80."""
    from urllib.parse import urlsplit  # here: a batch without proxies does not import it

    parts = urlsplit(proxy_url if "://" in proxy_url else "http://" + proxy_url)
    scheme = parts.scheme.lower()
    default = {"http": 80, "https": 443}.get(scheme, 1080)
    return parts.hostname or "", parts.port or default, scheme


def strip_credentials(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

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
