"""The Python half of the shell prober: cells in as tab-separated lines, results out as records.

The other half, shell_probe.sh, runs curl, wget, nc, bash's /dev/tcp, getent or nslookup
where a user would, with no Python needed. Its lines are classified here into the same
statuses and check records as the agent's, with the tool's exit code and words as evidence.
"""

from __future__ import annotations

import errno
import math
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import resources

from ..agent import ping_output
from ..agent.bind import describe
from ..agent.classify import (
    TOOL_MISUSE_EXIT_CODES,
    classify_curl,
    errno_from_message,
    errno_name,
    status_for_errno,
)
from ..agent.http import status_matches
from ..agent.plans import Plan
from ..agent.proxy import redact
from ..agent.records import CellOutcome, Check, ProxyFacts
from ..agent.tcp import SELF_CONNECT
from ..model import CellRequest
from .curl_verbose import proxy_record, self_connected, tls_record, write_out

_CURL_ATTEMPT = re.compile(
    r"connect to (?P<address>\S+) port (?P<port>\d+) failed: (?P<reason>[^\x1f]+)"
)
_CURL_CONNECTED = re.compile(r"Connected to \S+ \((?P<address>[^)]+)\) port (?P<port>\d+)")
SEPARATOR = "\x1f"
# How tools say a name did not resolve (getaddrinfo's words, busybox's, wget's own).
RESOLVER_PHRASES = (
    "name or service not known",
    "temporary failure in name resolution",
    "no address associated with hostname",
    "unable to resolve host address",
    "bad address",
)


@lru_cache(maxsize=1)
def script() -> str:
    return (resources.files(__package__ or "probe_engine.sources") / "shell_probe.sh").read_text()


def _field(value: object) -> str:
    text = "" if value is None else str(value)
    # Tabs and newlines would break the line format; the script treats "-" as empty.
    text = text.replace("\t", " ").replace("\n", " ").replace("\r", " ")
    return text or "-"


def request_lines(batch: Sequence[CellRequest]) -> bytes:
    lines = []
    for request in batch:
        plan = request.plan
        mode = plan["kind"]
        headers = SEPARATOR.join(f"{k}: {v}" for k, v in (plan.get("headers") or {}).items())
        host = plan.get("host", "")
        if plan.get("addresses"):
            host = plan["addresses"][0]  # tools connect to one address: the first endpoint
        port, url, method = plan.get("port", ""), plan.get("url", ""), plan.get("method", "GET")
        if mode == "icmp":  # ping's count and family in the same fields
            port, method = plan.get("count", 3), plan.get("family", "any")
        bind = plan.get("bind") or {}
        fields = [
            request.id,
            mode,
            host,
            port,
            url,
            math.ceil(request.timeout),
            method,
            headers,
            0 if plan.get("verify") is False else 1,
            bind.get("interface") or bind.get("address") or "",
        ]
        lines.append("\t".join(_field(f) for f in fields))
    lines.append("@@END")
    return ("\n".join(lines) + "\n").encode()


def _message(text: str) -> str:
    parts = [p.strip() for p in text.split(SEPARATOR) if p.strip() and p.strip() != "-"]
    # The tool's last words say what went wrong; curl's "* Closing connection" adds nothing.
    meaningful = [p for p in parts if not p.startswith("* Closing")]
    return redact(" | ".join(meaningful[-2:]))[:500]


def _connect_record(
    status: str, number: int | None, message: str, host: str, port: int | str | None
) -> Check:
    return {
        "name": "tcp",
        "status": status,
        "errno": number,
        "errno_name": errno_name(number),
        "message": message,
        "address": host,
        "port": int(str(port)) if str(port).isdigit() else None,
    }


def _failure(rc: int, words: str) -> tuple[str, int | None]:
    if rc == 139:
        return "source-error", None  # the tool crashed (SIGSEGV): not a network answer
    if rc == 127:
        return "source-error", None
    if rc == 141:
        return "reset", errno.EPIPE  # SIGPIPE: the peer closed (or reset) while we wrote
    if rc in (124, 143):
        # `timeout` stopped the tool: our deadline, not the kernel's (GNU timeout exits 124;
        # busybox's leaves the tool to die of its SIGTERM, 128 + 15).
        return "timeout", None
    # A name that did not resolve first: bash then also says "/dev/tcp/...: Invalid argument",
    # which is not the network's answer.
    if any(phrase in words.lower() for phrase in RESOLVER_PHRASES):
        return "dns-error", None
    number = errno_from_message(words)
    if number is not None:
        return status_for_errno(number), number
    if "timed out" in words.lower():
        return "timeout", None
    return "unreachable", None


