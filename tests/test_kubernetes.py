"""Kubernetes: a Service named once becomes one column per way of reaching it, and pods are
sources, through kubernetes-asyncio used unmodified against tests/kubelab's API server.

Only the control plane is emulated. The data path is real: on loopback, every column's
address is a real listener (127.0.0.1 and 127.0.0.2), the port-forward tunnel relays to it,
and each pod's exec runs the shipped agent as a real process. In the network-namespace lab
(root), the Service, its node and its pod carry the lab's addresses: the pod is the lab's pod
namespace, NodePort and ClusterIP are the node's iptables DNAT, the Service name is answered
by the lab's dnsmasq, and the probing pods are lab namespaces too.

Lab names are only ever resolved inside lab namespaces; the local source probes lab
addresses only with the lab's guard routes up (and here it probes only the tunnel).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import pytest

from probe_engine import MatrixResult, SpecError
from probe_engine.kube import CHANNEL_PROTOCOL, KubeOverrides, KubeSettings, open_client
from probe_engine.model import Column, RunContext
from probe_engine.results import SourceInfo, TargetInfo
from probe_engine.sources.pod_exec import PodExecChannel
from probe_engine.spec import load_matrix_text
from probe_engine.targets import RESOLVERS
from probe_engine.targets.kubernetes.policies import label_selector_matches, policy_facts
from probe_engine.targets.portforward import PodPort, PortForward
from tests.conftest import cell, require, run_text
from tests.golden import check_golden
from tests.kubelab import apiserver as kl
from tests.lab.netlab import Lab

pytestmark = pytest.mark.kubernetes
REPO = Path(__file__).resolve().parents[1]
VIAS = ("cluster-ip", "node-port", "dns", "dns-short", "endpoints", "port-forward")
SERVICE = "api"


# =============================================================================================
# Loopback fixtures: a backend on 127.0.0.1 and 127.0.0.2 (same port), a Service around it
# =============================================================================================


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    CHUNK = b"0123456789abcdef" * 4096

    def do_GET(self) -> None:
        if self.path.startswith("/bytes/"):
            size = int(self.path.rsplit("/", 1)[1])
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.send_header("Connection", "close")
            self.end_headers()
            left = size
            with contextlib.suppress(ConnectionError):
                while left > 0:
                    piece = self.CHUNK[: min(left, len(self.CHUNK))]
                    self.wfile.write(piece)
                    left -= len(piece)
        else:
            body = f"ok from {self.server.server_address[0]}\n".encode()
            self.send_response(200 if self.path == "/health" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@pytest.fixture(scope="module")
def backend() -> Iterator[int]:
    """One HTTP server on 127.0.0.1:P and one on 127.0.0.2:P; the port P."""
    first = _Server(("127.0.0.1", 0), _Handler)
    port = int(first.server_address[1])
    second = _Server(("127.0.0.2", port), _Handler)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (first, second)]
    for thread in threads:
        thread.start()
    try:
        yield port
    finally:
        for server in (first, second):
            server.shutdown()
            server.server_close()


def closed_port() -> int:
    with contextlib.closing(__import__("socket").socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def loopback_service(
    store: kl.Store,
    port: int,
    *,
    ready: int = 2,
    not_ready: int = 1,
    name: str = SERVICE,
    forward_to: int | None = None,
) -> None:
    """A NodePort Service whose every address is a loopback listener: clusterIP 127.0.0.1,
    nodes 127.0.0.1 (+ExternalIP 127.0.0.2) and 127.0.0.2, pods 127.0.0.1 and 127.0.0.2,
    one port P named http (port = targetPort = nodePort = P). Not-ready pods sit on
    127.0.0.3, where nothing listens (they must never be probed)."""
    labels = {"app": name}
    store.put(
        kl.service(
            name,
            selector=labels,
            type="NodePort",
            cluster_ip="127.0.0.1",
            ports=[{"name": "http", "port": port, "targetPort": port, "nodePort": port}],
        )
    )
    store.put(kl.node("node-a", "127.0.0.1", external_ip="127.0.0.2"))
    store.put(kl.node("node-b", "127.0.0.2"))
    runtime = kl.PodRuntime(forward_ports={port: forward_to or port})
    for i in range(ready + not_ready):
        store.put(
            kl.pod(
                f"{name}-{i}",
                labels=labels,
                pod_ip=f"127.0.0.{i % 2 + 1}" if i < ready else "127.0.0.3",
                node_name="node-a" if i % 2 == 0 else "node-b",
                ready=i < ready,
                ports=[{"name": "http", "containerPort": port}],
            ),
            runtime=runtime,
        )
    store.sync_endpoints(name)


def matrix_text(
    kubeconfig: Path | str | None,
    targets: str,
    sources: str = "here: {kind: local}",
    extra: str = "",
) -> str:
    section = f"kubernetes: {{kubeconfig: '{kubeconfig}', timeout: 3s}}\n" if kubeconfig else ""
    return (
        f"{section}defaults: {{timeout: 2s}}\nsources:\n  {sources}\ntargets:\n  {targets}\n{extra}"
    )


def resolve(text: str, **overrides: Any) -> dict[str, Column]:
    """The columns of every target of a matrix (tunnels closed again on return)."""
    loaded = load_matrix_text(text, "k.yaml", {})

    async def main() -> dict[str, Column]:
        async with RunContext(loaded.matrix, KubeOverrides(**overrides)) as context:
            columns: dict[str, Column] = {}
            for name, spec in loaded.matrix.targets.items():
                for column in await RESOLVERS[spec.kind](name, spec, context):
                    columns[column.name] = column
            return columns

    return anyio.run(main)


def run(text: str, **options: Any) -> MatrixResult:
    return run_text(text, **options)


def target(result: MatrixResult, name: str) -> TargetInfo:
    return next(t for t in result.targets if t.name == name)


def row(result: MatrixResult, name: str) -> SourceInfo:
    return next(s for s in result.sources if s.name == name)


def errors_of(columns: dict[str, Column]) -> dict[str, str]:
    return {name: c.error[1] for name, c in columns.items() if c.error}


# =============================================================================================
# The spec
# =============================================================================================

BAD_SPECS = {
    "via: [cluster-ip, tunnel]": "'tunnel' is not one of: cluster-ip, node-port, dns, dns-short",
    "via: []": "list at least one of: cluster-ip, node-port",
    "via: [dns, dns]": "dns listed twice",
    "port: Web_Port": "'Web_Port' is neither a port number nor a port name",
    "port: 70000": "70000: ports run from 1 to 65535",
    "path: health": "'health': a path starts with '/'",
    "scheme: ftp": "'ftp' is not one of: http or https",
}


@pytest.mark.parametrize(("field", "message"), sorted(BAD_SPECS.items()))
def test_bad_service_targets_are_refused_with_their_position(field: str, message: str) -> None:
    text = matrix_text(None, f"api: {{kind: kubernetes-service, service: api, {field}}}")
    with pytest.raises(SpecError) as caught:
        load_matrix_text(text, "k.yaml", {})
    assert message in str(caught.value)
    assert str(caught.value).startswith("k.yaml:5:")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{kind: kubernetes}", "give exactly one of pod: or selector:"),
        ("{kind: kubernetes, pod: a, selector: app=a}", "give exactly one of pod: or selector:"),
        ("{kind: kubernetes, selector: ' '}", "an empty selector would match every pod"),
        ("{kind: kubernetes, pod: a, tool: curl, python: python3.12}", "python applies to"),
        ("{kind: kubernetes, pod: a, max_pods: 0}", "0 is too small (at least 1)"),
    ],
)
def test_bad_pod_sources_are_refused(source: str, message: str) -> None:
    text = matrix_text(None, "t: {kind: tcp, host: 127.0.0.1, port: 9}", f"w: {source}")
    with pytest.raises(SpecError) as caught:
        load_matrix_text(text, "k.yaml", {})
    assert message in str(caught.value)


def test_a_service_port_given_as_text_digits_is_a_number() -> None:
    text = matrix_text(None, "api: {kind: kubernetes-service, service: api, port: '80'}")
    spec = load_matrix_text(text, "k.yaml", {}).matrix.targets["api"]
    assert spec.port == 80  # type: ignore[union-attr]
    assert spec.vias() == VIAS  # type: ignore[union-attr]


# =============================================================================================
# Resolution: each via, its plan and its facts
# =============================================================================================


def test_each_via_becomes_its_own_column_with_a_concrete_plan(
    kube_store: kl.Store, kubeconfig: Path, backend: int
) -> None:
    loopback_service(kube_store, backend, ready=2, not_ready=1)
    columns = resolve(
        matrix_text(kubeconfig, f"api: {{kind: kubernetes-service, service: {SERVICE}}}")
    )
    assert list(columns) == [f"api/{via}" for via in VIAS]
    assert errors_of(columns) == {}
    plans = {name.split("/")[1]: dict(c.plan or {}) for name, c in columns.items()}
    assert plans["cluster-ip"] == {
        "kind": "tcp",
        "host": "127.0.0.1",
        "port": backend,
        "family": "any",
    }
    # every node's InternalIP, then ExternalIPs, once each, on the nodePort
    assert plans["node-port"]["addresses"] == ["127.0.0.1", "127.0.0.2"]
    assert plans["node-port"]["port"] == backend
    # resolved by the source, not here
    assert plans["dns"]["host"] == f"{SERVICE}.default.svc.cluster.local"
    assert "addresses" not in plans["dns"]
    assert plans["dns-short"]["host"] == SERVICE
    # only the ready endpoints are probed, on the targetPort
    assert plans["endpoints"]["addresses"] == ["127.0.0.1", "127.0.0.2"]
    # the tunnel: loopback of this machine, never to be probed from inside a pod
    assert plans["port-forward"]["host"] == "127.0.0.1"
    assert plans["port-forward"]["port"] != backend
    assert [name for name, c in columns.items() if c.local_only] == ["api/port-forward"]
    for name, column in columns.items():
        assert column.via == name.split("/")[1]
        assert column.kind == "kubernetes-service"
        assert column.target_name == "api"


def test_the_facts_say_what_the_diagnosis_reads(
    kube_store: kl.Store, kubeconfig: Path, backend: int
) -> None:
    loopback_service(kube_store, backend, ready=2, not_ready=1)
    kube_store.put(
        kl.network_policy(
            "api-ingress",
            pod_selector={"app": SERVICE},
            ingress=[
                {
                    "from": [{"podSelector": {"matchLabels": {"app": "airflow-worker"}}}],
                    "ports": [{"protocol": "TCP", "port": backend}],
                }
            ],
        )
    )
    kube_store.put(kl.network_policy("deny-all", pod_selector={}, ingress=[]))
    kube_store.put(kl.network_policy("other-app", pod_selector={"app": "db"}, ingress=[]))
    columns = resolve(
        matrix_text(kubeconfig, f"api: {{kind: kubernetes-service, service: {SERVICE}}}")
    )
    facts = dict(columns["api/endpoints"].facts)
    assert facts["service"] == SERVICE
    assert facts["namespace"] == "default"
    assert facts["type"] == "NodePort"
    assert facts["selector"] == {"app": SERVICE}
    assert facts["ports"] == [
        {
            "name": "http",
            "port": backend,
            "targetPort": backend,
            "nodePort": backend,
            "protocol": "TCP",
        }
    ]
    assert (facts["service_port"], facts["target_port"], facts["probed_port"]) == (backend,) * 3
    assert (facts["ready"], facts["not_ready"], facts["pods"]) == (2, 1, 3)
    assert facts["ready_addresses"] == ["127.0.0.1", "127.0.0.2"]
    (not_ready,) = facts["not_ready_addresses"]
    assert not_ready["ip"] == "127.0.0.3"
    assert not_ready["pod"] == f"{SERVICE}-2"
    assert [n["name"] for n in facts["nodes"]] == ["node-a", "node-b"]
    policies = {p["name"]: p for p in facts["network_policies"]}
    assert set(policies) == {"api-ingress", "deny-all"}  # "other-app" selects no backing pod
    assert policies["api-ingress"]["allows_port"] is True
    assert policies["api-ingress"]["allowed_from"] == [
        "pods app=airflow-worker in the policy's namespace"
    ]
    assert policies["deny-all"]["allows_port"] is False
    assert facts["api_server"].startswith("http://127.0.0.1:")
    assert facts["context"] == "minikube"
    assert columns["api/node-port"].facts["probed_port"] == backend


def test_network_policy_matching_follows_the_api_rules() -> None:
    labels = {"app": "api", "tier": "web"}
    assert label_selector_matches({}, labels)  # an empty podSelector selects every pod
    assert label_selector_matches(
        {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]}, labels
    )
    assert not label_selector_matches(
        {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]}, labels
    )
    assert not label_selector_matches(
        {"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}, labels
    )
    policies = [
        {
            "metadata": {"name": "named"},
            "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": "http"}]}]},
        },
        {
            "metadata": {"name": "range"},
            "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": 7000, "endPort": 9000}]}]},
        },
        {
            "metadata": {"name": "udp"},
            "spec": {
                "podSelector": {},
                "ingress": [{"ports": [{"protocol": "UDP", "port": 8000}]}],
            },
        },
        {
            "metadata": {"name": "egress"},
            "spec": {"podSelector": {}, "egress": [], "policyTypes": ["Egress"]},
        },
        {
            "metadata": {"name": "ipblock"},
            "spec": {
                "podSelector": {},
                "ingress": [
                    {"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]}
                ],
            },
        },
    ]
    found = {p["name"]: p for p in policy_facts(policies, [labels], 8000, {"http"})}
    assert {k: v["allows_port"] for k, v in found.items()} == {
        "named": True,
        "range": True,
        "udp": False,
        "egress": True,
        "ipblock": True,
    }
    assert found["ipblock"]["allowed_from"] == ["ipBlock 10.0.0.0/8 except 10.1.0.0/16"]
    assert found["egress"]["note"] == "restricts egress only"


@pytest.mark.parametrize(
    ("port", "expected"),
    [("http", None), (8080, None), (None, None), ("metrics", 9090)],
)
def test_the_port_by_name_or_by_number(
    kube_store: kl.Store, kubeconfig: Path, port: str | int | None, expected: int | None
) -> None:
    kube_store.put(
        kl.service(
            "two-ports",
            selector={"app": "x"},
            cluster_ip="10.96.0.50",
            ports=[
                {"name": "http", "port": 8080, "targetPort": 8000},
                {"name": "metrics", "port": 9090, "targetPort": 9100},
            ],
        )
    )
    spec = "" if port is None else f", port: {port}"
    columns = resolve(
        matrix_text(
            kubeconfig,
            f"a: {{kind: kubernetes-service, service: two-ports, via: [cluster-ip]{spec}}}",
        )
    )
    column = columns["a/cluster-ip"]
    assert column.plan is not None
    assert column.plan["port"] == (expected or 8080)
    assert column.facts["port_name"] == ("metrics" if expected else "http")


@pytest.mark.parametrize(
    ("port", "message"),
    [
        (
            "web",
            "Service default/two-ports has no port named 'web' (its ports: http 8080->8000/TCP, metrics 9090->9100/TCP)",
        ),
        (
            8000,
            "Service default/two-ports has no port 8000 (its ports: http 8080->8000/TCP, metrics 9090->9100/TCP); 8000 is a targetPort (the pods' port): name the Service port",
        ),
    ],
)
def test_a_wrong_port_is_a_target_error_listing_the_ports(
    kube_store: kl.Store, kubeconfig: Path, port: str | int, message: str
) -> None:
    kube_store.put(
        kl.service(
            "two-ports",
            ports=[
                {"name": "http", "port": 8080, "targetPort": 8000},
                {"name": "metrics", "port": 9090, "targetPort": 9100},
            ],
        )
    )
    columns = resolve(
        matrix_text(
            kubeconfig, f"a: {{kind: kubernetes-service, service: two-ports, port: {port}}}"
        )
    )
    assert set(errors_of(columns).values()) == {message}
    assert all(c.error == ("target-error", message) for c in columns.values())
    assert columns["a/dns"].facts["ports"][1]["name"] == "metrics"  # the facts stay


def test_an_unknown_service_is_a_target_error_naming_the_services_there(
    kube_store: kl.Store, kubeconfig: Path, backend: int
) -> None:
    loopback_service(kube_store, backend)
    result = run(
        matrix_text(kubeconfig, "ghost: {kind: kubernetes-service, service: helth-predict}")
    )
    assert result.summary.by_status == {"target-error": len(VIAS)}
    for via in VIAS:
        found = cell(result, "here", f"ghost/{via}")
        assert found.message == (
            "Service default/helth-predict not found (`kubectl get svc -n default`); "
            f"Services in default: {SERVICE}"
        )


def test_vias_that_a_service_cannot_offer_say_why(kube_store: kl.Store, kubeconfig: Path) -> None:
    kube_store.put(
        kl.service("internal", selector={"app": "none"}, ports=[{"name": "http", "port": 80}])
    )
    kube_store.put(
        kl.service("headless", selector={"app": "none"}, cluster_ip="None", ports=[{"port": 80}])
    )
    kube_store.put(kl.service("ext", type="ExternalName", ports=[{"port": 443}]))
    columns = resolve(
        matrix_text(
            kubeconfig,
            "internal: {kind: kubernetes-service, service: internal}\n"
            "  headless: {kind: kubernetes-service, service: headless, via: [cluster-ip, dns]}\n"
            "  ext: {kind: kubernetes-service, service: ext, via: [dns, endpoints]}",
        )
    )
    errors = errors_of(columns)
    assert (
        errors["internal/node-port"]
        == "Service default/internal is of type ClusterIP: its port 80 has no nodePort"
    )
    assert (
        errors["internal/endpoints"]
        == "Service default/internal has no endpoint at all (its selector matches no running pod)"
    )
    assert errors["internal/port-forward"] == errors["internal/endpoints"]
    assert (
        errors["headless/cluster-ip"]
        == "Service default/headless is headless (clusterIP: None): use dns or endpoints"
    )
    assert errors["ext/endpoints"].startswith("Service default/ext is an ExternalName Service")
    for ok in (
        "internal/cluster-ip",
        "internal/dns",
        "internal/dns-short",
        "headless/dns",
        "ext/dns",
    ):
        assert ok not in errors


def test_a_service_without_ready_endpoints_names_the_not_ready_ones(
    kube_store: kl.Store, kubeconfig: Path, backend: int
) -> None:
    loopback_service(kube_store, backend, ready=0, not_ready=2)
    columns = resolve(
        matrix_text(
            kubeconfig,
            f"api: {{kind: kubernetes-service, service: {SERVICE}, via: [endpoints, port-forward, cluster-ip]}}",
        )
    )
    message = "Service default/api has no ready endpoint (2 not ready: 127.0.0.3 (api-0), 127.0.0.3 (api-1))"
    assert errors_of(columns) == {"api/endpoints": message, "api/port-forward": message}
    assert (
        columns["api/cluster-ip"].facts["ready"],
        columns["api/cluster-ip"].facts["not_ready"],
    ) == (0, 2)


# =============================================================================================
# Probing on loopback: every via through a real socket, port-forward through the API server
# =============================================================================================


def test_every_via_is_probed_over_loopback_and_answers(
    kube_store: kl.Store, kubeconfig: Path, backend: int
) -> None:
    loopback_service(kube_store, backend, ready=2, not_ready=1)
    # dns and dns-short: no made-up name ever goes to this machine's resolver (lab test below)
    result = run(
        matrix_text(
            kubeconfig,
            f"api: {{kind: kubernetes-service, service: {SERVICE}, path: /health, "
            "via: [cluster-ip, node-port, endpoints, port-forward]}",
        )
    )
    assert result.summary.by_status == {"ok": 4}, [(c.target, c.message) for c in result.cells]
    node_port = cell(result, "here", "api/node-port")
    tcp = [c for c in node_port.checks if c.name == "tcp"]
    assert [(c.address, c.port, c.status) for c in tcp] == [
        ("127.0.0.1", backend, "ok"),
        ("127.0.0.2", backend, "ok"),
    ]
    forwarded = cell(result, "here", "api/port-forward")
    http = next(c for c in forwarded.checks if c.name == "http")
    assert http.http_status == 200
    tunnel = target(result, "api/port-forward").facts["port_forward"]
    assert tunnel["pod"] == "api-0"
    assert tunnel["pod_port"] == backend
    assert tunnel["connections"] >= 1
    assert tunnel["bytes_from_pod"] > 0
    assert tunnel["errors"] == []
    assert target(result, "api/port-forward").via == "port-forward"


def test_a_node_that_does_not_forward_the_node_port_is_recorded_per_address(
    kube_store: kl.Store, kubeconfig: Path, backend: int
) -> None:
    loopback_service(kube_store, backend)
    kube_store.put(kl.node("node-c", "127.0.0.3"))  # nothing listens there
    result = run(
        matrix_text(
            kubeconfig, f"api: {{kind: kubernetes-service, service: {SERVICE}, via: [node-port]}}"
        )
    )
    found = cell(result, "here", "api/node-port")
    assert found.status == "refused"
    assert [(c.address, c.errno_name) for c in found.checks] == [
        ("127.0.0.1", None),
        ("127.0.0.2", None),
        ("127.0.0.3", "ECONNREFUSED"),
    ]


def test_a_pod_that_refuses_the_forwarded_port_makes_the_column_refused_in_the_kubelets_words(
    kube_store: kl.Store, kubeconfig: Path, backend: int
) -> None:
    loopback_service(kube_store, backend, forward_to=closed_port())
    result = run(
        matrix_text(
            kubeconfig,
            f"api: {{kind: kubernetes-service, service: {SERVICE}, via: [port-forward]}}",
        )
    )
    found = cell(result, "here", "api/port-forward")
    assert found.status == "refused"
    assert found.message is not None
    assert found.message.startswith("port-forward to pod default/api-0 port")
    assert "the kubelet says: error forwarding port" in found.message
    assert "connect: connection refused" in found.message


def test_a_port_forward_websocket_dropped_mid_body_resets_the_probe(
    kube_apiserver: kl.ApiServer, kubeconfig: Path, backend: int
) -> None:
    loopback_service(kube_apiserver.store, backend)
    kube_apiserver.inject("*/portforward", drop_after_bytes=1000)
    result = run(
        matrix_text(
            kubeconfig,
            f"api: {{kind: kubernetes-service, service: {SERVICE}, via: [port-forward], path: /bytes/500000}}",
        )
    )
    found = cell(result, "here", "api/port-forward")
    assert found.status == "reset", [c.model_dump(exclude_none=True) for c in found.checks]
    tunnel = target(result, "api/port-forward").facts["port_forward"]
    assert tunnel["errors"] == ["the WebSocket through the API server dropped (no close frame)"]


def test_a_port_forward_websocket_dropped_before_the_port_is_announced_is_a_target_error(
    kube_apiserver: kl.ApiServer, kubeconfig: Path, backend: int
) -> None:
    loopback_service(kube_apiserver.store, backend)
    kube_apiserver.inject("*/portforward", drop_after_bytes=0)  # cut after the first frame
    columns = resolve(
        matrix_text(
            kubeconfig,
            f"api: {{kind: kubernetes-service, service: {SERVICE}, via: [port-forward]}}",
        )
    )
    assert errors_of(columns) == {
        "api/port-forward": f"port-forward to pod default/api-0 port {backend}: the WebSocket "
        "through the API server dropped before the kubelet announced the port"
    }


def test_a_refused_port_forward_upgrade_is_a_target_error(
    kube_apiserver: kl.ApiServer, kubeconfig: Path, backend: int
) -> None:
    loopback_service(kube_apiserver.store, backend)
    kube_apiserver.inject("*/portforward", status=403)
    columns = resolve(
        matrix_text(
            kubeconfig,
            f"api: {{kind: kubernetes-service, service: {SERVICE}, via: [port-forward, endpoints]}}",
        )
    )
    assert errors_of(columns) == {
        "api/port-forward": "port-forward to pod default/api-0 port "
        f"{backend}: needs create on pods/portforward in namespace default (the API server "
        "refused the WebSocket upgrade: 403 Forbidden; before Kubernetes 1.30 the verb is get)"
    }


@pytest.mark.anyio
async def test_the_tunnel_relays_a_10_mib_body_and_closes_with_the_run(
    kube_store: kl.Store, kubeconfig: Path, backend: int
) -> None:
    """Measured: port-forward throughput for a 10 MiB HTTP body against the direct path."""
    loopback_service(kube_store, backend)
    kube = await open_client(KubeSettings(kubeconfig=str(kubeconfig)))
    size = 10 * 1024 * 1024
    try:

        async def open_ws() -> Any:
            return await kube.ws_core.connect_get_namespaced_pod_portforward(
                "api-0",
                "default",
                ports=str(backend),
                _preload_content=False,
                _headers={"sec-websocket-protocol": CHANNEL_PROTOCOL},
            )

        async with PortForward(open_ws, PodPort("default", "api-0", backend)) as tunnel:
            assert await tunnel.check() is None
            local = tunnel.port
            direct_s = forwarded_s = float("inf")
            for _ in range(3):  # best of three, alternating, both paths warm
                seconds, direct = await timed_get("127.0.0.1", backend, f"/bytes/{size}")
                direct_s = min(direct_s, seconds)
                seconds, body = await timed_get("127.0.0.1", tunnel.port, f"/bytes/{size}")
                forwarded_s = min(forwarded_s, seconds)
    finally:
        await kube.aclose()
    assert len(body) == len(direct) == size
    assert hashlib.sha256(body).digest() == hashlib.sha256(direct).digest()
    with pytest.raises(ConnectionRefusedError):  # the listener is gone with the tunnel
        await asyncio.open_connection("127.0.0.1", local)
    mib = size / 1024 / 1024
    print(
        f"\nport-forward 10 MiB: {forwarded_s * 1000:.0f} ms ({mib / forwarded_s:.0f} MiB/s); "
        f"direct {direct_s * 1000:.0f} ms ({mib / direct_s:.0f} MiB/s); "
        f"{forwarded_s / direct_s:.1f}x"
    )


async def timed_get(host: str, port: int, path: str) -> tuple[float, bytes]:
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    elapsed = time.perf_counter() - started
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    return elapsed, raw.partition(b"\r\n\r\n")[2]


# =============================================================================================
# API failures are column data
# =============================================================================================


def test_a_bad_token_is_401_in_every_column_and_every_pod_row(
    kube_apiserver: kl.ApiServer, tmp_path: Path, backend: int
) -> None:
    loopback_service(kube_apiserver.store, backend)
    bad = kube_apiserver.write_kubeconfig(tmp_path / "kc", token="stolen-and-expired")
    result = run(
        matrix_text(
            bad,
            f"api: {{kind: kubernetes-service, service: {SERVICE}, via: [cluster-ip, endpoints]}}\n"
            f"  health: {{kind: tcp, host: 127.0.0.1, port: {backend}}}",
            "here: {kind: local}\n  pods: {kind: kubernetes, selector: app=api}",
        )
    )
    assert result.summary.by_status == {"target-error": 4, "ok": 1, "source-error": 1}
    message = cell(result, "here", "api/cluster-ip").message
    assert message == (
        f"reading Service default/{SERVICE}: the API server {kube_apiserver.url} refused the "
        "credentials (401 Unauthorized): the kubeconfig's token or certificate (context "
        "minikube) is wrong or expired"
    )
    assert cell(result, "pods", "api/endpoints").message == message
    pods = row(result, "pods")
    assert pods.status == "error"
    assert pods.message == (
        "finding pods matching app=api: the API server "
        f"{kube_apiserver.url} refused the credentials (401 Unauthorized): the kubeconfig's "
        "token or certificate (context minikube) is wrong or expired"
    )
    assert cell(result, "pods", "health").message == pods.message


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (
            {"status": 500},
            "the API server answered 500 InternalError: Internal error occurred: kubelab injected fault",
        ),
        ({"abort": True}, "closed the connection without answering"),
        ({"delay": 5.0}, "no answer from the API server {url} within 0.3s"),
    ],
)
def test_api_server_faults_on_the_service_read_are_target_errors(
    kube_apiserver: kl.ApiServer,
    kubeconfig: Path,
    backend: int,
    fault: dict[str, Any],
    message: str,
) -> None:
    loopback_service(kube_apiserver.store, backend)
    kube_apiserver.inject(f"/api/v1/namespaces/default/services/{SERVICE}", **fault)
    text = matrix_text(kubeconfig, f"api: {{kind: kubernetes-service, service: {SERVICE}}}")
    text = text.replace("timeout: 3s", "timeout: 300ms")
    started = time.monotonic()
    columns = resolve(text)
    assert time.monotonic() - started < 5.0  # never waits out the 5 s delay
    errors = set(errors_of(columns).values())
    assert len(errors) == 1
    assert message.format(url=kube_apiserver.url) in errors.pop()
    assert len(columns) == len(VIAS)


def test_a_failed_lookup_only_fails_the_vias_that_need_it(
    kube_apiserver: kl.ApiServer, kubeconfig: Path, backend: int
) -> None:
    loopback_service(kube_apiserver.store, backend)
    kube_apiserver.inject("/api/v1/nodes", status=403)
    columns = resolve(
        matrix_text(kubeconfig, f"api: {{kind: kubernetes-service, service: {SERVICE}}}")
    )
    errors = errors_of(columns)
    assert list(errors) == ["api/node-port"]
    assert errors["api/node-port"].startswith(
        "listing the nodes: needs list on nodes cluster-wide (403 Forbidden: nodes is forbidden"
    )
    assert columns["api/endpoints"].facts["errors"] == {"nodes": errors["api/node-port"]}


def test_without_endpointslices_the_v1_endpoints_are_read(
    kube_apiserver: kl.ApiServer, kubeconfig: Path, backend: int
) -> None:
    """An API server without discovery.k8s.io/v1 answers 404 there: core v1 Endpoints."""
    loopback_service(kube_apiserver.store, backend, ready=2, not_ready=1)
    kube_apiserver.inject("/apis/discovery.k8s.io/v1/namespaces/*/endpointslices", status=404)
    columns = resolve(
        matrix_text(
            kubeconfig, f"api: {{kind: kubernetes-service, service: {SERVICE}, via: [endpoints]}}"
        )
    )
    column = columns["api/endpoints"]
    assert column.error is None
    assert column.plan is not None
    assert column.plan["addresses"] == ["127.0.0.1", "127.0.0.2"]
    assert (column.facts["endpoints_from"], column.facts["ready"], column.facts["not_ready"]) == (
        "Endpoints",
        2,
        1,
    )
    assert kube_apiserver.requests_to(f"/api/v1/namespaces/default/endpoints/{SERVICE}")


def test_an_unreachable_api_server_is_named_with_its_errno(tmp_path: Path) -> None:
    from tests.kubelab.kubeconfig import write_kubeconfig

    url = f"http://127.0.0.1:{closed_port()}"
    kc = write_kubeconfig(tmp_path / "kc", url, token="t")
    columns = resolve(matrix_text(kc, "api: {kind: kubernetes-service, service: api, via: [dns]}"))
    assert errors_of(columns) == {
        "api/dns": f"reading Service default/api: the API server {url} is unreachable: "
        "ECONNREFUSED (connection refused)"
    }


def test_an_api_server_behind_a_dead_proxy_says_the_proxy_variable_applies(
    kube_store: kl.Store, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kubernetes-asyncio's session trusts HTTP(S)_PROXY: an Airflow task's proxy variables
    reach the API calls too (the story's very trap)."""
    kube_store.put(kl.service("api", ports=[{"port": 80}]))
    for name in ("NO_PROXY", "no_proxy", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    columns = resolve(
        matrix_text(kubeconfig, "api: {kind: kubernetes-service, service: api, via: [dns]}")
    )
    (message,) = errors_of(columns).values()
    assert "the proxy for http://127.0.0.1:" in message
    assert "ECONNREFUSED" in message
    assert "unless NO_PROXY names the API server" in message


def test_no_kubeconfig_anywhere_is_said_once_per_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    columns = resolve(
        matrix_text(None, "api: {kind: kubernetes-service, service: api, via: [dns, endpoints]}")
    )
    assert set(errors_of(columns).values()) == {
        "no Kubernetes configuration: give --kubeconfig (or kubernetes.kubeconfig, or "
        "$KUBECONFIG); ~/.kube/config does not exist and this is not a pod "
        "(KUBERNETES_SERVICE_HOST is not set)"
    }
    missing = tmp_path / "nope"
    columns = resolve(
        matrix_text(missing, "api: {kind: kubernetes-service, service: api, via: [dns]}")
    )
    assert errors_of(columns) == {
        "api/dns": f"no kubeconfig file at {missing} (from --kubeconfig/kubernetes.kubeconfig)"
    }


@pytest.mark.parametrize(
    "content", ["", "- a list\n", "a bare word\n", "users: [unclosed\n", "contexts: 5\n"]
)
def test_a_file_that_is_not_a_kubeconfig_is_the_columns_error_not_the_runs(
    tmp_path: Path, content: str
) -> None:
    broken = tmp_path / "kc"
    broken.write_text(content)
    text = matrix_text(broken, "api: {kind: kubernetes-service, service: api, via: [dns]}")
    (message,) = errors_of(resolve(text)).values()
    assert message.startswith(f"cannot load kubeconfig {broken}: ")
    result = run(text)
    assert result.exit_status != 3
    assert result.summary.by_status == {"target-error": 1}


def test_tls_with_the_kubeconfigs_certificate_authority(
    kube_tls_apiserver: kl.ApiServer, tmp_path: Path, backend: int
) -> None:
    loopback_service(kube_tls_apiserver.store, backend)
    kc = kube_tls_apiserver.write_kubeconfig(tmp_path / "kc")
    result = run(
        matrix_text(
            kc,
            f"api: {{kind: kubernetes-service, service: {SERVICE}, via: [cluster-ip, port-forward]}}",
        )
    )
    assert result.summary.by_status == {"ok": 2}
    assert target(result, "api/cluster-ip").facts["api_server"].startswith("https://127.0.0.1:")


# =============================================================================================
# --kubeconfig and --context, from the command line to the API calls
# =============================================================================================


def test_kubeconfig_and_context_options_choose_the_cluster(
    kube_apiserver: kl.ApiServer, tmp_path: Path, backend: int
) -> None:
    loopback_service(kube_apiserver.store, backend)
    dead = f"http://127.0.0.1:{closed_port()}"
    kc = kube_apiserver.write_kubeconfig(tmp_path / "kc", extra_contexts={"broken": dead})
    matrix = tmp_path / "m.yaml"
    # the file names a kubeconfig that does not exist and a context the CLI overrides
    matrix.write_text(
        matrix_text(
            tmp_path / "elsewhere",
            f"api: {{kind: kubernetes-service, service: {SERVICE}, via: [cluster-ip]}}",
        ).replace("timeout: 3s", "context: broken, timeout: 3s")
    )

    def cli(*args: str) -> dict[str, Any]:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "probe_engine",
                "run",
                str(matrix),
                "--no-reports",
                "--output",
                "json",
                "--no-progress",
                *args,
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO,
            timeout=60,
        )
        assert done.returncode in (0, 1), done.stderr
        report: dict[str, Any] = json.loads(done.stdout)
        return report

    (without,) = cli()["cells"]
    assert (
        without["message"]
        == f"no kubeconfig file at {tmp_path / 'elsewhere'} (from --kubeconfig/kubernetes.kubeconfig)"
    )
    (broken,) = cli("--kubeconfig", str(kc))["cells"]
    assert broken["message"].endswith(
        f"the API server {dead} is unreachable: ECONNREFUSED (connection refused)"
    )
    report = cli("--kubeconfig", str(kc), "--context", "minikube")
    (good,) = report["cells"]
    assert good["status"] == "ok"
    (info,) = report["targets"]
    assert info["facts"]["context"] == "minikube"
    assert info["facts"]["api_server"] == kube_apiserver.url


