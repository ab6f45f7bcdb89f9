"""The `kubernetes-nodes` source: one probe pod per node through the Kubernetes test server,
whose scheduler and kubelet (tests/kubelab) bind and run real processes; the agent's results
come back on the pod's log. On loopback, nodes run their pods on this machine (no root); on the
network-namespace lab (root), each node is a namespace and each pod a namespace wired to it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from probe_engine import MatrixResult
from probe_engine.demo.fixtures import LoopbackLab
from probe_engine.results import SourceInfo
from tests.conftest import cell, require, run_text
from tests.kubelab import apiserver as kl
from tests.kubelab.apiserver.kubelet import Image, NodeRuntime
from tests.kubelab.apiserver.store import Change
from tests.kubelab.nodelab import NodeLab
from tests.lab.netlab import Lab

pytestmark = [pytest.mark.kubernetes]

NS = "probe-engine"
CONTROL_PLANE = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


@pytest.fixture
def cluster(kube_apiserver: kl.ApiServer) -> Iterator[kl.ApiServer]:
    """node-a and node-b run pods on this machine; cp-0 is a tainted control plane; the
    namespace probe-engine exists. Every pod the API creates is recorded in `created`."""
    store = kube_apiserver.store
    for index, name in enumerate(("node-a", "node-b", "cp-0")):
        ip = f"127.0.0.{index + 2}"
        labels = {"node-role.kubernetes.io/control-plane": ""} if name == "cp-0" else None
        taints = [CONTROL_PLANE] if name == "cp-0" else []
        store.put(kl.node(name, ip, labels=labels, taints=taints))
        kube_apiserver.kubelet.add_node(name, NodeRuntime(node_ip=ip))
    store.put({"kind": "Namespace", "metadata": {"name": NS}})
    yield kube_apiserver
    kube_apiserver.settle()


def created_pods(server: kl.ApiServer) -> list[dict[str, Any]]:
    """Every pod created from now on, as it was created (recorded by a store listener)."""
    seen: list[dict[str, Any]] = []

    def record(change: Change) -> None:
        if change.type == "ADDED" and change.kind == "Pod":
            seen.append(change.object)

    server.store.watch("Pod", record, None)
    return seen


def nodes_matrix(
    kubeconfig: Path, loopback: LoopbackLab, source: str = "", extra_targets: str = ""
) -> str:
    return f"""
kubernetes: {{kubeconfig: '{kubeconfig}'}}
defaults: {{timeout: 2s}}
sources:
  nodes: {{kind: kubernetes-nodes, namespace: {NS}, python: {sys.executable}{source}}}
targets:
  api: {{kind: http, url: "http://127.0.0.1:{loopback.http_port}/health"}}
  closed: {{kind: tcp, host: 127.0.0.1, port: {loopback.closed_port}}}{extra_targets}
