"""Words: what one failed cell says about the network and what to try next, lists that stay
one line, routes as `ip route` prints them, each client's proxy rules.

Rules compose findings from these clauses so a refusal reads the same everywhere. Each clause
names the errno and the concrete address; none guesses beyond what the errno proves."""

from __future__ import annotations

from ..agent.address import hostport
from ..facts import Route
from ..results import CellResult, CheckRecord, ProxyInfo
from .cells import asked_names, first_failure, hops


def column_words(cell: CellResult) -> str:
    """failure_words, with the reason of a column that could not be probed."""
    if cell.status == "target-error" and cell.message:
        return f"target-error ({cell.message})"
    return failure_words(cell)


def failure_words(cell: CellResult) -> str:
    """'refused (ECONNREFUSED)' from the first failed check."""
    failed = first_failure(cell)
    if failed is None:
        return cell.status
    if failed.errno_name:
        return f"{cell.status} ({failed.errno_name})"
    if failed.http_status:
        return f"{cell.status} (HTTP {failed.http_status})"
    return cell.status


def describe_route(route: Route) -> str:
    """'10.96.0.0/12 via 192.168.49.2 dev eth0' as `ip route` prints it."""
    text = route["destination"]
    gateway = route["gateway"]
    if gateway and gateway != "0.0.0.0":
        text += f" via {gateway}"
    if route["device"]:
        text += f" dev {route['device']}"
    return text


def where(cell: CellResult) -> str:
    """'127.0.0.1:8000' (the address that failed), or the cell's endpoint."""
    failed = first_failure(cell)
    if failed is not None and failed.address and failed.role != "proxy":
        return hostport(failed.address, failed.port)
    tried = [h for h in hops(cell) if h.status != "ok"] or hops(cell)
    if tried:
        return hostport(tried[0].address, tried[0].port)
    return cell.endpoint


def meaning(cell: CellResult) -> str:
    """Why the cell failed, as the errno proves it: 'nothing listens on port 8000 at ...'."""
    failed = first_failure(cell)
    status = cell.status
    if status in ("source-error", "target-error", "cancelled") or failed is None:
        return cell.message or (failed.message if failed and failed.message else status)
    errno = failed.errno_name or ""
    at = where(cell)
    if failed.name in ("icmp", "udp"):
        return _icmp_or_udp(failed, status, at)
    if status == "refused":
        return (
            f"{at} answered ECONNREFUSED: the host is reachable but nothing listens on that port "
            "(or a firewall rejects with tcp-reset)"
        )
    if status == "timeout":
        if failed.name == "http":
            return (
                f"the TCP connection to {at} opened but no HTTP answer came in time: "
                "the server accepts and hangs"
            )
        if failed.name == "dns":
            return dns_meaning(failed, _nameserver(cell))
        if errno == "ETIMEDOUT":
            return (
                f"{at} never answered the SYN (ETIMEDOUT from the kernel): packets are dropped "
                "on the way (a DROP rule, a security group) or the host is down"
            )
        return (
            f"{at} gave no answer within the probe's timeout: packets are dropped, the host is "
            "down, or its accept queue is full"
        )
    if status == "unreachable":
        return _unreachable(errno, at)
    if status == "dns-error":
        return dns_meaning(failed, _nameserver(cell))
    if status == "reset":
        return (
            f"{at} accepted, then reset the connection ({errno or 'closed'}): the server crashed "
            "or speaks another protocol (TLS on a plain port, or the reverse)"
        )
    if status == "http-error":
        return _http(failed)
    if status == "tls-error":
        return f"the TLS handshake with {at} failed: {failed.message or 'no detail'}"
    if status == "proxy-error":
        proxy = cell.proxy
        named = f"{proxy.url} (from {proxy.variable})" if proxy and proxy.url else "the proxy"
        how = f" ({errno})" if errno else ""
        return f"the proxy {named} failed{how}: the request never reached the target"
    return failed.message or status


def _icmp_or_udp(failed: CheckRecord, status: str, at: str) -> str:
    """A ping or a UDP exchange: the ICMP error that answered it, or the silence."""
    if failed.icmp:
        said = f"{failed.icmp_from or 'a router'} answered ICMP {failed.icmp}"
        if failed.icmp == "port-unreachable":
            return f"{said}: {at} is reachable but nothing listens on that udp port"
        if failed.icmp == "admin-prohibited":
            return f"{said}: a firewall rejects {'ping' if failed.name == 'icmp' else 'it'}"
        return f"{said} for {at}: the path or the host refused it"
    if status == "timeout" and failed.name == "icmp":
        return (
            f"{at} did not answer ping (100% loss): echo requests are dropped on the way, or the "
            "host is down; many hosts and every Kubernetes ClusterIP never answer ping (kube-proxy "
            "forwards only the Service's ports), so this alone does not say the host is down"
        )
    if status == "timeout":
        return (
            f"no answer from {at}: open or filtered; no ICMP error said the port is closed, and "
            "nothing answered this payload (a UDP service may ignore it, a firewall may drop it)"
        )
    if status == "unreachable":
        return _unreachable(failed.errno_name or "", at)
    return failed.message or status