def test_kubeconfig_from_the_environment_and_a_missing_context(
    kube_apiserver: kl.ApiServer, tmp_path: Path, backend: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    loopback_service(kube_apiserver.store, backend)
    kc = kube_apiserver.write_kubeconfig(tmp_path / "kc")
    monkeypatch.setenv("KUBECONFIG", str(kc))
    text = matrix_text(
        None, f"api: {{kind: kubernetes-service, service: {SERVICE}, via: [cluster-ip]}}"
    )
    assert errors_of(resolve(text)) == {}
    (message,) = errors_of(resolve(text, context="kind-kind")).values()
    assert message.startswith(f"kubeconfig {kc} has no usable context 'kind-kind'")


# =============================================================================================
# Pod sources: one exec per pod, one row per pod
# =============================================================================================


def worker_pods(store: kl.Store, count: int, runtime: kl.PodRuntime | None = None) -> list[str]:
    names = []
    for i in range(count):
        name = f"airflow-worker-{i}"
        store.put(
            kl.pod(
                name,
                labels={"app": "airflow-worker"},
                pod_ip=f"10.244.1.{i + 10}",
                node_name=f"node-{i % 3}",
                env={"HTTP_PROXY": "http://proxy.corp:3128"},
            ),
            runtime=runtime,
        )
        names.append(name)
    return names


def test_a_selector_fans_out_one_row_per_running_pod(
    kube_apiserver: kl.ApiServer, kubeconfig: Path, backend: int
) -> None:
    names = worker_pods(kube_apiserver.store, 3)
    kube_apiserver.store.put(
        kl.pod("airflow-worker-pending", labels={"app": "airflow-worker"}, phase="Pending")
    )
    loopback_service(kube_apiserver.store, backend)
    result = run(
        matrix_text(
            kubeconfig,
            f"health: {{kind: http, url: 'http://127.0.0.1:{backend}/health'}}\n"
            f"  closed: {{kind: tcp, host: 127.0.0.1, port: {closed_port()}}}\n"
            f"  api: {{kind: kubernetes-service, service: {SERVICE}, via: [endpoints, port-forward]}}",
            "workers: {kind: kubernetes, selector: app=airflow-worker, trust_env: false}\n"
            "  two: {kind: kubernetes, selector: app=airflow-worker, max_pods: 2}",
        )
    )
    rows = [f"workers/{n}" for n in names]
    assert result.rows() == [*rows, "two/airflow-worker-0", "two/airflow-worker-1"]
    for name in rows:
        assert cell(result, name, "health").status == "ok"
        assert cell(result, name, "closed").status == "refused"
        assert cell(result, name, "api/endpoints").status == "ok"
        forwarded = cell(result, name, "api/port-forward")
        assert forwarded.status == "source-error"
        assert forwarded.message is not None
        assert "a kubernetes source probes from elsewhere and cannot reach it" in forwarded.message
    facts = row(result, "workers/airflow-worker-1").facts
    assert facts["pod"] == "airflow-worker-1"
    assert facts["pod_ip"] == "10.244.1.11"
    assert facts["node"] == "node-1"
    assert facts["namespace"] == "default"
    assert facts["labels"] == {"app": "airflow-worker"}
    assert facts["container"] == "main"
    assert facts["proxy_env"]["HTTP_PROXY"] == "http://proxy.corp:3128"  # the agent's own view
    assert "python" in facts
    execs = kube_apiserver.execs
    # one exec per pod and source, never one per cell
    assert sorted(e.pod for e in execs) == sorted([*names, *names[:2]])
    assert {e.protocol for e in execs} == {"v4.channel.k8s.io"}
    assert {e.exit_code for e in execs} == {0}


def test_exec_fan_out_over_20_pods(
    kube_apiserver: kl.ApiServer, kubeconfig: Path, backend: int
) -> None:
    """Measured: exec fan-out over 20 pods, one agent exec each."""
    worker_pods(kube_apiserver.store, 20)
    text = matrix_text(
        kubeconfig,
        f"health: {{kind: tcp, host: 127.0.0.1, port: {backend}}}",
        "workers: {kind: kubernetes, selector: app=airflow-worker}",
    )
    run(text)  # warm: imports, the first python3 start
    kube_apiserver.execs.clear()
    started = time.perf_counter()
    result = run(text)
    elapsed = time.perf_counter() - started
    assert len(result.rows()) == 20
    assert result.summary.by_status == {"ok": 20}
    assert len(kube_apiserver.execs) == 20
    print(f"\nexec fan-out: 20 pods, one agent exec each, whole run {elapsed * 1000:.0f} ms")


def test_one_named_pod_and_its_named_container(
    kube_store: kl.Store, kubeconfig: Path, backend: int
) -> None:
    kube_store.put(kl.pod("debug", containers=["app", "toolbox"]))
    target_line = f"health: {{kind: tcp, host: 127.0.0.1, port: {backend}}}"
    result = run(
        matrix_text(
            kubeconfig,
            target_line,
            "box: {kind: kubernetes, pod: debug, container: toolbox}\n"
            "  typo: {kind: kubernetes, pod: debug, container: tolbox}\n"
            "  ghost: {kind: kubernetes, pod: ghost}",
        )
    )
    assert cell(result, "box/debug", "health").status == "ok"
    assert row(result, "box/debug").facts["container"] == "toolbox"
    assert cell(result, "typo/debug", "health").message == (
        "pod debug has no container 'tolbox' (its containers: app, toolbox)"
    )
    assert cell(result, "ghost", "health").message == "pod default/ghost not found"
    assert row(result, "ghost").status == "error"


def test_no_matching_pod_and_a_bad_selector_are_row_errors(
    kube_store: kl.Store, kubeconfig: Path, backend: int
) -> None:
    kube_store.put(kl.pod("done", labels={"app": "job"}, phase="Succeeded"))
    result = run(
        matrix_text(
            kubeconfig,
            f"health: {{kind: tcp, host: 127.0.0.1, port: {backend}}}",
            "none: {kind: kubernetes, selector: app=nothing}\n"
            "  finished: {kind: kubernetes, selector: app=job}\n"
            "  bad: {kind: kubernetes, selector: 'app in (a'}",
        )
    )
    assert (
        cell(result, "none", "health").message
        == "no pod matches selector app=nothing in namespace default"
    )
    assert cell(result, "finished", "health").message == (
        "no Running pod matches selector app=job in namespace default (found: done (Succeeded))"
    )
    bad = cell(result, "bad", "health")
    assert bad.status == "source-error"
    assert bad.message is not None
    assert bad.message.startswith(
        "finding pods matching app in (a: the API server answered 400 BadRequest"
    )


def test_a_refused_exec_is_a_source_error_for_the_pod(
    kube_apiserver: kl.ApiServer, kubeconfig: Path, backend: int
) -> None:
    worker_pods(kube_apiserver.store, 1)
    kube_apiserver.inject("*/pods/*/exec", status=403)
    result = run(
        matrix_text(
            kubeconfig,
            f"health: {{kind: tcp, host: 127.0.0.1, port: {backend}}}",
            "workers: {kind: kubernetes, selector: app=airflow-worker}",
        )
    )
    found = cell(result, "workers/airflow-worker-0", "health")
    assert found.status == "source-error"
    assert found.message == (
        "exec in pod default/airflow-worker-0: needs create on pods/exec in namespace default "
        "(the API server refused the WebSocket upgrade: 403 Forbidden; before Kubernetes 1.30 "
        "the verb is get)"
    )
    assert row(result, "workers/airflow-worker-0").status == "error"


def test_an_exec_dropped_mid_run_fails_only_the_unanswered_cells(
    kube_apiserver: kl.ApiServer, kubeconfig: Path, backend: int
) -> None:
    """The fast cell is answered before the drop; the hanging one never is."""
    (name,) = worker_pods(kube_apiserver.store, 1)
    hang = _hanging_listener()
    text = matrix_text(
        kubeconfig,
        f"fast: {{kind: tcp, host: 127.0.0.1, port: {backend}}}\n"
        f"  slow: {{kind: http, url: 'http://127.0.0.1:{hang.getsockname()[1]}/', timeout: 1500ms}}",
        "workers: {kind: kubernetes, selector: app=airflow-worker, trust_env: false}",
    )
    try:
        hello = _hello_size(kube_apiserver, text, name)
        kube_apiserver.inject("*/pods/*/exec", drop_after_bytes=hello + 20)
        result = run(text)
    finally:
        hang.close()
    assert cell(result, f"workers/{name}", "fast").status == "ok"
    slow = cell(result, f"workers/{name}", "slow")
    assert slow.status == "source-error"
    assert slow.message is not None
    assert slow.message.startswith(
        f"the exec session in pod default/{name} container main dropped after"
    )
    assert (
        "without an exit status (the WebSocket through the API server closed abnormally"
        in slow.message
    )
    assert kube_apiserver.execs[-1].dropped


def test_an_exec_dropped_right_after_hello_fails_the_row(
    kube_apiserver: kl.ApiServer, kubeconfig: Path, backend: int
) -> None:
    worker_pods(kube_apiserver.store, 1)
    kube_apiserver.inject("*/pods/*/exec", drop_after_bytes=1)
    result = run(
        matrix_text(
            kubeconfig,
            f"fast: {{kind: tcp, host: 127.0.0.1, port: {backend}}}",
            "workers: {kind: kubernetes, selector: app=airflow-worker}",
        )
    )
    found = cell(result, "workers/airflow-worker-0", "fast")
    assert found.status == "source-error"
    assert found.message is not None
    assert "dropped after" in found.message
    assert row(result, "workers/airflow-worker-0").status == "error"


def test_a_run_cut_short_stops_the_agent_and_the_prober_from_a_second_exec(
    kube_apiserver: kl.ApiServer, kubeconfig: Path, backend: int
) -> None:
    """A kubelet leaves an exec's process running when its stream closes: when the run's
    deadline cuts the cells short, a second exec signals what the first one started, the
    agent by the pid of its hello, the prober's process group by the pid of its preamble."""
    (name,) = worker_pods(kube_apiserver.store, 1)
    hang = _hanging_listener()
    text = matrix_text(
        kubeconfig,
        f"fast: {{kind: tcp, host: 127.0.0.1, port: {backend}}}\n"
        f"  slow: {{kind: http, url: 'http://127.0.0.1:{hang.getsockname()[1]}/', timeout: 60s}}",
        "agent: {kind: kubernetes, selector: app=airflow-worker, trust_env: false}\n"
        "  prober: {kind: kubernetes, selector: app=airflow-worker, tool: curl}",
    )
    try:
        result = run(text, deadline=3.0)
    finally:
        hang.close()
    for source in ("agent", "prober"):
        assert cell(result, f"{source}/{name}", "fast").status == "ok"
        assert cell(result, f"{source}/{name}", "slow").status == "cancelled"
    agent_pid = row(result, f"agent/{name}").facts["pid"]
    prober_pid = row(result, f"prober/{name}").facts["pid"]
    kills = [e for e in kube_apiserver.execs if "kill" in " ".join(e.command)]
    by_command = {e.command[0]: e for e in kills}
    assert sorted(by_command) == ["python3", "sh"], [e.command for e in kills]
    agent_kill = by_command["python3"]
    assert agent_kill.command == [
        "python3",
        "-c",
        f"import os, signal; os.kill({agent_pid}, signal.SIGTERM)",
    ]
    assert agent_kill.exit_code == 0  # the agent was still there to be signalled
    assert by_command["sh"].command[-2:] == ["kill", str(prober_pid)]
    assert {e.pod for e in kills} == {name}


def _hanging_listener() -> Any:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)  # accepts (the kernel does) and never answers
    return sock