"""


def rows(result: MatrixResult) -> dict[str, SourceInfo]:
    return {info.name: info for info in result.sources}


def assert_nothing_left(server: kl.ApiServer) -> None:
    server.settle()
    assert server.store.list("Pod", NS) == []
    assert server.kubelet.pods == {}
    assert server.kubelet.namespaces() == []


def test_every_node_gets_one_short_lived_pinned_labelled_pod_and_is_one_row(
    cluster: kl.ApiServer, kubeconfig: Path, loopback: LoopbackLab
) -> None:
    created = created_pods(cluster)
    result = run_text(nodes_matrix(kubeconfig, loopback, ", nodes: {names: [node-*]}"))
    found = rows(result)
    assert sorted(found) == ["nodes/node-a", "nodes/node-b"]
    for node, ip in (("node-a", "127.0.0.2"), ("node-b", "127.0.0.3")):
        assert cell(result, f"nodes/{node}", "api").status == "ok"
        assert cell(result, f"nodes/{node}", "closed").status == "refused"
        facts = found[f"nodes/{node}"].facts
        assert (facts["node"], facts["node_internal_ips"], facts["pod_ip"]) == (node, [ip], ip)
        assert facts["runner"] == "agent"
        assert facts["api_requests"] == 3  # create, follow the log, delete
    run_id = found["nodes/node-a"].facts["run_id"]
    assert len(created) == 2
    for pod in created:
        meta, spec = pod["metadata"], pod["spec"]
        assert meta["namespace"] == NS
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "probe-engine"
        assert meta["labels"]["probe-engine.io/run"] == run_id
        assert spec["restartPolicy"] == "Never"
        assert 0 < spec["activeDeadlineSeconds"] < 600
        assert spec["automountServiceAccountToken"] is False
        assert "tolerations" not in spec and "hostNetwork" not in spec
        (term,) = spec["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"]
        assert term["matchFields"] == [
            {
                "key": "metadata.name",
                "operator": "In",
                "values": [meta["annotations"]["probe-engine.io/node"]],
            }
        ]
        container = spec["containers"][0]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert all(e["name"].startswith("PROBE_ENGINE_INPUT_") for e in container["env"])
    assert_nothing_left(cluster)
    # What a node costs the API server: three requests, plus three for the whole source
    pods = f"/api/v1/namespaces/{NS}/pods*"
    assert len(cluster.requests_to(pods)) == 2 * 3 + 2  # + one list, one watch
    assert len(cluster.requests_to("/api/v1/nodes")) == 1


def test_a_control_plane_node_is_a_row_with_its_taint_unless_included(
    cluster: kl.ApiServer, kubeconfig: Path, loopback: LoopbackLab
) -> None:
    result = run_text(nodes_matrix(kubeconfig, loopback))
    control = rows(result)["nodes/cp-0"]
    assert control.status == "error"
    assert control.message is not None
    assert control.message.startswith("the scheduler cannot place a pod on node cp-0: 0/3 nodes")
    assert "1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }" in (
        control.message
    )
    assert cell(result, "nodes/cp-0", "api").status == "source-error"
    assert rows(result)["nodes/node-a"].status == "ok"

    created = created_pods(cluster)
    result = run_text(
        nodes_matrix(kubeconfig, loopback, ", nodes: {names: [cp-*], control_plane: true}")
    )
    assert cell(result, "nodes/cp-0", "api").status == "ok"
    assert {t["key"] for t in created[0]["spec"]["tolerations"]} == {
        "node-role.kubernetes.io/control-plane",
        "node-role.kubernetes.io/master",
    }
    assert_nothing_left(cluster)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        (
            "cordoned",
            "the scheduler cannot place a pod on node node-a: 0/3 nodes are available: "
            "2 node(s) didn't match Pod's node affinity/selector, 1 node(s) were unschedulable.",
        ),
        (
            "image",
            "the probe pod on node node-a cannot start: ErrImagePull: failed to pull image "
            '"python:3.12-slim": rpc error: code = Unknown desc = 429 Too Many Requests',
        ),
        (
            "quota",
            'creating a probe pod on node node-a: forbidden (403): pods "probe-engine-',
        ),
        (
            "admission",
            'creating a probe pod on node node-a: forbidden (403): pods "probe-engine-',
        ),
    ],
)
def test_a_node_that_cannot_run_the_pod_is_a_row_with_the_apis_reason(
    cluster: kl.ApiServer, kubeconfig: Path, loopback: LoopbackLab, case: str, reason: str
) -> None:
    store = cluster.store
    source = ", nodes: {names: [node-a]}"
    if case == "cordoned":
        store.put(kl.node("node-a", "127.0.0.2", unschedulable=True))
    elif case == "image":
        cluster.kubelet.images["python:3.12-slim"] = Image(
            pull_error='failed to pull image "python:3.12-slim": rpc error: code = Unknown desc = '
            "429 Too Many Requests"
        )
    elif case == "quota":
        store.put(
            {"kind": "ResourceQuota", "metadata": {"name": "no-pods", "namespace": NS},
             "spec": {"hard": {"pods": "0"}}}
        )  # fmt: skip
    else:  # Pod Security "baseline" refuses a hostNetwork pod
        labels = {"pod-security.kubernetes.io/enforce": "baseline"}
        store.put({"kind": "Namespace", "metadata": {"name": NS, "labels": labels}})
        source += ", host_network: true"
    result = run_text(nodes_matrix(kubeconfig, loopback, source))
    info = rows(result)["nodes/node-a"]
    assert info.status == "error"
    assert info.message is not None
    assert info.message.startswith(reason), info.message
    if case == "quota":
        assert "exceeded quota: no-pods, requested: pods=1, used: pods=0, limited: pods=0" in (
            info.message
        )
    if case == "admission":
        assert 'violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true)' in (
            info.message
        )
    assert cell(result, "nodes/node-a", "closed").status == "source-error"
    assert_nothing_left(cluster)


def _tool_dir(root: Path, tools: tuple[str, ...]) -> Path:
    """A PATH directory holding only `tools`: an image without python3."""
    root.mkdir()
    for name in tools:
        found = shutil.which(name)
        assert found is not None, name
        (root / name).symlink_to(found)
    return root


SHELL_TOOLS = ("sh", "date", "tr", "cut", "timeout", "curl", "sed", "grep", "head", "tail",
               "cat", "awk", "uniq", "printf")  # fmt: skip


def test_an_image_without_python_probes_with_the_shell_prober_in_a_second_pod(
    cluster: kl.ApiServer, kubeconfig: Path, loopback: LoopbackLab, tmp_path: Path
) -> None:
    cluster.kubelet.images["curlimages/curl:8"] = Image(
        path=str(_tool_dir(tmp_path / "bin", SHELL_TOOLS))
    )
    created = created_pods(cluster)
    result = run_text(
        f"""
