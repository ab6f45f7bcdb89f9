"""The story in miniature, on real kernels: configs/lab.yaml run on the network-namespace lab.

The scheduler reaches the API by NodePort, ClusterIP and name; the worker, off the minikube
network, fails every one of them; each blocked port answers with its own errno. Every cell's
status AND errno come from the kernel (iptables, routing tables, dnsmasq), nothing is mocked.

Root namespace rule: lab names are only ever resolved inside lab namespaces (their
resolv.conf points at the lab's DNS server), and a `local` source probes lab addresses only
while the lab's `unreachable` guard routes are in place, so nothing leaves this machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest

from probe_engine import MatrixResult, RunOptions, run_matrix
from probe_engine.errors import SpecError
from probe_engine.results import CellResult, CheckRecord
from probe_engine.sources.netns import effective_capabilities, explain_failure
from probe_engine.spec import load_matrix, load_matrix_text
from tests.conftest import cell, require, run_text
from tests.lab.netlab import Lab, guard_routes_present, in_netns, tool

REPO = Path(__file__).resolve().parents[1]
LAB_MATRIX = REPO / "configs" / "lab.yaml"
DROP_TIMEOUT = 1.0  # configs/lab.yaml's deadline for the DROP cells, and what the test passes
root = pytest.mark.root

# What each source sees of each target: "ok", "timeout" (our deadline) or the errno / resolver
# code of the failing check. The status follows from it (ERRNO_STATUS below).
TARGETS = (
    "nodeport",
    "clusterip",
    "pod-ip",
    "service-dns",
    "service-short",
    "drop",
    "reject",
    "prohibit",
    "reset",
    "closed",
    "unrouted",
    "unknown-name",
)
# fmt: off
GRID: dict[str, tuple[str, ...]] = {
    #                nodeport       clusterip      pod-ip         service-dns  service-short
    #                drop           reject         prohibit       reset           closed
    #                unrouted       unknown-name
    "scheduler":      ("ok",          "ok",          "ENETUNREACH", "ok",        "ok",
                       "timeout",     "EHOSTUNREACH", "EHOSTUNREACH", "ECONNREFUSED", "ECONNREFUSED",
                       "ENETUNREACH", "EAI_NONAME"),
    # curl through the shell prober; names by getent, whose "not found" is NXDOMAIN.
    "scheduler-curl": ("ok",          "ok",          "ENETUNREACH", "ok",        "ok",
                       "timeout",     "EHOSTUNREACH", "EHOSTUNREACH", "ECONNREFUSED", "ECONNREFUSED",
                       "ENETUNREACH", "NXDOMAIN"),
    # Off the minikube network: no route to any lab address, its nameserver included.
    "worker":         ("ENETUNREACH", "ENETUNREACH", "ENETUNREACH", "EAI_AGAIN", "EAI_AGAIN",
                       "ENETUNREACH", "ENETUNREACH", "ENETUNREACH", "ENETUNREACH", "ENETUNREACH",
                       "ENETUNREACH", "EAI_AGAIN"),
    "node":           ("ok",          "ok",          "ok",          "ok",        "ok",
                       "timeout",     "EHOSTUNREACH", "EHOSTUNREACH", "ECONNREFUSED", "ECONNREFUSED",
                       "ENETUNREACH", "EAI_NONAME"),
    # The pod resolves the Service, but has no route to the service CIDR.
    "pod":            ("ok",          "ENETUNREACH", "ok",          "ok",        "ENETUNREACH",
                       "timeout",     "EHOSTUNREACH", "EHOSTUNREACH", "ECONNREFUSED", "ECONNREFUSED",
                       "ENETUNREACH", "EAI_NONAME"),
}
# fmt: on
ERRNO_STATUS = {
    "ok": "ok",
    "timeout": "timeout",
    "ENETUNREACH": "unreachable",
    "EHOSTUNREACH": "unreachable",
    "ECONNREFUSED": "refused",
    "EAI_NONAME": "dns-error",
    "EAI_AGAIN": "dns-error",
    "NXDOMAIN": "dns-error",
}
CELLS = [(row, target, GRID[row][i]) for row in GRID for i, target in enumerate(TARGETS)]


def lab_run(lab: Lab, text: str, environ: Mapping[str, str] | None = None) -> MatrixResult:
    """Run a matrix text with the lab's ${NETLAB_*} variables (and `environ`)."""
    return run_text(text, {**lab.matrix_environ(), **(environ or {})})