def _hello_size(server: kl.ApiServer, text: str, pod: str) -> int:
    """Bytes of the agent's lines in this pod up to its hello (its ready line, then the
    hello), as the API server counts them."""
    from probe_engine.agent.ship import agent_command, agent_payload

    loaded = load_matrix_text(text, "k.yaml", {})
    kubeconfig = loaded.matrix.kubernetes.kubeconfig  # type: ignore[union-attr]

    async def main() -> int:
        kube = await open_client(KubeSettings(kubeconfig=kubeconfig))
        lines: list[bytes] = []
        try:
            async with PodExecChannel(kube, pod, "default", None, agent_command()) as channel:
                await channel.send(agent_payload({"cells": []}))
                await channel.receive(lines.append)
        finally:
            await kube.aclose()
        hello = next(i for i, line in enumerate(lines) if b'"hello"' in line)
        return sum(len(line) + 1 for line in lines[: hello + 1])

    size = anyio.run(main)
    server.execs.clear()
    return size


def _tool_dir(root: Path, tools: tuple[str, ...]) -> Path:
    """A PATH directory holding only `tools` (symlinks): an image without python3."""
    root.mkdir()
    for name in tools:
        found = shutil.which(name)
        assert found is not None, name
        (root / name).symlink_to(found)
    return root