def _curl_checks(plan: Plan, rc: int, extra: str, text: str) -> tuple[list[Check], ProxyFacts]:
    """curl's connect attempts and answer, and the proxy record as curl told it."""
    checks: list[Check] = []
    fields, version = write_out(extra)
    told = proxy_record(text, version)
    proxy = told if told["used"] else None
    role = "proxy" if proxy else None
    for match in _CURL_ATTEMPT.finditer(text):
        number = errno_from_message(match["reason"])
        status = status_for_errno(number, default="unreachable")
        checks.append(
            {
                **_connect_record(
                    status, number, match["reason"].strip(), match["address"], match["port"]
                ),
                "role": role,
            }
        )
    connected = _CURL_CONNECTED.search(text)
    if connected:
        checks.append(
            {
                **_connect_record("ok", None, "connected", connected["address"], connected["port"]),
                "role": role,
            }
        )
    if rc in {6, 5}:
        checks.insert(
            0,
            {
                "name": "dns",
                "status": "proxy-error" if rc == 5 else "dns-error",
                "message": _message(text),
                "host": plan.get("host"),
                "reason": "nxdomain-or-no-answer",
            },
        )
        return checks, told
    if not connected:
        status, number = classify_curl(rc, text)
        if rc in (124, 143):  # the prober's backstop stopped curl: our deadline
            status, number = "timeout", None
        if proxy:
            status = "proxy-error"
        if not checks:
            checks.append(
                _connect_record(
                    status, number, _message(text), plan.get("host", ""), plan.get("port")
                )
            )
        else:
            for check in checks:
                if proxy and check["status"] != "ok":
                    check["status"] = "proxy-error"
        return checks, told
    if self_connected(fields):
        # TCP simultaneous open: curl's connection is its own peer, nothing listens there.
        checks[-1].update(
            {
                "status": "refused",
                "errno": errno.ECONNREFUSED,
                "errno_name": "ECONNREFUSED",
                "message": SELF_CONNECT,
            }
        )
        return checks, told
    if plan.get("kind") != "http":
        return checks, told
    code_text = fields[0]
    record: Check = {"name": "http", "url": redact(plan.get("url", "")), "client": "curl"}
    if rc == 0 and code_text.isdigit() and int(code_text) > 0:
        _judge_http(record, int(code_text), plan, via_proxy=proxy is not None)
    else:
        status, number = classify_curl(rc, text)
        record.update(
            {
                "status": status if status != "ok" else "reset",
                "errno": number,
                "errno_name": errno_name(number),
                "message": _message(text),
            }
        )
    checks.append(record)
    return checks, told


def _judge_http(record: Check, code: int, plan: Plan, via_proxy: bool) -> None:
    record["http_status"] = code
    expect = plan.get("expect_status")
    if status_matches(code, expect):
        record.update({"status": "ok", "message": f"HTTP {code}"})
    elif via_proxy and code in (407, 502, 503, 504):
        record.update({"status": "proxy-error", "message": f"the proxy answered HTTP {code}"})
    else:
        wanted = ", ".join(str(c) for c in expect) if expect else "2xx or 3xx"
        record.update({"status": "http-error", "message": f"HTTP {code} (expected {wanted})"})


def _plain_checks(plan: Plan, tool: str, rc: int, extra: str, text: str) -> list[Check]:
    """nc, bash and wget: one connect, then for http the status line if there was one."""
    host, port = plan.get("host", ""), plan.get("port")
    words = _message(text)
    code = int(extra) if extra.isdigit() else None
    if plan.get("kind") == "http" and code is not None:
        record: Check = {
            "name": "http",
            "url": redact(plan.get("url", "")),
            "client": tool,
        }
        _judge_http(record, code, plan, via_proxy=False)
        return [_connect_record("ok", None, "connected", host, port), record]
    if tool == "wget" and rc == 0:
        return [_connect_record("ok", None, "connected", host, port)]
    failed = rc != 0 or bool(errno_from_message(text))
    if not failed:
        checks = [_connect_record("ok", None, words or "connected", host, port)]
        if plan.get("kind") == "http":
            checks.append(
                {
                    "name": "http",
                    "status": "reset",
                    "client": tool,
                    "message": "no HTTP status line in the answer",
                }
            )
        return checks
    status, number = _failure(rc, text)
    if status == "dns-error":
        return [
            {"name": "dns", "status": status, "host": host, "message": words, "reason": "error"}
        ]
    message = words or f"{tool} exited with status {rc}"
    if rc in (124, 143):
        message = f"{tool} gave no answer before the deadline (stopped by timeout)"
    if status == "source-error":
        message = f"{tool} could not run (exit status {rc}): {words}".rstrip(": ")
    return [_connect_record(status, number, message, host, port)]


