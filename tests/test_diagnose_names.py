"""Diagnosis of name resolution on real lookups: names answered by a DNS server on loopback
(never the machine's own resolver), `localhost` from a namespace's own hosts file.

- a name resolving to ::1 and 127.0.0.1 while only IPv4 listens on the port;
- a short name failing while the FQDN resolves (search list);
- NXDOMAIN vs no answer vs no address of the asked family.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from probe_engine.demo.fixtures import DnsServer, LoopbackLab
from probe_engine.diagnose.dns_failure import dns_failure
from probe_engine.diagnose.findings import finding
from probe_engine.results import Finding, MatrixResult

from .conftest import cell, require, run_text
from .golden import check_golden, ports


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def names() -> Iterator[DnsServer]:
    server = DnsServer(
        {
            "api.diag.test": ["::1", "127.0.0.1"],
            "api.demo.svc.cluster.local": "127.0.0.1",
            "v4only.diag.test": "127.0.0.1",
        }
    )
    yield server
    server.close()


@pytest.fixture
def silent() -> Iterator[str]:
    """A 'nameserver' that receives and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield f"127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def rules(result: MatrixResult, rule: str) -> list[Finding]:
    return [f for f in result.findings if f.rule == rule]


def citing(result: MatrixResult, source: str, target: str) -> list[Finding]:
    return [
        f
        for f in result.findings
        if any((e.source, e.target) == (source, target) for e in f.evidence)
    ]


def cited(finding: Finding) -> set[tuple[str, str]]:
    return {(e.source, e.target) for e in finding.evidence}


def test_a_name_with_an_ipv6_address_on_an_ipv4_only_port(
    names: DnsServer, loopback: LoopbackLab
) -> None:
    require(ipv6_loopback(), "needs the IPv6 loopback (::1)")
    result = run_text(
        """
        defaults: {timeout: 1s}
        sources: {here: {kind: local}}
        targets:
          api-name: {kind: dns, name: api.diag.test, nameserver: "${NS}"}
          api-v6: {kind: tcp, host: "::1", port: "${HTTP}"}
          api-v4: {kind: tcp, host: 127.0.0.1, port: "${HTTP}"}
        """,
        {"NS": f"127.0.0.1:{names.port}", "HTTP": str(loopback.http_port)},
    )
    assert cell(result, "here", "api-v6").checks[0].errno_name == "ECONNREFUSED"
    [finding] = rules(result, "address-family")
    port = loopback.http_port
    assert finding.title == (
        f"api.diag.test resolves to ::1 and 127.0.0.1, and only IPv4 listens on port {port}"
    )
    assert finding.severity == "error"
    assert "api.diag.test resolves to 127.0.0.1 and ::1" in finding.detail
    assert "most resolvers put the IPv6 address first (RFC 6724)" in finding.detail
    assert f"On port {port}, ::1 is refused (ECONNREFUSED) (api-v6)" in finding.detail
    check_golden(finding, "address-family", {**ports(loopback), str(names.port): "DNS_PORT"})
    assert "socket.connect((name, port))" in finding.detail
    assert cited(finding) == {("here", "api-v6"), ("here", "api-v4"), ("here", "api-name")}
    assert "listen on both families" in finding.next_step
    assert "connect to 127.0.0.1 instead of api.diag.test" in finding.next_step
    # The refused column is explained once, by this finding, not again as "target down".
    assert citing(result, "here", "api-v6") == [finding]