def failing_check(found: CellResult) -> CheckRecord | None:
    return next((c for c in found.checks if c.status != "ok"), None)


@pytest.fixture(scope="module")
def lab_result(netlab: Lab) -> MatrixResult:
    """configs/lab.yaml, run once on the lab for every test of this module."""
    environ = {**netlab.matrix_environ(), "NETLAB_DROP_TIMEOUT": f"{DROP_TIMEOUT}s"}
    loaded = load_matrix(LAB_MATRIX, environ)
    result = anyio.run(run_matrix, loaded, RunOptions())
    drops = [c.duration_ms for c in result.cells if c.target == "drop" and c.status == "timeout"]
    # The measurements of the issue, shown with `pytest -s`.
    print(
        f"\nlab up {netlab.up_seconds:.3f} s; lab matrix {len(result.cells)} cells in "
        f"{result.duration_s:.3f} s (longest timeout {DROP_TIMEOUT} s, ratio "
        f"{result.duration_s / DROP_TIMEOUT:.2f}); DROP cells {', '.join(f'{d:.0f}' for d in drops)} ms"
    )
    return result


# --------------------------------------------------------------------------- the matrix


@root
@pytest.mark.parametrize(
    ("row", "target", "answer"), CELLS, ids=[f"{r}-{t}={a}" for r, t, a in CELLS]
)
def test_every_cell_has_the_kernels_status_and_errno(
    lab_result: MatrixResult, row: str, target: str, answer: str
) -> None:
    found = cell(lab_result, row, target)
    check = failing_check(found)
    assert found.status == ERRNO_STATUS[answer], found.model_dump_json(indent=1)
    if answer == "ok":
        assert check is None
        return
    assert check is not None
    # A timeout is our deadline (no errno), never the kernel's ETIMEDOUT.
    expected_errno_name = None if answer == "timeout" else answer
    assert check.errno_name == expected_errno_name, found.model_dump_json(indent=1)
    assert found.met is True  # configs/lab.yaml's expectation agrees with the kernel


@root
def test_lab_matrix_meets_every_expectation(lab_result: MatrixResult) -> None:
    assert lab_result.summary.total == len(CELLS)
    assert lab_result.summary.expectations.unmet == 0
    assert lab_result.summary.expectations.none == 0
    assert lab_result.exit_status == 0


@root
def test_the_worker_fails_every_target_the_scheduler_reaches(lab_result: MatrixResult) -> None:
    reached = [t for t in TARGETS if cell(lab_result, "scheduler", t).status == "ok"]
    assert reached == ["nodeport", "clusterip", "service-dns", "service-short"]
    assert {t: cell(lab_result, "worker", t).status for t in reached} == {
        "nodeport": "unreachable",
        "clusterip": "unreachable",
        "service-dns": "dns-error",
        "service-short": "dns-error",
    }


@root
def test_reachable_cells_got_the_pods_health_answer(lab_result: MatrixResult) -> None:
    for row in ("scheduler", "scheduler-curl", "node", "pod"):
        found = cell(lab_result, row, "nodeport")
        http = [c for c in found.checks if c.name == "http"]
        assert [c.http_status for c in http] == [200], row
    dns = cell(lab_result, "scheduler", "service-dns").checks[0]
    assert dns.addresses == ["10.104.33.17"]


@root
def test_dns_errors_tell_nxdomain_from_an_unreachable_nameserver(
    lab_result: MatrixResult,
) -> None:
    scheduler = failing_check(cell(lab_result, "scheduler", "unknown-name"))
    worker = failing_check(cell(lab_result, "worker", "unknown-name"))
    assert scheduler is not None and worker is not None
    assert (scheduler.errno_name, scheduler.reason) == ("EAI_NONAME", "nxdomain")
    assert (worker.errno_name, worker.reason) == ("EAI_AGAIN", "no-answer")