kubernetes: {{kubeconfig: '{kubeconfig}'}}
sources:
  nodes: {{kind: kubernetes-nodes, namespace: {NS}, image: "curlimages/curl:8",
           nodes: {{names: [node-a]}}}}
targets:
  api: {{kind: http, url: "http://127.0.0.1:{loopback.http_port}/health"}}
  closed: {{kind: tcp, host: 127.0.0.1, port: {loopback.closed_port}}}
"""
    )
    api = cell(result, "nodes/node-a", "api")
    assert (api.status, api.tool) == ("ok", "curl")
    assert cell(result, "nodes/node-a", "closed").status == "refused"
    facts = rows(result)["nodes/node-a"].facts
    assert facts["note"].startswith("no python3 in probe pod probe-engine/probe-engine-")
    assert facts["runner"] == "shell"
    assert [p["spec"]["containers"][0]["command"][0] for p in created] == ["python3", "sh"]
    assert_nothing_left(cluster)


def test_a_run_cut_short_deletes_its_pods_and_keeps_what_the_agent_had(
    cluster: kl.ApiServer, kubeconfig: Path, loopback: LoopbackLab
) -> None:
    result = run_text(
        nodes_matrix(
            kubeconfig,
            loopback,
            ", nodes: {names: [node-a]}",
            f"\n  hangs: {{kind: http, url: 'http://127.0.0.1:{loopback.hanging.port}/', "
            "timeout: 120s}",
        ),
        # Time for the pod to start and its agent to connect on a loaded machine; then it
        # waits in HTTP until the deadline cuts it.
        deadline=15.0,
    )
    hangs = cell(result, "nodes/node-a", "hangs")
    assert hangs.status == "cancelled"
    assert [c.name for c in hangs.checks][:1] == ["tcp"], (  # it had connected when stopped
        hangs.message,
        rows(result)["nodes/node-a"].facts,
    )
    assert result.interrupted is False and result.summary.cut_by == "deadline"
    assert_nothing_left(cluster)


def _wait_for(test: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not test():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def _cli(args: list[str], **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "probe_engine", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def cleanup(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "probe_engine", *args], capture_output=True, text=True, check=False
    )


def _running_pods(server: kl.ApiServer) -> list[dict[str, Any]]:
    return [p for p in server.store.list("Pod", NS) if p["status"].get("phase") == "Running"]


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_delete_every_pod(
    cluster: kl.ApiServer, kubeconfig: Path, loopback: LoopbackLab, tmp_path: Path, how: int
) -> None:
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        nodes_matrix(
            kubeconfig,
            loopback,
            ", nodes: {names: [node-*]}",
            f"\n  hangs: {{kind: http, url: 'http://127.0.0.1:{loopback.hanging.port}/', "
            "timeout: 60s}",
        )
    )
    process = _cli(["run", str(matrix), "--no-reports", "--no-progress", "--output", "none"])
    try:
        _wait_for(lambda: len(_running_pods(cluster)) == 2)
        process.send_signal(how)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert_nothing_left(cluster)


def test_cleanup_removes_what_a_killed_run_left(
    cluster: kl.ApiServer, kubeconfig: Path, loopback: LoopbackLab, tmp_path: Path
) -> None:
    matrix = tmp_path / "m.yaml"
    matrix.write_text(
        nodes_matrix(
            kubeconfig,
            loopback,
            ", nodes: {names: [node-*]}",
            f"\n  hangs: {{kind: http, url: 'http://127.0.0.1:{loopback.hanging.port}/', "
            "timeout: 60s}",
        )
    )
    process = _cli(["run", str(matrix), "--no-reports", "--no-progress", "--output", "none"])
    try:
        _wait_for(lambda: len(_running_pods(cluster)) == 2)
        process.kill()  # SIGKILL: no chance to clean up
        process.communicate(timeout=30)
    finally:
        process.kill()
    left = sorted(p["metadata"]["name"] for p in cluster.store.list("Pod", NS))
    assert len(left) == 2
    run_id = cluster.store.list("Pod", NS)[0]["metadata"]["labels"]["probe-engine.io/run"]
    base = ["cleanup", "--kubeconfig", str(kubeconfig), "-n", NS]
    dry = cleanup(*base, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert [line.split(" (")[0] for line in dry.stdout.splitlines()] == [
        f"would delete probe pod {NS}/{name}" for name in left
    ]
    assert len(cluster.store.list("Pod", NS)) == 2
    other = cleanup(*base, "--run", "0" * 12)
    assert other.stdout.splitlines() == [f"no probe pod left in namespace {NS}"]
    done = cleanup(*base, "--run", run_id)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 2
    assert all(f"(run {run_id}, node node-" in line for line in done.stdout.splitlines())
    assert_nothing_left(cluster)


def test_a_namespace_that_does_not_exist_is_said_once_per_node(
    cluster: kl.ApiServer, kubeconfig: Path, loopback: LoopbackLab
) -> None:
    text = nodes_matrix(kubeconfig, loopback, ", nodes: {names: [node-a]}").replace(
        f"namespace: {NS}", "namespace: nowhere"
    )
    info = rows(run_text(text))["nodes/node-a"]
    assert info.message == (
        "creating a probe pod on node node-a: the API server answered 404 NotFound: "
        'namespaces "nowhere" not found'
    )


def test_no_node_matching_is_the_sources_error_naming_the_nodes(
    cluster: kl.ApiServer, kubeconfig: Path, loopback: LoopbackLab
) -> None:
    result = run_text(nodes_matrix(kubeconfig, loopback, ", nodes: {names: [gpu-*]}"))
    assert rows(result)["nodes"].message == (
        "no node matches names ['gpu-*'] with no selector (nodes in the cluster: cp-0, node-a, "
        "node-b)"
    )
    assert cluster.store.list("Pod", NS) == []


# ---- the network-namespace lab: from which nodes does the NodePort work? (root) -------------


@pytest.fixture(scope="module")
def node_lab(netlab: Lab) -> Iterator[NodeLab]:
    """The lab's node is `minikube`; minikube-m02 and minikube-m03 join its bridge, each a
    namespace; m03's host firewall drops the NodePort range."""
    nodes = NodeLab(netlab, extra=2, firewalled={"minikube-m03"})
    nodes.up()
    try:
        yield nodes
    finally:
        nodes.down()


