"""Diagnosis of one target working from one source and failing from another, on real network
namespaces (root): the story's scheduler is on the service's network, its worker is not.

    node (10.250.0.1, a listener) --veth-- scheduler (10.250.0.2)      worker (lo only)

Targets: the service at 10.250.0.1 (reached from scheduler, no route from worker) and the
loopback HTTP fixture (reached from this process, refused inside either namespace: 127.0.0.1
is every namespace's own loopback). Nothing leaves the machine: the namespaces have no default
route, and the service target is excluded for this process's own row.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from probe_engine.demo.fixtures import LoopbackLab
from probe_engine.results import Finding, MatrixResult

from .conftest import cell, require, run_text
from .golden import check_golden, ports

LISTENER = """
import socket, sys
s = socket.socket()
s.bind(("10.250.0.1", 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
sys.stdin.read()
"""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@dataclass(frozen=True)
class Namespaces:
    node: str
    scheduler: str
    worker: str
    port: int


@pytest.fixture(scope="module")
def namespaces() -> Iterator[Namespaces]:
    require(os.geteuid() == 0 and shutil.which("ip") is not None, "needs root and iproute2")
    tag = f"pediag{os.getpid()}"
    ns = Namespaces(f"{tag}n", f"{tag}s", f"{tag}w", 0)
    listener: subprocess.Popen[str] | None = None
    try:
        for name in (ns.node, ns.scheduler, ns.worker):
            ip("netns", "add", name)
            ip("-n", name, "link", "set", "lo", "up")
        ip(
            "-n",
            ns.node,
            "link",
            "add",
            "n0",
            "type",
            "veth",
            "peer",
            "name",
            "s0",
            "netns",
            ns.scheduler,
        )
        ip("-n", ns.node, "addr", "add", "10.250.0.1/24", "dev", "n0")
        ip("-n", ns.scheduler, "addr", "add", "10.250.0.2/24", "dev", "s0")
        ip("-n", ns.node, "link", "set", "n0", "up")
        ip("-n", ns.scheduler, "link", "set", "s0", "up")
        listener = subprocess.Popen(
            ["ip", "netns", "exec", ns.node, sys.executable, "-c", LISTENER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert listener.stdout is not None
        port = int(listener.stdout.readline())
        yield Namespaces(ns.node, ns.scheduler, ns.worker, port)
    finally:
        if listener is not None:
            listener.kill()
            listener.wait()
        for name in (ns.node, ns.scheduler, ns.worker):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


@pytest.fixture(scope="module")
def result(namespaces: Namespaces, loopback: LoopbackLab) -> MatrixResult:
    return run_text(
        """
        defaults: {timeout: 1s}
        sources:
          here: {kind: local, trust_env: false}
          scheduler: {kind: netns, name: "${SCHED}"}
          worker: {kind: netns, name: "${WORKER}"}
        targets:
          svc: {kind: tcp, host: 10.250.0.1, port: "${SVC}"}
          loop: {kind: tcp, host: 127.0.0.1, port: "${HTTP}"}
        exclude: [{source: here, target: svc}]
        expect: [{status: ok}]
        """,
        {
            "SCHED": namespaces.scheduler,
            "WORKER": namespaces.worker,
            "SVC": str(namespaces.port),
            "HTTP": str(loopback.http_port),
        },
    )


def findings(result: MatrixResult, rule: str) -> list[Finding]:
    return [f for f in result.findings if f.rule == rule]


def cited(finding: Finding) -> set[tuple[str, str]]:
    return {(e.source, e.target) for e in finding.evidence}


def test_the_lab_gives_the_expected_cells(result: MatrixResult) -> None:
    assert cell(result, "scheduler", "svc").status == "ok"
    assert cell(result, "here", "loop").status == "ok"
    assert cell(result, "scheduler", "loop").checks[0].errno_name == "ECONNREFUSED"
    assert cell(result, "worker", "loop").checks[0].errno_name == "ECONNREFUSED"
    assert cell(result, "worker", "svc").checks[0].errno_name == "ENETUNREACH"


def test_a_worker_off_the_network_is_one_row_finding_naming_the_missing_route(
    result: MatrixResult,
) -> None:
    [finding] = findings(result, "source-down")
    assert finding.severity == "error"
    assert finding.title == (
        "Everything from worker fails (2 cells) while scheduler and here reach the same targets"
    )
    detail = finding.detail
    # Most likely cause first: the loopback is per namespace, then the missing route.
    assert "worker has no route to 10.250.0.1 (and no default route)" in detail
    assert "scheduler has routes for it: 10.250.0.1 (10.250.0.0/24 dev s0)" in detail
    assert "127.0.0.1 is the loopback of each network namespace" in detail
    assert "scheduler has an address on 10.250.0.0/24 (10.250.0.2); worker has none" in detail
    assert "192.0.2" not in detail  # this host's own networks are beside the point
    assert "unreachable (ENETUNREACH)" in detail and "refused (ECONNREFUSED)" in detail
    assert cited(finding) == {
        ("worker", "svc"),
        ("worker", "loop"),
        ("scheduler", "svc"),
        ("here", "loop"),
    }
    assert "Make the service listen on an address worker can reach" in finding.next_step
    assert finding.facts["routes"]["10.250.0.1"] == {
        "worker": None,
        "scheduler": "10.250.0.0/24 dev s0",
    }


def test_the_loopback_of_another_namespace_is_named_as_the_difference(
    result: MatrixResult, loopback: LoopbackLab
) -> None:
    [finding] = findings(result, "source-differs")
    assert finding.title == "scheduler fails where here succeeds: loop"
    assert finding.severity == "error"
    assert cited(finding) == {("scheduler", "loop"), ("here", "loop")}
    assert "From scheduler: loop: refused (ECONNREFUSED)" in finding.detail
    assert "127.0.0.1 is the loopback of each network namespace: scheduler (net:[" in finding.detail
    assert "a service listening on here's loopback is invisible to scheduler" in finding.detail
    netns = finding.facts["netns"]
    assert netns["scheduler"] != netns["here"]
    check_golden(finding, "source-differs", ports(loopback))


def test_no_cell_is_explained_twice(result: MatrixResult) -> None:
    seen: set[tuple[str, str]] = set()
    for finding in result.findings:
        failing = {(e.source, e.target) for e in finding.evidence if e.status != "ok"}
        assert failing - seen, f"{finding.rule} only repeats: {finding.title}"
        seen |= failing
    assert {f.rule for f in result.findings} == {"source-down", "source-differs"}
