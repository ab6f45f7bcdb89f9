"""What curl itself says in its verbose output: the proxy it used, the CAs it loaded, the
certificate it was shown. The shell prober's curl cells are told from these words, never from
a model of curl's rules (curl is right there in the row: it is asked).

- "Uses proxy env variable no_proxy == '...'" only says curl read NO_PROXY; a proxy was used
  when curl names a proxy variable (it only looks one up once NO_PROXY has not exempted the host).
- "CAfile:" / "CApath:" are the bundle and directory curl verifies with.
- "Server certificate:" then subject, dates, subjectAltName, issuer; or "SSL certificate
  problem: ..." when it refused the chain.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..agent.proxy import redact
from ..agent.records import ProxyFacts, TlsFacts

_USES = re.compile(r"Uses proxy env variable (?P<variable>\w+) == '(?P<value>[^']*)'")
_FIELD = re.compile(
    r"\*\s+(?P<key>CAfile|CApath|subject|start date|expire date|issuer):\s*(?P<v>.*)"
)
_SAN = re.compile(r'subjectAltName: host "(?P<host>[^"]*)" matched cert\'s (?P<what>.*)')
_PROBLEM = re.compile(r"SSL certificate problem: (?P<problem>.+)")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.split("\x1f")]


def proxy_record(text: str, version: str | None) -> ProxyFacts:
    """{client, used, rules, url, variable, no_proxy_variable} as curl reported them."""
    record: ProxyFacts = {
        "client": "curl",
        "used": False,
        "rules": f"curl {version}" if version else "curl",
    }
    no_proxy = None
    for match in _USES.finditer(text):
        if match["variable"].lower() == "no_proxy":
            no_proxy = match["variable"]
        else:
            record.update(
                {"used": True, "url": redact(match["value"]), "variable": match["variable"]}
            )
    if no_proxy and not record["used"]:
        # curl read NO_PROXY and then took no proxy: it does not say which entry matched.
        record["no_proxy_variable"] = no_proxy
    return record


def _named(path: str, env: Mapping[str, str] | None, variables: tuple[str, ...]) -> str:
    for variable in variables:
        if env and env.get(variable) == path:
            return f"{variable}={path}"
    return path


def tls_record(text: str, env: Mapping[str, str] | None, verify: bool) -> TlsFacts | None:
    """The cell's `tls` facts from curl's words; None when curl printed none (no handshake)."""
    fields: dict[str, str] = {}
    sans: list[str] = []
    problem = None
    for line in _lines(text):
        field = _FIELD.match(line)
        if field and field["key"] not in fields:
            fields[field["key"]] = field["v"].strip()
        san = _SAN.search(line)
        if san:
            sans.append(f"{san['host']} ({san['what'].rstrip('!')})")
        found = _PROBLEM.search(line)
        if found:
            problem = found["problem"].strip()
    if not fields and problem is None:
        return None
    if not verify:
        ca = "not verified (verify_tls: false)"
    else:
        parts = []
        if "CAfile" in fields:
            parts.append(_named(fields["CAfile"], env, ("CURL_CA_BUNDLE", "SSL_CERT_FILE")))
        if "CApath" in fields:
            parts.append(_named(fields["CApath"], env, ("SSL_CERT_DIR",)))
        ca = "curl: " + (", ".join(parts) if parts else "its built-in store")
    record: TlsFacts = {
        "client": "curl",
        "ca": ca,
        "verify": verify,
        "verify_error": problem,
        "subject": fields.get("subject"),
        "issuer": fields.get("issuer"),
        "not_before": fields.get("start date"),
        "not_after": fields.get("expire date"),
    }
    if sans:
        record["sans"] = sans  # curl names the SAN that matched, not the whole list
    return record


def write_out(extra: str) -> tuple[list[str], str | None]:
    """The prober's curl line: '%{http_code}|%{remote_ip}|%{remote_port}|%{local_ip}|
    %{local_port} VERSION' -> (the five fields, curl's version)."""
    fields, _, version = extra.partition(" ")
    parts = (fields.split("|") + [""] * 5)[:5]
    return parts, (version.strip() or None) if version.strip() != "-" else None


def self_connected(fields: list[str]) -> bool:
    """A connection whose local end is its own peer is TCP simultaneous open on a closed
    port: the kernel picked the target port as the source port."""
    _code, remote_ip, remote_port, local_ip, local_port = fields[:5]
    return remote_port not in ("", "0") and (remote_ip, remote_port) == (local_ip, local_port)
