"""Every status loopback can produce, from real sockets, through the local and process sources.

The local source runs the probe code in this process; the process source ships the same code
to a child Python. Both must record the same statuses and errnos for the same fixtures.
"""

from __future__ import annotations

import errno

import pytest
import requests

from probe_engine.demo.fixtures import LoopbackLab

from .conftest import cell, run_text

MATRIX = """
defaults: {timeout: 5s}  # room for a loaded machine; the slow fixtures set 1s
sources:
  here: {kind: local, trust_env: false}
  child: {kind: process, inherit_env: false}
  child-proxied: {kind: process, inherit_env: false, env: {HTTP_PROXY: "http://127.0.0.1:${DEAD}"}}
targets:
  api:       {kind: http, url: "http://127.0.0.1:${HTTP}/health", expect_status: [200]}
  api-port:  {kind: tcp, host: 127.0.0.1, port: "${HTTP}"}
  wrong:     {kind: http, url: "http://127.0.0.1:${HTTP}/health", expect_status: [204]}
  broken:    {kind: http, url: "http://127.0.0.1:${HTTP}/error"}
  closed:    {kind: tcp, host: 127.0.0.1, port: "${CLOSED}"}
  backlog:   {kind: tcp, host: 127.0.0.1, port: "${BACKLOG}", timeout: 1s}
  hanging:   {kind: http, url: "http://127.0.0.1:${HANG}/", timeout: 1s}
  resetting: {kind: http, url: "http://127.0.0.1:${RESET}/"}
  name:      {kind: dns, name: api.demo.internal, nameserver: "${DNS}", expect_addresses: [127.0.0.1]}
  typo:      {kind: dns, name: apj.demo.internal, nameserver: "${DNS}"}
  localhost: {kind: dns, name: localhost, family: ipv4}
"""


@pytest.fixture(scope="module")
def result(loopback: LoopbackLab):  # type: ignore[no-untyped-def]
    v = loopback.variables()
    environ = {
        "HTTP": v["PE_DEMO_HTTP_PORT"],
        "DEAD": v["PE_DEMO_PROXY_PORT"],
        "CLOSED": v["PE_DEMO_CLOSED_PORT"],
        "BACKLOG": v["PE_DEMO_BACKLOG_PORT"],
        "HANG": v["PE_DEMO_HANG_PORT"],
        "RESET": v["PE_DEMO_RESET_PORT"],
        "DNS": v["PE_DEMO_DNS"],
    }
    return run_text(MATRIX, environ)


@pytest.mark.parametrize("source", ["here", "child"])
@pytest.mark.parametrize(
    ("target", "status", "errno_name"),
    [
        ("api", "ok", None),
        ("api-port", "ok", None),
        ("wrong", "http-error", None),
        ("broken", "http-error", None),
        ("closed", "refused", "ECONNREFUSED"),
        ("backlog", "timeout", None),
        ("hanging", "timeout", None),
        ("resetting", "reset", "ECONNRESET"),
        ("name", "ok", None),
        ("typo", "dns-error", "NXDOMAIN"),
        ("localhost", "ok", None),
    ],
)
def test_status_and_errno(
    result, source: str, target: str, status: str, errno_name: str | None
) -> None:  # type: ignore[no-untyped-def]
    found = cell(result, source, target)
    assert found.status == status, found.model_dump_json(indent=1)
    failed = next((c for c in found.checks if c.status != "ok"), None)
    assert (failed.errno_name if failed else None) == errno_name


def test_a_refused_connect_records_errno_address_and_family(result) -> None:  # type: ignore[no-untyped-def]
    (check,) = cell(result, "here", "closed").checks
    assert (check.name, check.errno, check.address, check.family) == (
        "tcp",
        errno.ECONNREFUSED,
        "127.0.0.1",
        "ipv4",
    )


def test_a_deadline_is_told_apart_from_the_kernels_etimedout(result) -> None:  # type: ignore[no-untyped-def]
    (check,) = cell(result, "here", "backlog").checks
    assert check.errno is None
    assert "deadline" in (check.message or "")
    assert cell(result, "here", "backlog").duration_ms >= 900  # never before the deadline


def test_http_records_status_timings_and_peer(result) -> None:  # type: ignore[no-untyped-def]
    http = cell(result, "here", "broken").checks[-1]
    assert http.http_status == 500
    assert http.peer and http.peer.startswith("127.0.0.1:")
    # requests sent it (the default client, importable here): it exposes no connect phase, so
    # the timings are time to headers, to the body, and in all.
    assert http.client == f"requests {requests.__version__}"
    assert http.timings and {"headers", "receive", "total"} <= set(http.timings)


def test_a_dead_proxy_is_a_proxy_error_with_the_real_errno(result) -> None:  # type: ignore[no-untyped-def]
    found = cell(result, "child-proxied", "api")
    assert found.status == "proxy-error"
    assert found.proxy is not None and found.proxy.used and found.proxy.variable == "HTTP_PROXY"
    (tcp,) = found.checks
    assert (tcp.errno_name, tcp.role) == ("ECONNREFUSED", "proxy")


def test_tcp_targets_ignore_the_proxy(result) -> None:  # type: ignore[no-untyped-def]
    assert cell(result, "child-proxied", "api-port").status == "ok"


def test_dns_records_every_address_and_the_resolver(result) -> None:  # type: ignore[no-untyped-def]
    (check,) = cell(result, "child", "name").checks
    assert check.addresses == ["127.0.0.1"]
    assert check.resolver and check.resolver.startswith("127.0.0.1:")
    (typo,) = cell(result, "here", "typo").checks
    assert typo.reason == "nxdomain"


def test_source_facts_are_reported_without_secrets(result) -> None:  # type: ignore[no-untyped-def]
    info = next(s for s in result.sources if s.name == "child-proxied")
    assert info.facts["proxy_env"] == {"HTTP_PROXY": info.facts["proxy_env"]["HTTP_PROXY"]}
    assert info.facts["netns"].startswith("net:[")