@root
def test_drop_cells_end_on_the_per_cell_timeout_not_the_kernels(
    lab_result: MatrixResult,
) -> None:
    # The kernel would give up after ~3 s here (tcp_syn_retries=1), after ~2 min by default.
    for row in ("scheduler", "scheduler-curl", "node", "pod"):
        found = cell(lab_result, row, "drop")
        seconds = found.duration_ms / 1000
        assert found.status == "timeout"
        assert seconds >= DROP_TIMEOUT * 0.95, (row, seconds)  # never before the deadline
        check = failing_check(found)
        assert check is not None and check.errno is None, (row, check)


@root
def test_a_timeout_longer_than_the_kernels_shows_the_kernels_etimedout(netlab: Lab) -> None:
    # The other side of the line: given 5 s, the kernel gives up first (~3 s here with
    # tcp_syn_retries=1) and its ETIMEDOUT is kept, so a report tells the two apart.
    result = lab_run(
        netlab,
        """
        defaults: {timeout: 5s}
        sources:
          scheduler: {kind: netns, name: "${NETLAB_SCHEDULER_NS}", inherit_env: false}
        targets:
          drop: {kind: tcp, host: "${NETLAB_NODE_IP}", port: "${NETLAB_DROP_PORT}"}
        """,
    )
    found = cell(result, "scheduler", "drop")
    check = failing_check(found)
    assert (found.status, check and check.errno_name) == ("timeout", "ETIMEDOUT")
    assert found.duration_ms / 1000 > 2.5  # the kernel's own give-up time


# --------------------------------------------------------------------------- the netns facts


@root
def test_each_row_reports_its_namespace_routes_and_resolver(
    lab_result: MatrixResult, netlab: Lab
) -> None:
    facts = {s.name: s.facts for s in lab_result.sources}
    namespaces = {
        "scheduler": netlab.scheduler_ns,
        "scheduler-curl": netlab.scheduler_ns,
        "worker": netlab.worker_ns,
        "node": netlab.node_ns,
        "pod": netlab.pod_ns,
    }
    for row, namespace in namespaces.items():
        seen = facts[row]
        assert seen["netns_name"] == namespace
        inode = os.stat(f"/run/netns/{namespace}").st_ino
        assert seen["netns"] == f"net:[{inode}]", row
        assert seen["default_route"] is False, row
        assert seen["resolv_conf"]["search"] == list(netlab.search_domains), row
        assert seen["resolv_conf"]["nameservers"] == [netlab.dns_ip], row
    inodes = {facts[row]["netns"] for row in ("scheduler", "worker", "node", "pod")}
    assert len(inodes) == 4  # four rows, four namespaces
    assert facts["scheduler"]["netns"] != Path("/proc/self/ns/net").readlink().name
    assert netlab.scheduler_ip in facts["scheduler"]["addresses"]
    assert netlab.scheduler_ip in facts["scheduler-curl"]["addresses"]
    assert facts["scheduler-curl"]["tool"] == "curl"
    worker_routes = [r["destination"] for r in facts["worker"]["routes"]]
    assert worker_routes == [netlab.worker_subnet]  # nothing of the minikube network


# --------------------------------------------------------------------------- source errors