@pytest.fixture
def hosts_namespace(loopback: LoopbackLab) -> Iterator[tuple[str, int]]:
    """A namespace whose hosts file maps localhost to ::1 and 127.0.0.1 (as Debian's does),
    with a listener on 127.0.0.1 only."""
    require(os.geteuid() == 0 and shutil.which("ip") is not None, "needs root and iproute2")
    name = f"pediag{os.getpid()}h"
    etc = Path("/etc/netns") / name
    listener: subprocess.Popen[str] | None = None
    try:
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
        subprocess.run(
            ["ip", "-n", name, "link", "set", "lo", "up"], check=True, capture_output=True
        )
        etc.mkdir(parents=True)
        (etc / "hosts").write_text("::1 localhost\n127.0.0.1 localhost\n")
        listener = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                name,
                sys.executable,
                "-c",
                "import socket, sys\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\n"
                "s.listen(8)\nprint(s.getsockname()[1], flush=True)\nsys.stdin.read()",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert listener.stdout is not None
        yield name, int(listener.stdout.readline())
    finally:
        if listener is not None:
            listener.kill()
            listener.wait()
        shutil.rmtree(etc, ignore_errors=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def test_localhost_resolving_to_ipv6_first_in_one_cell(hosts_namespace: tuple[str, int]) -> None:
    name, port = hosts_namespace
    result = run_text(
        """
        defaults: {timeout: 1s}
        sources: {task: {kind: netns, name: "${NS}"}}
        targets: {api: {kind: tcp, host: localhost, port: "${PORT}"}}
        expect: [{status: ok}]
        """,
        {"NS": name, "PORT": str(port)},
    )
    api = cell(result, "task", "api")
    assert [(c.name, c.address, c.status) for c in api.checks] == [
        ("dns", None, "ok"),
        ("tcp", "::1", "refused"),
        ("tcp", "127.0.0.1", "ok"),
    ]
    [finding] = result.findings
    assert finding.rule == "address-family"
    assert finding.title == f"localhost resolves to ::1 first but only IPv4 listens on port {port}"
    assert "localhost resolves to ::1 and 127.0.0.1 (from system)" in finding.detail
    assert (
        f"On port {port}, ::1 is refused (ECONNREFUSED) (api) while 127.0.0.1 connects (api)"
        in (finding.detail)
    )
    assert cited(finding) == {("task", "api")}
    assert finding.severity == "error"  # the cell was expected ok


def test_a_short_name_fails_while_the_fqdn_resolves(names: DnsServer) -> None:
    result = run_text(
        """
        defaults: {timeout: 1s}
        sources: {worker: {kind: local}}
        targets:
          api-short:
            kind: dns
            name: api
            nameserver: "${NS}"
            search: [default.svc.cluster.local, svc.cluster.local]
            ndots: 5
          api-fqdn: {kind: dns, name: api.demo.svc.cluster.local, nameserver: "${NS}"}
        """,
        {"NS": f"127.0.0.1:{names.port}"},
    )
    [finding] = rules(result, "search-list")
    assert finding.title == (
        "api fails while api.demo.svc.cluster.local resolves: the search list does not complete it"
    )
    assert finding.severity == "error"
    assert (
        "api does not exist (NXDOMAIN) (asked as api.default.svc.cluster.local, "
        "api.svc.cluster.local, api)" in finding.detail
    )
    assert (
        "none of the search domains (default.svc.cluster.local svc.cluster.local) is "
        "demo.svc.cluster.local" in finding.detail
    )
    assert cited(finding) == {("worker", "api-short"), ("worker", "api-fqdn")}
    assert finding.next_step.startswith("Use the full name api.demo.svc.cluster.local")
    check_golden(finding, "search-list", {str(names.port): "DNS_PORT"})
    assert citing(result, "worker", "api-short") == [finding]


def test_nxdomain_no_answer_and_no_address_of_the_family_are_told_apart(
    names: DnsServer, silent: str
) -> None:
    result = run_text(
        """
        defaults: {timeout: 1s}
        sources: {here: {kind: local}}
        targets:
          known: {kind: dns, name: v4only.diag.test, nameserver: "${NS}"}
          typo: {kind: dns, name: v4olny.diag.test, nameserver: "${NS}"}
          silent: {kind: dns, name: v4only.diag.test, nameserver: "${SILENT}", timeout: 500ms}
          v6: {kind: dns, name: v4only.diag.test, nameserver: "${NS}", family: ipv6}
        """,
        {"NS": f"127.0.0.1:{names.port}", "SILENT": silent},
    )
    ns = f"127.0.0.1:{names.port}"
    [typo] = citing(result, "here", "typo")
    assert f"v4olny.diag.test does not exist: {ns} answered NXDOMAIN" in typo.detail
    assert "Check the spelling" in typo.next_step
    [quiet] = citing(result, "here", "silent")
    assert f"{silent} gave no answer for v4only.diag.test" in quiet.detail
    assert "says nothing about whether the name exists" in quiet.detail
    assert "UDP/TCP 53" in quiet.next_step
    [v6] = citing(result, "here", "v6")
    assert f"v4only.diag.test exists but {ns} has no address record for it (NODATA)" in v6.detail
    assert "AAAA" in v6.next_step
    assert {f.severity for f in result.findings} == {"warning"}  # undeclared, no contradiction
    # The rule itself, on the same cells: one finding per column and reason.
    by_column = {f.evidence[0].target: f for f in (finding(c, result) for c in dns_failure(result))}
    assert set(by_column) == {"typo", "silent", "v6"}
    assert by_column["typo"].title == (
        "typo fails from here: v4olny.diag.test does not exist (NXDOMAIN)"
    )
    check_golden(by_column["typo"], "dns-failure", {str(names.port): "DNS_PORT"})
    assert by_column["silent"].facts["reason"] == "no-answer"
    assert by_column["v6"].facts["reason"] == "no-address"


def test_an_ipv6_only_listener_is_the_mirror_case(names: DnsServer) -> None:
    require(ipv6_loopback(), "needs the IPv6 loopback (::1)")
    with socket.socket(socket.AF_INET6) as listener:
        listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        listener.bind(("::1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        result = run_text(
            """
            defaults: {timeout: 1s}
            sources: {here: {kind: local}}
            targets:
              api-name: {kind: dns, name: api.diag.test, nameserver: "${NS}"}
              api-v6: {kind: tcp, host: "::1", port: "${PORT}"}
              api-v4: {kind: tcp, host: 127.0.0.1, port: "${PORT}"}
            """,
            {"NS": f"127.0.0.1:{names.port}", "PORT": str(port)},
        )
    [finding] = rules(result, "address-family")
    assert finding.title == (
        f"api.diag.test resolves to 127.0.0.1 first but only IPv6 listens on port {port}"
    )
    assert f"On port {port}, 127.0.0.1 is refused (ECONNREFUSED) (api-v4)" in finding.detail
    assert "connect to ::1 instead of api.diag.test" in finding.next_step
