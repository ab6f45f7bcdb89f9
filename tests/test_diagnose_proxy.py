"""Diagnosis of proxy differences on real loopback runs: the story (curl ignores upper-case
HTTP_PROXY, Python honours it), and a NO_PROXY that is set but does not match for one client
(httpx reads a CIDR entry as a single address; requests and curl match the range)."""

from __future__ import annotations

from probe_engine.demo.fixtures import LoopbackLab
from probe_engine.results import Finding, MatrixResult

from .conftest import run_text
from .golden import check_golden, ports


def env(lab: LoopbackLab) -> dict[str, str]:
    v = lab.variables()
    return {"HTTP": v["PE_DEMO_HTTP_PORT"], "PROXY": v["PE_DEMO_PROXY_PORT"]}


def only(result: MatrixResult, rule: str) -> Finding:
    [finding] = [f for f in result.findings if f.rule == rule]
    return finding


def cited(finding: Finding) -> set[tuple[str, str]]:
    return {(e.source, e.target) for e in finding.evidence}


def test_python_through_upper_case_http_proxy_fails_where_curl_goes_direct(
    loopback: LoopbackLab,
) -> None:
    result = run_text(
        """
        defaults: {timeout: 1s}
        sources:
          scheduler-curl:
            kind: shell
            tool: curl
            inherit_env: false
            env: {HTTP_PROXY: "http://127.0.0.1:${PROXY}", PATH: "/usr/local/bin:/usr/bin:/bin"}
          task-python:
            kind: process
            inherit_env: false
            env: {HTTP_PROXY: "http://127.0.0.1:${PROXY}"}
        targets:
          api: {kind: http, url: "http://127.0.0.1:${HTTP}/health", expect_status: [200]}
          api-port: {kind: tcp, host: 127.0.0.1, port: "${HTTP}"}
        expect: [{status: ok}]
        """,
        env(loopback),
    )
    finding = only(result, "proxy-differs")
    proxy = f"http://127.0.0.1:{env(loopback)['PROXY']}"
    assert finding.severity == "error"  # unmet, and another source proves the target is up
    assert (
        finding.title
        == "task-python fails through a proxy where scheduler-curl connects directly and succeeds"
    )
    assert f"task-python goes through HTTP_PROXY={proxy}" in finding.detail
    assert "proxy-error (ECONNREFUSED)" in finding.detail
    assert "curl ignores upper-case HTTP_PROXY" in finding.detail
    assert "NO_PROXY is not set, so nothing exempts 127.0.0.1" in finding.detail
    assert cited(finding) == {("task-python", "api"), ("scheduler-curl", "api")}
    assert finding.next_step == (
        "Set NO_PROXY=127.0.0.1 in task-python's environment (the task's env); requests also "
        "reads a range such as 127.0.0.0/8. Or unset HTTP_PROXY there or disable proxies for "
        "requests (Session.trust_env = False)."
    )
    assert finding.facts["no_proxy_fix"]["cidr_accepted_by"] == ["requests", "curl"]
    assert finding.facts["proxy"]["variable"] == "HTTP_PROXY"
    check_golden(finding, "proxy-differs", ports(loopback))
    assert result.findings[0] is finding