def _nameserver(cell: CellResult) -> str | None:
    """The nameserver a dns column names ('name @10.96.0.10:53'), if any."""
    _name, at, server = cell.endpoint.partition(" @")
    return server if at else None


def _unreachable(errno: str, at: str) -> str:
    if errno == "ENETUNREACH":
        return f"no route to {at}'s network from here (ENETUNREACH): the source's routes lack it"
    if errno == "EHOSTUNREACH":
        return (
            f"{at} is unreachable (EHOSTUNREACH): a REJECT rule answered icmp-host-unreachable, "
            "or the address got no ARP answer on its network"
        )
    if errno in ("EACCES", "EPERM"):
        return f"a local firewall rule blocked the connect to {at} ({errno})"
    if errno == "EADDRNOTAVAIL":
        return f"the source has no local address that can reach {at} (EADDRNOTAVAIL)"
    if errno in ("EHOSTDOWN", "ENETDOWN"):
        return f"the network toward {at} is down ({errno})"
    return f"{at} is unreachable ({errno or 'no detail'})"


def _http(failed: CheckRecord) -> str:
    code = failed.http_status
    url = failed.url or "the URL"
    if code in (401, 403):
        return f"{url} answered HTTP {code}: reachable, but the request is not authorised"
    if code == 404:
        return f"{url} answered HTTP 404: reachable, but nothing serves that path"
    if code in (502, 503, 504):
        return (
            f"{url} answered HTTP {code}: a gateway or proxy in front answered for a backend "
            "that is down or not ready"
        )
    if code:
        return f"{url} answered HTTP {code}: the server runs, the request fails"
    return failed.message or "the HTTP exchange failed"


DNS_REASONS = {
    "nxdomain": "does not exist",
    "no-answer": "got no answer",
    "servfail": "made the resolver fail",
    "refused": "was refused by the resolver",
    "no-address": "exists but has no address record",
    "no-address-of-family": "has no address of the asked family",
    "unexpected-address": "resolves, but not to the expected address",
}


def reason_word(record: CheckRecord) -> str:
    """The word a sentence already says for this failure: NXDOMAIN for nxdomain."""
    return {"nxdomain": "NXDOMAIN", "servfail": "SERVFAIL", "refused": "REFUSED"}.get(
        record.reason or "", ""
    )


def dns_meaning(record: CheckRecord, resolver: str | None = None) -> str:
    """NXDOMAIN (the name does not exist) vs no answer (the resolver is not reachable or too
    slow) vs no address of the family: three different problems that all look like 'DNS'.
    `resolver` names the resolver when the record does not (a lookup cut by the deadline)."""
    name = record.host or "the name"
    resolver = record.resolver or resolver or "the resolver"
    if resolver == "system":
        resolver = "the system resolver (getaddrinfo)"
    # The code when it adds something: EAI_NONAME says which API answered, NXDOMAIN twice not.
    named = record.errno_name and record.errno_name.upper() not in (reason_word(record),)
    code = f" ({record.errno_name})" if named else ""
    asked = asked_names(record) or []
    candidates = f" (asked as {', '.join(asked)})" if asked and asked != [record.host] else ""
    reason = record.reason or ""
    if reason == "nxdomain":
        return f"{name} does not exist: {resolver} answered NXDOMAIN{code}{candidates}"
    if reason == "no-answer":
        return (
            f"{resolver} gave no answer for {name}{code}: the resolver is unreachable or too "
            "slow from here; this says nothing about whether the name exists"
        )
    if reason == "servfail":
        return f"{resolver} answered SERVFAIL for {name}{code}: its upstream or zone is broken"
    if reason == "refused":
        return f"{resolver} answered REFUSED for {name}{code}: it does not serve that zone"
    if reason == "no-address":
        return f"{name} exists but {resolver} has no address record for it{code}{candidates}"
    if reason == "no-address-of-family":
        return f"{name} has no address of the asked family{code}"
    if reason == "unexpected-address":
        return f"{name} {record.message or 'resolved to an unexpected address'}"
    return f"resolving {name} failed{code}: {record.message or 'no detail'}"