SHELL_TOOLS = (
    "sh",
    "date",
    "tr",
    "cut",
    "timeout",
    "curl",
    "sed",
    "grep",
    "head",
    "tail",
    "cat",
    "awk",
    "uniq",
)


def test_a_pod_without_python_falls_back_to_the_shell_prober(
    kube_store: kl.Store, kubeconfig: Path, backend: int, tmp_path: Path
) -> None:
    bin_dir = _tool_dir(tmp_path / "bin", SHELL_TOOLS)
    worker_pods(kube_store, 1, kl.PodRuntime(env={"PATH": str(bin_dir)}))
    kube_store.put(
        kl.pod("bare", labels={"app": "bare"}), runtime=kl.PodRuntime(env={"PATH": str(tmp_path)})
    )
    result = run(
        matrix_text(
            kubeconfig,
            f"health: {{kind: http, url: 'http://127.0.0.1:{backend}/health'}}\n"
            f"  closed: {{kind: tcp, host: 127.0.0.1, port: {closed_port()}}}",
            "slim: {kind: kubernetes, selector: app=airflow-worker}\n"
            "  bare: {kind: kubernetes, pod: bare}\n"
            "  bare-curl: {kind: kubernetes, pod: bare, tool: curl}\n"
            "  curl: {kind: kubernetes, selector: app=airflow-worker, tool: curl}",
        )
    )
    health = cell(result, "slim/airflow-worker-0", "health")
    assert (health.status, health.tool) == ("ok", "curl")
    assert cell(result, "slim/airflow-worker-0", "closed").status == "refused"
    assert row(result, "slim/airflow-worker-0").facts["tool"] == "auto"
    assert cell(result, "curl/airflow-worker-0", "health").tool == "curl"
    bare = cell(result, "bare/bare", "health")
    assert bare.status == "source-error"
    assert bare.message is not None
    assert bare.message.startswith(
        "neither python3 nor sh can run in pod default/bare container main"
    )
    assert "executable file not found in $PATH" in bare.message
    # With tool: curl the agent never ran: only the missing sh is to blame.
    bare_curl = cell(result, "bare-curl/bare", "health")
    assert bare_curl.status == "source-error"
    assert bare_curl.message is not None
    assert bare_curl.message.startswith(
        "no sh in pod default/bare container main: the shell prober cannot run curl"
    )


