"""The diagnosis never blames the network for a tool: two rows in the same place that took the
same path and differ only in what ran the probe get a finding that says so, with the tool's own
words, and no network cause (no firewall, no route) in the advice."""

from __future__ import annotations

import shutil

import pytest

from probe_engine.demo.fixtures import LoopbackLab
from tests.lab.netlab import Lab

from .conftest import cell, require, run_text
from .golden import check_golden, ports


def test_a_tool_that_drops_the_header_is_told_as_the_tool(loopback: LoopbackLab) -> None:
    require(shutil.which("nc") is not None, "nc is not installed")
    text = f"""
defaults: {{timeout: 5s}}
sources:
  here: {{kind: local, trust_env: false}}
  nc:   {{kind: shell, tool: nc, inherit_env: false, env: {{PATH: /usr/bin:/bin}}}}
targets:
  guarded: {{kind: http, url: "http://127.0.0.1:{loopback.http_port}/needs-header", headers: {{X-Probe: "1"}}}}
"""
    result = run_text(text)
    assert cell(result, "here", "guarded").status == "ok"
    assert cell(result, "nc", "guarded").status == "http-error"  # nc's request has no headers
    (finding,) = [f for f in result.findings if f.rule == "source-differs"]
    assert finding.title == "nc fails where here succeeds on the same path: only the tool differs"
    assert finding.facts["only_the_tool_differs"] is True
    assert "HTTP 401" in finding.detail
    assert "firewall" not in (finding.detail + finding.next_step).lower()
    assert finding.next_step.startswith("The network is not the cause")
    check_golden(finding, "source-differs-tool-only", ports(loopback))


@pytest.mark.root
def test_a_tool_in_another_namespace_is_compared_on_the_path(
    loopback: LoopbackLab,
    netlab: Lab,
) -> None:
    """curl in the lab's scheduler namespace against this machine's loopback service: it
    fails, and the tool differs too, but the finding rests on the path (each namespace has its
    own loopback), never on "only the tool"."""
    require(shutil.which("curl") is not None, "curl is not installed")
    text = f"""
defaults: {{timeout: 5s}}
sources:
  here: {{kind: local, trust_env: false}}
  sched-curl: {{kind: netns, name: {netlab.scheduler_ns}, tool: curl, inherit_env: false}}
targets:
  api: {{kind: tcp, host: 127.0.0.1, port: {loopback.http_port}}}
"""
    result = run_text(text)
    assert cell(result, "sched-curl", "api").status == "refused"
    (finding,) = [f for f in result.findings if f.rule == "source-differs"]
    assert "only_the_tool_differs" not in finding.facts
    assert "loopback of each network namespace" in finding.detail