def _dns_checks(plan: Plan, tool: str, rc: int, extra: str, text: str) -> list[Check]:
    addresses = [a for a in extra.split() if a and a != "-"]
    record: Check = {
        "name": "dns",
        "host": plan.get("host"),
        "resolver": f"system ({tool})",
        "client": tool,
    }
    if addresses and rc == 0:
        record.update({"status": "ok", "addresses": addresses})
        expected = plan.get("expect_addresses")
        missing = [a for a in expected or [] if a not in addresses]
        if missing:
            record.update(
                {
                    "status": "dns-error",
                    "reason": "unexpected-address",
                    "message": f"resolved {', '.join(addresses)}; "
                    f"expected {', '.join(expected or [])}",
                }
            )
        return [record]
    words = _message(text)
    nxdomain = (tool == "getent" and rc == 2) or "NXDOMAIN" in text
    record.update(
        {
            "status": "dns-error",
            "errno_name": "NXDOMAIN" if nxdomain else None,
            "reason": "nxdomain" if nxdomain else "no-answer",
            "message": words or ("not found" if nxdomain else f"{tool} exited with status {rc}"),
        }
    )
    return [record]


def _ping_check(plan: Plan, rc: int, extra: str, text: str) -> Check:
    """The place's ping, read as the agent reads it where it runs ping itself."""
    host = str(plan.get("host", ""))
    family = plan.get("family", "any")
    if family == "any":
        family = "ipv6" if ":" in host else "ipv4"
    tool = {"busybox": "busybox ping", "iputils": "ping (iputils)"}.get(extra, "ping")
    output = "\n".join(p for p in text.split(SEPARATOR) if p != "-")
    told: Check = {"name": "icmp", "address": host, "family": family, "method": tool}
    record = ping_output.parse(output, rc, told, int(plan.get("count", 3)))
    bind = plan.get("bind")
    if bind:
        record["bind"] = describe(bind)
    return record


def classify_line(
    line: str, request: CellRequest, env: Mapping[str, str] | None = None
) -> CellOutcome:
    """One `@@R` line into an agent-shaped result dict (status, checks, proxy, tls, tool).
    `env` (the tool's environment, where known) names the variables curl's CAs came from."""
    fields = line.rstrip("\n").split("\t")
    fields += ["-"] * (7 - len(fields))
    _marker, _id, tool, rc_text, ms, extra, text = fields[:7]
    rc = int(rc_text) if rc_text.lstrip("-").isdigit() else 127
    extra = "" if extra == "-" else extra
    plan = request.plan.copy()
    if plan.get("addresses"):
        plan["host"] = plan["addresses"][0]
    proxy = None
    tls = None
    if tool == "-":
        checks: list[Check] = []
        status = "source-error"
        message = _message(text) or "no tool here can run this probe"
    elif rc in TOOL_MISUSE_EXIT_CODES.get(tool, ()):
        # The tool refused its command line (a URL it cannot parse, an option it lacks):
        # nothing was sent, so no check ran; its own words say what to fix.
        checks = []
        status = "source-error"
        words = _message(text)
        message = f"{tool} refused the probe (exit status {rc}){': ' + words if words else ''}"
    elif plan.get("kind") == "tcp" and extra == "self-connect":
        # The tool's connection was its own peer (TCP simultaneous open): the port is closed.
        number = errno.ECONNREFUSED
        host, port = plan.get("host", ""), plan.get("port")
        checks = [_connect_record("refused", number, SELF_CONNECT, host, port)]
        status, message = "refused", None
    else:
        if plan.get("kind") == "dns":
            checks = _dns_checks(plan, tool, rc, extra, text)
        elif plan.get("kind") == "icmp":
            checks = [_ping_check(plan, rc, extra, text)]
        elif tool == "curl":
            checks, proxy = _curl_checks(plan, rc, extra, text)
            if plan.get("kind") == "http" and str(plan.get("url", "")).startswith("https:"):
                tls = tls_record(text, env, plan.get("verify") is not False)
        else:
            checks = _plain_checks(plan, tool, rc, extra, text)
        status = next((c["status"] for c in checks if c["status"] != "ok"), "ok")
        message = None
        agent = next(
            (v for k, v in (plan.get("headers") or {}).items() if k.lower() == "user-agent"),
            None,
        )
        for check in checks:
            if check.get("name") == "http" and agent is not None and tool in ("curl", "wget"):
                check["user_agent"] = agent
    result: CellOutcome = {
        "status": status,
        "checks": checks,
        "duration_ms": float(ms) if ms.isdigit() else None,
        "tool": tool if tool != "-" else None,
        "message": message,
    }
    if proxy is not None and plan.get("kind") == "http":
        result["proxy"] = proxy
    if tls is not None:
        result["tls"] = tls
    return result
