"""Raw targets on cluster addresses, recognised from the Service the same matrix looks up
(rule cluster-address), on the namespace lab behind the Kubernetes test server: the node
probed on the targetPort instead of the nodePort, the ClusterIP on the targetPort, the
ClusterIP from a namespace with no route to it, a pod that is not ready, a pod on the wrong
port. Golden texts: what the user reads, word for word, with the lab's real addresses."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from probe_engine.demo.fixtures import LoopbackLab
from probe_engine.results import Finding, MatrixResult
from tests.kubelab import apiserver as kl
from tests.lab.netlab import Lab
from tests.test_kubernetes import backend, lab_cluster, loopback_service  # noqa: F401

from .conftest import cell, require, run_text
from .golden import check_golden

NOT_READY_POD = "10.244.0.6"  # lab_cluster's second pod: never ready


@pytest.fixture
def cluster_result(netlab: Lab, kube_store: kl.Store, kubeconfig: Path) -> MatrixResult:
    require(os.geteuid() == 0, "the lab needs root")
    lab_cluster(kube_store, netlab)
    lab = netlab
    return run_text(
        f"""
kubernetes: {{kubeconfig: '{kubeconfig}'}}
defaults: {{timeout: 2s}}
sources:
  sched: {{kind: netns, name: {lab.scheduler_ns}}}
  worker: {{kind: netns, name: {lab.worker_ns}}}
  node: {{kind: netns, name: {lab.node_ns}}}
targets:
  api: {{kind: kubernetes-service, service: {lab.service_name}, via: [node-port, cluster-ip]}}
  node-8000: {{kind: tcp, host: {lab.node_ip}, port: {lab.pod_port}}}
  cluster-8000: {{kind: tcp, host: {lab.cluster_ip}, port: {lab.pod_port}}}
  cluster-80: {{kind: tcp, host: {lab.cluster_ip}, port: {lab.service_port}}}
  unready-pod: {{kind: tcp, host: {NOT_READY_POD}, port: {lab.pod_port}}}
  pod-80: {{kind: tcp, host: {lab.pod_ip}, port: {lab.service_port}}}
cells:
  - {{source: sched, target: "api*"}}
  - {{source: sched, target: node-8000}}
  - {{source: sched, target: cluster-8000}}
  - {{source: sched, target: unready-pod}}
  - {{source: worker, target: cluster-80}}
  - {{source: node, target: pod-80}}
