"""No self-connects: a connect to a closed port in the ephemeral range can be answered by its
own SYN when the kernel picks that very port as the source (TCP simultaneous open). The
connection's local end is then its peer; the port is closed, and every prober must say so.

Made certain, not waited for: each prober runs in a network namespace of its own whose
ephemeral range is the single port probed, so the kernel has no other source port to pick.
(One connect per namespace: the self-connection's TIME_WAIT holds the only port after it.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from .conftest import cell, require, run_text

PORT = 40123
PROBERS = ["agent", "curl", "nc", "bash", "wget"]

root = pytest.mark.root


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def namespaces() -> Iterator[dict[str, str]]:
    require(os.geteuid() == 0, "network namespaces need root")
    require(shutil.which("ip") is not None, "iproute2 is not installed")
    prefix = os.environ.get("NETLAB_PREFIX", "pe-test")
    names = {prober: f"{prefix}-self-{prober}" for prober in PROBERS}
    made = []
    try:
        for name in names.values():
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
            _ip("netns", "add", name)
            made.append(name)
            _ip("-n", name, "link", "set", "lo", "up")
            _ip(
                "netns",
                "exec",
                name,
                "sysctl",
                "-qw",
                f"net.ipv4.ip_local_port_range={PORT} {PORT}",
            )
        yield names
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


@root
def test_every_prober_reports_a_self_connect_as_the_closed_port_it_is(
    namespaces: dict[str, str],
) -> None:
    for tool in PROBERS[1:]:
        require(shutil.which(tool) is not None, f"{tool} is not installed")
    rows = []
    for prober, name in namespaces.items():
        tool = "" if prober == "agent" else f", tool: {prober}"
        rows.append(f"  {prober}: {{kind: netns, name: {name}, inherit_env: false{tool}}}")
    text = "defaults: {timeout: 5s}\nsources:\n" + "\n".join(rows)
    text += f"\ntargets:\n  closed: {{kind: tcp, host: 127.0.0.1, port: {PORT}}}\n"
    result = run_text(text)
    for prober in PROBERS:
        found = cell(result, prober, "closed")
        assert found.status == "refused", (prober, found.model_dump(include={"checks"}))
        (check,) = found.checks
        assert check.errno_name == "ECONNREFUSED"
        assert check.message is not None and "connected to itself" in check.message, prober
        if prober == "agent":  # the agent says from where: the port's own address
            assert check.source_address == "127.0.0.1"
