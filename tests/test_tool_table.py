"""Tools as users run them, without artefacts: a tcp cell through curl, wget, nc or bash ends
when the connection is established or refused, as the local row's does. What the server does
next (close at once, send a banner, stay silent) is not the network's answer.

The loopback half needs no root: a port that closes at once, one that sends a banner, one that
stays silent, a closed port, and a full accept queue (the connect is never answered: a
blackhole). The namespace half (root) adds a DROP rule and a name the lab's DNS does not know
(never the machine's resolver).
"""

from __future__ import annotations

import shutil

import pytest

from probe_engine.demo.fixtures import LoopbackLab
from tests.lab.netlab import Lab

from .conftest import cell, require, run_text

TOOLS = ["curl", "wget", "nc", "bash"]
LOOPBACK_TARGETS = ["closes", "banner", "silent", "refused", "blackholed"]
OPEN_TIMEOUT = 10.0  # seconds: an open port must answer long before; the table shows it


@pytest.fixture(scope="module")
def table(loopback: LoopbackLab):  # type: ignore[no-untyped-def]
    for tool in TOOLS:
        require(shutil.which(tool) is not None, f"{tool} is not installed")
    sources = "\n".join(
        f"  {tool}: {{kind: shell, tool: {tool}, inherit_env: false, env: {{PATH: /usr/bin:/bin}}}}"
        for tool in TOOLS
    )
    text = f"""
defaults: {{timeout: {OPEN_TIMEOUT:g}s}}
sources:
  here: {{kind: local, trust_env: false}}
{sources}
targets:
  closes:     {{kind: tcp, host: 127.0.0.1, port: {loopback.closing.port}}}
  banner:     {{kind: tcp, host: 127.0.0.1, port: {loopback.banner.port}}}
  silent:     {{kind: tcp, host: 127.0.0.1, port: {loopback.hanging.port}}}
  refused:    {{kind: tcp, host: 127.0.0.1, port: {loopback.closed_port}}}
  blackholed: {{kind: tcp, host: 127.0.0.1, port: {loopback.backlog.port}, timeout: 2s}}
"""
    return run_text(text)


def test_the_local_row_is_the_reference(table) -> None:  # type: ignore[no-untyped-def]
    expected = {
        "closes": "ok",
        "banner": "ok",
        "silent": "ok",
        "refused": "refused",
        "blackholed": "timeout",
    }
    assert {t: cell(table, "here", t).status for t in LOOPBACK_TARGETS} == expected


@pytest.mark.parametrize("tool", TOOLS)
def test_each_tool_gives_the_local_rows_status(table, tool: str) -> None:  # type: ignore[no-untyped-def]
    got = {t: cell(table, tool, t).status for t in LOOPBACK_TARGETS}
    want = {t: cell(table, "here", t).status for t in LOOPBACK_TARGETS}
    assert got == want, {t: cell(table, tool, t).model_dump(include={"checks"}) for t in got}


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("target", ["closes", "banner", "silent"])
def test_an_open_port_ends_at_the_connect_not_at_the_deadline(
    table, tool: str, target: str
) -> None:  # type: ignore[no-untyped-def]
    found = cell(table, tool, target)
    (check,) = found.checks
    assert (check.name, check.status) == ("tcp", "ok")
    # Not a speed goal: a tool that waited for the server would have hit the deadline.
    assert found.duration_ms < OPEN_TIMEOUT * 1000 / 2


@pytest.fixture(scope="module")
def lab_table(netlab: Lab):  # type: ignore[no-untyped-def]
    """From the lab's scheduler namespace: the agent and each tool, against an open NodePort,
    a closed port, a DROP rule and a name the lab's DNS answers NXDOMAIN for."""
    for tool in TOOLS:
        require(shutil.which(tool) is not None, f"{tool} is not installed")
    ns = netlab.scheduler_ns
    sources = "\n".join(
        f"  {tool}: {{kind: netns, name: {ns}, tool: {tool}, inherit_env: false}}" for tool in TOOLS
    )
    text = f"""
defaults: {{timeout: {OPEN_TIMEOUT:g}s}}
sources:
  agent: {{kind: netns, name: {ns}, inherit_env: false}}
{sources}
targets:
  open:       {{kind: tcp, host: {netlab.node_ip}, port: {netlab.node_port}}}
  refused:    {{kind: tcp, host: {netlab.node_ip}, port: {netlab.closed_port}}}
  blackholed: {{kind: tcp, host: {netlab.node_ip}, port: {netlab.drop_port}, timeout: 1s}}
  unresolvable: {{kind: tcp, host: {netlab.unknown_name}, port: 80}}
"""
    return run_text(text)


LAB_TARGETS = ["open", "refused", "blackholed", "unresolvable"]


@pytest.mark.root
def test_in_the_lab_the_agent_row_is_the_reference(lab_table) -> None:  # type: ignore[no-untyped-def]
    got = {t: cell(lab_table, "agent", t).status for t in LAB_TARGETS}
    assert got == {
        "open": "ok",
        "refused": "refused",
        "blackholed": "timeout",
        "unresolvable": "dns-error",
    }


@pytest.mark.root
@pytest.mark.parametrize("tool", TOOLS)
def test_in_the_lab_each_tool_gives_the_agents_status(lab_table, tool: str) -> None:  # type: ignore[no-untyped-def]
    got = {t: cell(lab_table, tool, t).status for t in LAB_TARGETS}
    want = {t: cell(lab_table, "agent", t).status for t in LAB_TARGETS}
    assert got == want, {t: cell(lab_table, tool, t).model_dump(include={"checks"}) for t in got}