def test_an_agent_that_fails_in_the_pod_reports_its_exit_status_and_stderr(
    kube_store: kl.Store, kubeconfig: Path, backend: int, tmp_path: Path
) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    python = fake / "python3"
    python.write_text("#!/bin/sh\necho 'Fatal Python error: no encodings module' >&2\nexit 3\n")
    python.chmod(0o755)
    worker_pods(kube_store, 1, kl.PodRuntime(env={"PATH": f"{fake}:/usr/bin:/bin"}))
    result = run(
        matrix_text(
            kubeconfig,
            f"health: {{kind: tcp, host: 127.0.0.1, port: {backend}}}",
            "workers: {kind: kubernetes, selector: app=airflow-worker}",
        )
    )
    found = cell(result, "workers/airflow-worker-0", "health")
    assert found.status == "source-error"
    assert found.message == (
        "the agent in pod default/airflow-worker-0 container main failed: command terminated "
        "with non-zero exit code: error executing command [python3 -c "
        + found.message.split("[python3 -c ", 1)[1].split("], exit code 3", 1)[0]
        + "], exit code 3; stderr: Fatal Python error: no encodings module"
    )


# =============================================================================================
# Measured: resolving a Service with 3 nodes and 10 endpoints
# =============================================================================================


def test_resolving_a_service_with_3_nodes_and_10_endpoints(
    kube_store: kl.Store, kubeconfig: Path, backend: int
) -> None:
    from tests.kubelab.fixtures import populate_service

    populate_service(
        kube_store,
        nodes=3,
        ready=10,
        not_ready=2,
        runtime=kl.PodRuntime(forward_ports={8000: backend}),
    )
    text = matrix_text(
        kubeconfig,
        "api: {kind: kubernetes-service, service: health-predict-api-service, path: /health}",
    )
    loaded = load_matrix_text(text, "k.yaml", {})
    spec = loaded.matrix.targets["api"]
    timings: dict[str, float] = {}
    without_tunnel = spec.model_copy(update={"via": [v for v in VIAS if v != "port-forward"]})
    tunnel_only = spec.model_copy(update={"via": ["port-forward"]})

    async def timed(what: str, times: int, target: Any, context: RunContext) -> list[Column]:
        started = time.perf_counter()
        for _ in range(times):
            columns = await RESOLVERS[spec.kind]("api", target, context)
        timings[what] = (time.perf_counter() - started) / times
        return columns

    async def main() -> list[Column]:
        async with RunContext(loaded.matrix) as context:
            columns = await timed("first", 1, spec, context)
            await timed("warm", 20, without_tunnel, context)
            await timed("tunnel", 5, tunnel_only, context)
            return columns

    columns = anyio.run(main)
    assert errors_of({c.name: c for c in columns}) == {}
    facts = columns[0].facts
    assert (facts["ready"], facts["not_ready"], len(facts["nodes"])) == (10, 2, 3)
    node_port = next(c for c in columns if c.via == "node-port")
    assert node_port.plan is not None
    assert node_port.plan["addresses"] == [
        "192.168.49.2",
        "192.168.49.3",
        "192.168.49.4",
        "203.0.113.10",
    ]
    endpoints = next(c for c in columns if c.via == "endpoints")
    assert endpoints.plan is not None
    assert len(endpoints.plan["addresses"]) == 10
    print(
        f"\nresolve 3 nodes / 10 endpoints: all 6 vias with a new client "
        f"{timings['first'] * 1000:.0f} ms; warm client, 5 vias {timings['warm'] * 1000:.1f} ms; "
        f"port-forward alone (tunnel + check) {timings['tunnel'] * 1000:.0f} ms"
    )