@root
def test_a_missing_namespace_is_a_source_error_while_the_other_rows_complete(
    netlab: Lab,
) -> None:
    result = lab_run(
        netlab,
        """
        defaults: {timeout: 1s}
        sources:
          scheduler: {kind: netns, name: "${NETLAB_SCHEDULER_NS}", inherit_env: false}
          ghost: {kind: netns, name: "${NETLAB_SCHEDULER_NS}-ghost", inherit_env: false}
          ghost-curl: {kind: netns, name: "${NETLAB_SCHEDULER_NS}-ghost", tool: curl}
        targets:
          nodeport: {kind: tcp, host: "${NETLAB_NODE_IP}", port: "${NETLAB_NODE_PORT}"}
          closed: {kind: tcp, host: "${NETLAB_NODE_IP}", port: "${NETLAB_CLOSED_PORT}"}
        """,
    )
    assert cell(result, "scheduler", "nodeport").status == "ok"
    assert cell(result, "scheduler", "closed").status == "refused"
    ghost = f"{netlab.scheduler_ns}-ghost"
    for row in ("ghost", "ghost-curl"):
        for target in ("nodeport", "closed"):
            found = cell(result, row, target)
            assert found.status == "source-error"
            assert found.message is not None
            assert found.message.startswith(
                f"network namespace {ghost!r} does not exist (no /run/netns/{ghost}; present: "
            )
            assert netlab.scheduler_ns in found.message  # what does exist, to spot a typo
    rows = {s.name: s for s in result.sources}
    assert (rows["ghost"].status, rows["scheduler"].status) == ("error", "ok")


@root
def test_a_missing_interpreter_in_the_namespace_is_a_source_error_naming_it(
    netlab: Lab,
) -> None:
    result = lab_run(
        netlab,
        """
        sources:
          scheduler: {kind: netns, name: "${NETLAB_SCHEDULER_NS}", python: /nonexistent/python3}
        targets:
          nodeport: {kind: tcp, host: "${NETLAB_NODE_IP}", port: "${NETLAB_NODE_PORT}"}
        """,
    )
    found = cell(result, "scheduler", "nodeport")
    assert found.status == "source-error"
    assert found.message == (
        f"in network namespace {netlab.scheduler_ns!r}: the agent exited with status 1: "
        'exec of "/nonexistent/python3" failed: No such file or directory'
    )