def test_a_cidr_no_proxy_exempts_for_requests_but_not_for_httpx(loopback: LoopbackLab) -> None:
    result = run_text(
        """
        defaults: {timeout: 1s}
        sources:
          task-httpx:
            kind: process
            inherit_env: false
            http_client: httpx
            env: {HTTP_PROXY: "http://127.0.0.1:${PROXY}", NO_PROXY: "127.0.0.0/8"}
          task-requests:
            kind: process
            inherit_env: false
            http_client: requests
            env: {HTTP_PROXY: "http://127.0.0.1:${PROXY}", NO_PROXY: "127.0.0.0/8"}
        targets:
          api: {kind: http, url: "http://127.0.0.1:${HTTP}/health"}
          api-port: {kind: tcp, host: 127.0.0.1, port: "${HTTP}"}
        """,
        env(loopback),
    )
    finding = only(result, "proxy-differs")
    assert finding.severity == "error"
    assert finding.title.startswith("task-httpx fails through a proxy where task-requests")
    assert "NO_PROXY=127.0.0.0/8 is set but does not exempt 127.0.0.1 for httpx" in finding.detail
    assert (
        "(httpx does not read CIDR ranges: it reads 127.0.0.0/8 as the single address "
        "127.0.0.0)" in finding.detail
    )
    assert "NO_PROXY entry '127.0.0.0/8' exempts the host" in finding.detail  # the requests row
    assert set(finding.facts["exempt_for"]) == {"requests", "curl"}
    assert "httpx" in finding.facts["not_exempt_for"]
    assert finding.next_step.startswith(
        "Set NO_PROXY=127.0.0.0/8,127.0.0.1 in task-httpx's environment (the task's env); httpx "
        "ignores CIDR ranges in NO_PROXY: list the exact addresses (requests and curl read "
        "ranges). Or unset HTTP_PROXY there"
    )
    assert cited(finding) == {("task-httpx", "api"), ("task-requests", "api")}
    # Nothing else to say: tcp ignores proxies and works from both.
    assert [f.rule for f in result.findings] == ["proxy-differs"]


def test_a_declared_proxy_failure_only_explains(loopback: LoopbackLab) -> None:
    """The demo's expectations declare the bug: a met expectation is never a warning."""
    result = run_text(
        """
        defaults: {timeout: 1s}
        sources:
          direct: {kind: local, trust_env: false}
          proxied:
            kind: process
            inherit_env: false
            env: {HTTP_PROXY: "http://127.0.0.1:${PROXY}"}
        targets:
          api: {kind: http, url: "http://127.0.0.1:${HTTP}/health"}
          api-port: {kind: tcp, host: 127.0.0.1, port: "${HTTP}"}
        expect:
          - {status: ok}
          - {source: proxied, target: api, status: proxy-error}
        """,
        env(loopback),
    )
    finding = only(result, "proxy-differs")
    assert finding.severity == "info"
    assert not [f for f in result.findings if f.severity != "info"]


def test_urllib_with_a_cidr_no_proxy_is_told_to_list_the_address(loopback: LoopbackLab) -> None:
    """urllib reads NO_PROXY entries as name suffixes: 127.0.0.0/8 exempts nothing for it, so
    the advice is the exact address (checked with urllib's own rules), never 'use a range'."""
    result = run_text(
        """
        defaults: {timeout: 1s}
        sources:
          direct: {kind: local, trust_env: false}
          task-urllib:
            kind: process
            inherit_env: false
            http_client: urllib
            env: {HTTP_PROXY: "http://127.0.0.1:${PROXY}", NO_PROXY: "127.0.0.0/8"}
        targets:
          api: {kind: http, url: "http://127.0.0.1:${HTTP}/health"}
        """,
        env(loopback),
    )
    finding = only(result, "proxy-differs")
    assert (
        "NO_PROXY=127.0.0.0/8 is set but does not exempt 127.0.0.1 for urllib (urllib does not "
        "read CIDR ranges: it reads 127.0.0.0/8 as a suffix of the host name, which no address "
        "has); requests and curl would exempt it" in finding.detail
    )
    assert finding.next_step == (
        "Set NO_PROXY=127.0.0.0/8,127.0.0.1 in task-urllib's environment (the task's env); urllib "
        "ignores CIDR ranges in NO_PROXY: list the exact addresses (requests and curl read "
        "ranges). Or unset HTTP_PROXY there or disable proxies for urllib "
        "(urllib.request.build_opener(urllib.request.ProxyHandler({})))."
    )
    check_golden(finding, "proxy-differs-urllib-cidr", ports(loopback))
    fix = finding.facts["no_proxy_fix"]
    assert (fix["value"], fix["cidr_accepted_by"]) == (
        "127.0.0.0/8,127.0.0.1",
        ["requests", "curl"],
    )