# =============================================================================================
# The real kernel: the network-namespace lab behind the emulated control plane (root)
# =============================================================================================


def lab_cluster(store: kl.Store, lab: Lab) -> None:
    """The lab's Service, node and pod, as the API server would describe them; the probing
    pods (scheduler, worker, a node debug pod) each run in a lab namespace."""
    labels = {"app": "health-predict-api"}
    store.put(
        kl.service(
            lab.service_name,
            lab.service_namespace,
            selector=labels,
            type="NodePort",
            cluster_ip=lab.cluster_ip,
            ports=[
                {
                    "name": "http",
                    "port": lab.service_port,
                    "targetPort": "http",
                    "nodePort": lab.node_port,
                }
            ],
        )
    )
    store.put(kl.node("minikube", lab.node_ip))
    pod_port = [{"name": "http", "containerPort": lab.pod_port}]
    store.put(
        kl.pod(lab.pod_name, labels=labels, pod_ip=lab.pod_ip, host_ip=lab.node_ip, ports=pod_port),
        runtime=kl.PodRuntime(netns=lab.pod_ns),
    )
    store.put(  # never probed: not ready
        kl.pod(
            "health-predict-api-7c9d8b6f5-lab02",
            labels=labels,
            pod_ip="10.244.0.6",
            ready=False,
            ports=pod_port,
        )
    )
    store.sync_endpoints(lab.service_name)
    for name, ns, ip in (
        ("airflow-scheduler-0", lab.scheduler_ns, lab.scheduler_ip),
        ("airflow-worker-0", lab.worker_ns, lab.worker_ip),
        ("node-debug", lab.node_ns, lab.node_ip),
    ):
        store.put(
            kl.pod(name, labels={"app": "airflow"}, pod_ip=ip), runtime=kl.PodRuntime(netns=ns)
        )