"""
    )


def about(result: MatrixResult, column: str) -> Finding:
    [found] = [f for f in result.findings if any(e.target == column for e in f.evidence)]
    return found


@pytest.mark.root
def test_the_node_on_the_target_port_is_told_to_use_the_node_port(
    cluster_result: MatrixResult, netlab: Lab
) -> None:
    assert cell(cluster_result, "sched", "node-8000").status == "refused"
    finding = about(cluster_result, "node-8000")
    node, svc = netlab.node_ip, f"default/{netlab.service_name}"
    assert (finding.rule, finding.severity) == ("cluster-address", "error")
    assert finding.title == (
        f"node-8000 fails from sched (the only source that probed it): {node}:8000 is the "
        f"targetPort of Service {svc} on node minikube, not its nodePort 30080"
    )
    assert finding.detail == (
        f"{node} is the address of node minikube; Service {svc} maps port 80 to targetPort "
        "8000, nodePort 30080. A node forwards only the nodePort to the pods: nothing on it "
        "listens on 8000 (refused (ECONNREFUSED) from sched). From outside the cluster use the "
        f"nodePort 30080 ({node}:30080 is ok from sched); inside it, the ClusterIP "
        f"{netlab.cluster_ip}:80."
    )
    assert finding.next_step == (
        f"Probe {node}:30080 (the nodePort: `kubectl get svc` shows it as 80:30080/TCP)."
    )
    assert {(e.source, e.target) for e in finding.evidence} == {
        ("sched", "node-8000"),
        ("sched", "api/node-port"),
    }
    check_golden(finding, "cluster-address")


@pytest.mark.root
def test_the_cluster_ip_on_the_target_port_is_told_to_use_the_service_port(
    cluster_result: MatrixResult, netlab: Lab
) -> None:
    finding = about(cluster_result, "cluster-8000")
    cip, svc = netlab.cluster_ip, f"default/{netlab.service_name}"
    assert finding.rule == "cluster-address"
    assert finding.title == (
        f"cluster-8000 fails from sched (the only source that probed it): {cip}:8000 is the "
        f"ClusterIP of Service {svc} on port 8000, but the ClusterIP answers on the Service's "
        "port 80"
    )
    assert finding.next_step == (
        f"Probe {cip}:80 (the Service's port; `kubectl get svc` shows it as PORT)."
    )
    assert f"({cip}:80 is ok from sched)" in finding.detail


@pytest.mark.root
def test_the_cluster_ip_from_outside_the_cluster_network_is_named(
    cluster_result: MatrixResult, netlab: Lab
) -> None:
    assert cell(cluster_result, "worker", "cluster-80").status == "unreachable"
    finding = about(cluster_result, "cluster-80")
    cip, svc = netlab.cluster_ip, f"default/{netlab.service_name}"
    assert finding.title == (
        f"cluster-80 fails from worker (the only source that probed it): {cip} is the "
        f"ClusterIP of Service {svc}, reachable only inside the cluster"
    )
    assert finding.detail == (
        f"{cip}:80 is the ClusterIP of Service {svc} (unreachable (ENETUNREACH) from worker). "
        "ClusterIPs are virtual addresses that kube-proxy translates on the nodes: only pods "
        "and nodes (or hosts that route the service CIDR to a node) reach them; worker has no "
        f"route to {cip}. From outside the cluster use the nodePort 30080 on a node "
        f"({netlab.node_ip}:30080 is ok from sched)."
    )
    assert finding.next_step == (
        f"Use the nodePort ({netlab.node_ip}:30080), port-forward, or run the probe in a pod "
        "of the cluster."
    )


@pytest.mark.root
def test_a_pod_address_that_is_not_a_ready_endpoint_is_named(
    cluster_result: MatrixResult, netlab: Lab
) -> None:
    finding = about(cluster_result, "unready-pod")
    assert finding.title == (
        f"unready-pod fails from sched (the only source that probed it): {NOT_READY_POD} is pod "
        f"health-predict-api-7c9d8b6f5-lab02 of Service default/{netlab.service_name}, which "
        "is not ready"
    )
    assert f"Its ready endpoints: {netlab.pod_ip}." in finding.detail
    assert finding.next_step.startswith(
        "`kubectl describe pod health-predict-api-7c9d8b6f5-lab02` (readiness probe, events)"
    )


@pytest.mark.root
def test_a_pod_on_another_port_than_its_target_port_is_named(
    cluster_result: MatrixResult, netlab: Lab
) -> None:
    assert cell(cluster_result, "node", "pod-80").status == "refused"
    finding = about(cluster_result, "pod-80")
    assert finding.title == (
        f"pod-80 fails from node (the only source that probed it): pod {netlab.pod_ip} of "
        f"Service default/{netlab.service_name} serves targetPort 8000, not 80"
    )
    assert finding.next_step == (
        f"Probe {netlab.pod_ip}:8000 (the targetPort), or the Service's port 80 on its ClusterIP."
    )


def test_a_service_with_a_not_ready_endpoint_is_only_information(
    kube_store: kl.Store,
    kubeconfig: Path,
    backend: int,  # noqa: F811
) -> None:
    """Every cell works: what the Service's facts say is worth knowing, never an alarm."""
    loopback_service(kube_store, backend)  # 2 ready pods, 1 not ready
    result = run_text(
        f"""
kubernetes: {{kubeconfig: '{kubeconfig}'}}
defaults: {{timeout: 2s}}
sources: {{here: {{kind: local}}}}
targets:
  api: {{kind: kubernetes-service, service: api, via: [endpoints, cluster-ip]}}
"""
    )
    assert {c.status for c in result.cells} == {"ok"}
    [finding] = result.findings
    assert (finding.rule, finding.severity) == ("service-facts", "info")
    check_golden(finding, "service-facts", {str(backend): "BACKEND_PORT"})


def test_no_proxy_advice_for_a_pod_says_to_set_it_in_the_pods_spec(
    kube_store: kl.Store, kubeconfig: Path, loopback: LoopbackLab
) -> None:
    """A pod whose container env sends urllib to a dead proxy, with a CIDR NO_PROXY urllib
    ignores: the advice is checked with urllib's rules and names the pod spec as the place."""
    proxy = f"http://127.0.0.1:{loopback.dead_proxy_port}"
    kube_store.put(
        kl.pod(
            "worker-0",
            labels={"app": "worker"},
            env={"HTTP_PROXY": proxy, "NO_PROXY": "127.0.0.0/8"},
        ),
        runtime=kl.PodRuntime(),
    )
    result = run_text(
        f"""
kubernetes: {{kubeconfig: '{kubeconfig}'}}
defaults: {{timeout: 2s}}
sources:
  here: {{kind: local, trust_env: false}}
  workers: {{kind: kubernetes, selector: app=worker, http_client: urllib}}
targets:
  api: {{kind: http, url: "http://127.0.0.1:{loopback.http_port}/health"}}
"""
    )
    assert cell(result, "workers/worker-0", "api").status == "proxy-error"
    [finding] = [f for f in result.findings if f.rule == "proxy-differs"]
    assert finding.next_step == (
        "Set NO_PROXY=127.0.0.0/8,127.0.0.1 in the pod's environment (workers: env: of its "
        "container in the pod spec; restart the pods); urllib ignores CIDR ranges in NO_PROXY: "
        "list the exact addresses (requests and curl read ranges). Or unset HTTP_PROXY there or "
        "disable proxies for urllib (urllib.request.build_opener(urllib.request.ProxyHandler({})))."
    )