@root
def test_without_cap_sys_admin_the_row_is_a_source_error(netlab: Lab, tmp_path: Path) -> None:
    # Root, but with CAP_SYS_ADMIN dropped from the bounding set: as in an unprivileged
    # container. The engine runs for real (the CLI), only its privileges are cut.
    setpriv = tool("setpriv")
    require(setpriv is not None, "setpriv (util-linux) is needed to drop a capability")
    assert setpriv is not None
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        "sources:\n"
        f"  scheduler: {{kind: netns, name: {netlab.scheduler_ns}, inherit_env: false}}\n"
        "targets:\n"
        f"  nodeport: {{kind: tcp, host: {netlab.node_ip}, port: {netlab.node_port}}}\n"
    )
    proc = subprocess.run(
        [
            setpriv,
            "--bounding-set=-sys_admin",
            sys.executable,
            "-m",
            "probe_engine",
            "run",
            str(matrix),
            "--no-reports",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr  # no expectation declared: nothing unmet
    found = json.loads(proc.stdout)["cells"][0]
    assert found["status"] == "source-error"
    assert found["message"] == (
        f"entering network namespace {netlab.scheduler_ns!r} needs root (CAP_SYS_ADMIN); "
        "probe-engine runs as root without that capability (a container without --privileged?)"
    )


@root
def test_ip_netns_exec_refusals_are_explained(netlab: Lab) -> None:
    # The words of the real `ip`, when it cannot enter: a vanished namespace, no privilege.
    setpriv = tool("setpriv")
    require(setpriv is not None, "setpriv (util-linux) is needed to drop a capability")
    assert setpriv is not None
    missing = subprocess.run(
        in_netns(f"{netlab.prefix}-vanished", ["true"]), capture_output=True, text=True, check=False
    )
    refused = subprocess.run(
        [setpriv, "--bounding-set=-sys_admin", *in_netns(netlab.scheduler_ns, ["true"])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "the namespace does not exist" in explain_failure("x", missing.stderr)
    assert "needs root (CAP_SYS_ADMIN)" in explain_failure("x", refused.stderr)
    assert effective_capabilities("Name:\tx\nCapEff:\t000001fffedfffff\n") == 0x1FFFEDFFFFF


# --------------------------------------------------------------------------- the root namespace


@root
def test_from_the_root_namespace_lab_addresses_hit_the_guard_routes(netlab: Lab) -> None:
    # The machine itself is not on the lab's networks: a `local` probe of a lab address must
    # fail here, at the guard route, and never follow the default route off the machine.
    assert sorted(guard_routes_present(netlab.prefix)) == sorted(netlab.guard_cidrs)
    result = lab_run(
        netlab,
        """
        defaults: {timeout: 1s}
        sources:
          here: {kind: local, trust_env: false}
        targets:
          nodeport: {kind: tcp, host: "${NETLAB_NODE_IP}", port: "${NETLAB_NODE_PORT}"}
          clusterip: {kind: tcp, host: "${NETLAB_CLUSTER_IP}", port: "${NETLAB_SERVICE_PORT}"}
          pod-ip: {kind: tcp, host: "${NETLAB_POD_IP}", port: "${NETLAB_POD_PORT}"}
        """,
    )
    for target in ("nodeport", "clusterip", "pod-ip"):
        found = cell(result, "here", target)
        check = failing_check(found)
        assert (found.status, check and check.errno_name) == ("unreachable", "EHOSTUNREACH")


# --------------------------------------------------------------------------- the spec


def test_lab_yaml_defaults_are_the_default_labs() -> None:
    # `python -m tests.lab.netlab up && probe-engine run configs/lab.yaml` must work by hand.
    by_hand = load_matrix(LAB_MATRIX, {}).matrix
    default_lab = load_matrix(LAB_MATRIX, Lab(prefix="pe").matrix_environ()).matrix
    assert by_hand == default_lab


def test_lab_yaml_follows_the_lab_it_is_given() -> None:
    lab = Lab(prefix="pe-other")
    matrix = load_matrix(LAB_MATRIX, lab.matrix_environ()).matrix
    names = {name: getattr(spec, "name", None) for name, spec in matrix.sources.items()}
    assert names == {
        "scheduler": "pe-other-sched",
        "scheduler-curl": "pe-other-sched",
        "worker": "pe-other-worker",
        "node": "pe-other-node",
        "pod": "pe-other-pod",
    }
    assert {spec.kind for spec in matrix.sources.values()} == {"netns"}  # no root-ns source


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "{kind: netns}",
            "test.yaml:3:6: sources.s.name: required",
        ),
        (
            "{kind: netns, name: ../etc}",
            "test.yaml:3:26: sources.s.name: '../etc' is not a valid name: "
            "use letters, digits, '.', '_' and '-'",
        ),
        (
            "{kind: netns, name: x, tool: curl, python: python3}",
            "test.yaml:3:6: sources.s: python applies to the Python agent, not to tool: curl",
        ),
        (
            "{kind: netns, name: x, tool: telnet}",
            "test.yaml:3:35: sources.s.tool: 'telnet' is not one of: curl, wget, bash or nc",
        ),
        (
            "{kind: netns, name: x, namespace: y}",
            "test.yaml:3:29: sources.s.namespace: unknown key: did you mean 'name'?",
        ),
    ],
)
def test_bad_netns_sources_are_refused_with_their_position(source: str, message: str) -> None:
    text = f"version: 1\nsources:\n  s: {source}\ntargets:\n  t: {{kind: tcp, host: h, port: 1}}\n"
    with pytest.raises(SpecError) as caught:
        load_matrix_text(text, "test.yaml", {})
    assert str(caught.value).splitlines()[0] == message


def test_a_netns_source_with_every_option_validates() -> None:
    text = """
    sources:
      agent: {kind: netns, name: s, python: python3, http_client: httpx, trust_env: false,
              env: {HTTP_PROXY: "http://proxy:3128"}, inherit_env: false, description: d}
      curl: {kind: netns, name: s, tool: curl, env: {http_proxy: "http://proxy:3128"}}
    targets:
      t: {kind: tcp, host: h, port: 1}
    """
    sources: dict[str, Any] = dict(load_matrix_text(text, "t.yaml", {}).matrix.sources)
    assert (sources["agent"].http_client, sources["curl"].tool) == ("httpx", "curl")