# What each lab vantage point sees through each via (the errno / resolver code when failing)
LAB_GRID = {
    "sched": {
        "cluster-ip": "ok",
        "node-port": "ok",
        "dns": "ok",
        "dns-short": "ok",
        "endpoints": "ENETUNREACH",
    },
    "pods/airflow-scheduler-0": {
        "cluster-ip": "ok",
        "node-port": "ok",
        "dns": "ok",
        "dns-short": "ok",
        "endpoints": "ENETUNREACH",
    },
    "pods/airflow-worker-0": {
        "cluster-ip": "ENETUNREACH",
        "node-port": "ENETUNREACH",
        "dns": "EAI_AGAIN",
        "dns-short": "EAI_AGAIN",
        "endpoints": "ENETUNREACH",
    },
    "pods/node-debug": {
        "cluster-ip": "ok",
        "node-port": "ok",
        "dns": "ok",
        "dns-short": "ok",
        "endpoints": "ok",
    },
}


@pytest.fixture
def lab_result(netlab: Lab, kube_store: kl.Store, kubeconfig: Path) -> MatrixResult:
    require(os.geteuid() == 0, "the lab needs root")
    lab_cluster(kube_store, netlab)
    text = f"""
kubernetes: {{kubeconfig: '{kubeconfig}'}}
defaults: {{timeout: 3s}}
sources:
  sched: {{kind: netns, name: {netlab.scheduler_ns}}}
  pods: {{kind: kubernetes, selector: app=airflow}}
  here: {{kind: local}}
targets:
  api: {{kind: kubernetes-service, service: {netlab.service_name}, path: /health}}
cells:
  - {{source: sched, target: "*"}}
  - {{source: pods, target: "*"}}
  - {{source: here, target: api/port-forward}}
exclude:
  - {{source: sched, target: api/port-forward}}
"""
    return run(text)