STORY = """
kubernetes: {{kubeconfig: '{kubeconfig}'}}
defaults: {{timeout: 2s}}
sources:
  node: {{kind: kubernetes-nodes, namespace: probe-engine, host_network: true}}
  pod: {{kind: kubernetes-nodes, namespace: probe-engine}}
targets:
  node-port: {{kind: http, url: "http://{node_ip}:{node_port}/health"}}
  cluster-ip: {{kind: http, url: "http://{cluster_ip}:{service_port}/health"}}
  service-dns: {{kind: dns, name: {fqdn}}}
"""
# What each node answers, as a node (host_network) and as a pod on it
NODE_PORT_GRID = {
    "minikube": ("ok", "ok", "ok"),
    "minikube-m02": ("ok", "ok", "ok"),
    "minikube-m03": ("timeout", "ok", "ok"),  # its host firewall drops 30000-32767
}


@pytest.mark.root
def test_the_nodes_say_from_which_of_them_the_node_port_works(
    netlab: Lab, node_lab: NodeLab, kube_apiserver: kl.ApiServer, kubeconfig: Path
) -> None:
    require(os.geteuid() == 0, "the lab needs root")
    node_lab.register(kube_apiserver, cordoned=["minikube-m04"])
    kube_apiserver.store.put({"kind": "Namespace", "metadata": {"name": NS}})
    result = run_text(
        STORY.format(
            kubeconfig=kubeconfig,
            node_ip=netlab.node_ip,
            node_port=netlab.node_port,
            cluster_ip=netlab.cluster_ip,
            service_port=netlab.service_port,
            fqdn=netlab.service_fqdn,
        )
    )
    for source in ("node", "pod"):
        seen = {
            node: tuple(
                cell(result, f"{source}/{node}", target).status
                for target in ("node-port", "cluster-ip", "service-dns")
            )
            for node in NODE_PORT_GRID
        }
        assert seen == NODE_PORT_GRID, source
        cordoned = rows(result)[f"{source}/minikube-m04"]
        assert cordoned.message is not None
        assert "1 node(s) were unschedulable" in cordoned.message
    found = rows(result)
    m02 = found["pod/minikube-m02"].facts
    assert m02["pod_ip"] == "10.245.1.2"  # its own namespace on the node's pod CIDR
    assert found["node/minikube-m02"].facts["pod_ip"] == "10.231.49.101"  # the node's
    blocked = cell(result, "node/minikube-m03", "node-port")
    assert blocked.checks[0].name == "tcp" and blocked.checks[0].status == "timeout"
    kube_apiserver.settle()
    assert kube_apiserver.store.list("Pod", NS) == []
    assert node_lab.pod_namespaces() == []