def dns_next_step(record: CheckRecord) -> str:
    name = record.host or "the name"
    reason = record.reason or ""
    if reason == "nxdomain":
        return (
            f"Check the spelling and namespace of {name}; a Service's full name is "
            "<service>.<namespace>.svc.cluster.local."
        )
    if reason in ("no-answer", "servfail", "refused"):
        return (
            f"Check that the source reaches its nameserver ({record.resolver or 'resolv.conf'}) "
            "on UDP/TCP 53: `dig @NAMESERVER " + name + "`."
        )
    if reason in ("no-address", "no-address-of-family"):
        return f"Add the missing A/AAAA record for {name}, or ask for the family it has."
    if reason == "unexpected-address":
        return f"Update the record for {name} or the expected addresses; flush stale caches."
    return f"Resolve {name} by hand from the same place (`getent ahosts {name}`)."


def next_step(cell: CellResult) -> str:
    """One line: what to try next for this kind of failure."""
    failed = first_failure(cell)
    at = where(cell)
    status = cell.status
    if failed is not None and failed.name == "dns" and status in ("dns-error", "timeout"):
        return dns_next_step(failed)
    if status == "refused" and failed is not None and failed.name == "udp":
        return f"Check that the service runs and listens on udp {at} (`ss -lunp` there)."
    if status == "refused":
        return (
            f"Check that the service runs and listens on {at} (`ss -ltnp` there; for Kubernetes "
            "`kubectl get endpoints`), and that this is the right port."
        )
    if status == "timeout":
        if failed is not None and failed.name == "http":
            return f"The server at {at} accepts but does not answer: check its logs and load."
        if failed is not None and failed.name == "icmp":
            return f"Probe a port of {at} (a tcp target) before concluding it is down."
        if failed is not None and failed.name == "udp":
            return (
                f"Send a payload the service at {at} answers (payload:), or check its logs "
                "for the datagram."
            )
        return f"Look for a firewall dropping traffic to {at} and check that the host is up."
    if status == "unreachable":
        return (
            f"Check the source's routes (`ip route get {at.rsplit(':', 1)[0]}`) and REJECT rules."
        )
    if status == "reset":
        return "Check the server's logs, and that the scheme matches the port (http vs https)."
    if status == "http-error":
        return "Check the service's logs for that request; the network path itself works."
    if status == "tls-error":
        return "Check the certificate chain and name, or the CA bundle the source trusts."
    if status == "proxy-error":
        return "Make the proxy reachable, or exempt the target in NO_PROXY."
    if status == "source-error":
        return "Fix what the message says so the probe can run there, then run again."
    if status == "target-error":
        return "Fix the target's definition (name, namespace, port) so it resolves."
    return "Run the probe again and compare."


EMULATED = " rules (emulated)"  # how the agent names a client's rules where it is absent


def possessive(name: str) -> str:
    """ "requests'", "httpx's"."""
    return name + "'" if name.endswith("s") else name + "'s"


def rules_words(rules: str) -> str:
    """Who made a cell's proxy decision, as a sentence says it: 'requests 2.34.2' as it is,
    'requests rules (emulated)' as "requests' proxy rules, emulated"."""
    if rules.endswith(EMULATED):
        return f"{possessive(rules[: -len(EMULATED)])} proxy rules, emulated"
    return rules


def client_words(label: str) -> str:
    """What sent a cell's request, with one level of brackets at most: 'requests 2.34.2' as it
    is, and http.client sending for an absent library ('http.client (requests rules
    (emulated))', as the agent labels it) as "http.client, with requests' proxy rules
    emulated"."""
    sender, bracket, inner = label.partition(" (")
    if not bracket or not inner.endswith(")"):
        return label
    decided = inner[:-1]
    if decided.endswith(EMULATED):
        return f"{sender}, with {possessive(decided[: -len(EMULATED)])} proxy rules emulated"
    return f"{sender}, with {decided}"


CLIENT_RULES = {
    "curl": "curl ignores upper-case HTTP_PROXY and reads only lower-case http_proxy",
    "requests": "requests honours both HTTP_PROXY and http_proxy",
    "httpx": "httpx honours both HTTP_PROXY and http_proxy",
    "urllib": "urllib honours both HTTP_PROXY and http_proxy",
}


def route(cell: CellResult) -> str:
    """'connects directly' or 'goes through HTTP_PROXY=http://proxy:3128'."""
    proxy = cell.proxy
    if proxy is None or not proxy.used:
        return "connects directly"
    return f"goes through {proxy.variable}={proxy.url}"


def why_direct(proxy: ProxyInfo | None) -> str:
    if proxy is None:
        return ""
    if proxy.ignored:
        rule = CLIENT_RULES.get(proxy.client, proxy.client + " ignores it")
        return f" ({', '.join(proxy.ignored)} is set but {rule})"
    if proxy.no_proxy_match:
        return f" ({proxy.no_proxy_variable} entry {proxy.no_proxy_match!r} exempts the host)"
    return ""