def _outcome(result: MatrixResult, source: str, column: str) -> str:
    found = cell(result, source, column)
    if found.status == "ok":
        return "ok"
    failed = next(c for c in found.checks if c.status != "ok")
    return failed.errno_name or failed.reason or found.status


@pytest.mark.root
def test_every_via_from_every_vantage_point_has_the_kernels_answer(
    lab_result: MatrixResult,
) -> None:
    seen = {
        source: {via: _outcome(lab_result, source, f"api/{via}") for via in vias}
        for source, vias in LAB_GRID.items()
    }
    assert seen == LAB_GRID


@pytest.mark.root
def test_through_the_lab_the_pod_answers_each_reachable_via(
    lab_result: MatrixResult, netlab: Lab
) -> None:
    for via in ("cluster-ip", "node-port", "dns", "dns-short", "endpoints"):
        found = cell(lab_result, "pods/node-debug", f"api/{via}")
        http = next(c for c in found.checks if c.name == "http")
        assert http.http_status == 200
    dns = cell(lab_result, "sched", "api/dns").checks[0]
    assert (dns.name, dns.addresses) == ("dns", [netlab.cluster_ip])
    forwarded = cell(lab_result, "here", "api/port-forward")
    assert forwarded.status == "ok"
    tunnel = target(lab_result, "api/port-forward").facts["port_forward"]
    assert (tunnel["pod"], tunnel["pod_port"]) == (netlab.pod_name, netlab.pod_port)
    assert cell(lab_result, "pods/node-debug", "api/port-forward").status == "source-error"


@pytest.mark.root
def test_lab_facts_name_the_named_target_port_and_the_not_ready_pod(
    lab_result: MatrixResult, netlab: Lab
) -> None:
    facts = target(lab_result, "api/endpoints").facts
    assert facts["ports"][0]["targetPort"] == "http"  # a named targetPort...
    assert facts["target_port"] == netlab.pod_port  # ...resolved through the EndpointSlice
    assert (facts["ready"], facts["not_ready"]) == (1, 1)
    assert facts["ready_addresses"] == [netlab.pod_ip]
    assert facts["not_ready_addresses"][0]["ip"] == "10.244.0.6"
    worker = row(lab_result, "pods/airflow-worker-0").facts
    assert worker["pod_ip"] == netlab.worker_ip
    assert worker["default_route"] is False  # the agent's view from inside the namespace


@pytest.mark.root
def test_lab_diagnosis_explains_the_vias_that_differ(lab_result: MatrixResult) -> None:
    rules = {f.rule for f in lab_result.findings}
    assert "via-differs" in rules, [f.title for f in lab_result.findings]
    [differs] = [f for f in lab_result.findings if f.rule == "via-differs"]
    check_golden(differs, "via-differs")


@pytest.mark.root
def test_a_second_node_off_the_network_shows_in_the_node_port_cell(
    netlab: Lab, kube_store: kl.Store, kubeconfig: Path
) -> None:
    require(os.geteuid() == 0, "the lab needs root")
    lab_cluster(kube_store, netlab)
    kube_store.put(kl.node("minikube-m02", netlab.unrouted_ip))
    result = run(
        f"""
kubernetes: {{kubeconfig: '{kubeconfig}'}}
sources:
  sched: {{kind: netns, name: {netlab.scheduler_ns}}}
targets:
  api: {{kind: kubernetes-service, service: {netlab.service_name}, via: [node-port]}}
"""
    )
    found = cell(result, "sched", "api/node-port")
    assert found.status == "unreachable"
    assert [(c.address, c.errno_name) for c in found.checks] == [
        (netlab.node_ip, None),
        (netlab.unrouted_ip, "ENETUNREACH"),
    ]
