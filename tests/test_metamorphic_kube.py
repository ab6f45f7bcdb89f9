"""A cell answers the same in any matrix as it does alone, for Kubernetes columns (see
tests/metamorphic.py): a Service reached by ClusterIP, NodePort, endpoints and port-forward
tunnels (one per column: no tunnel is shared between targets), written once or several times,
beside plain targets on the same addresses, from this process, a child, curl and the pods.

Only the control plane is emulated (tests/kubelab); every address is a real loopback listener,
the tunnels relay through the API server's WebSocket, and pod exec runs the shipped agent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.kubelab import apiserver as kl
from tests.test_kubernetes import backend, closed_port, loopback_service

from .metamorphic import AloneOracle, Atom, Generated, generate, sweep

__all__ = ["backend"]  # the module fixture, shared with test_kubernetes.py

pytestmark = pytest.mark.kubernetes
MATRICES = int(os.environ.get("PE_METAMORPHIC_KUBE_MATRICES", "50"))
DEFAULTS = {"timeout": "10s"}


def pools(port: int) -> tuple[list[Atom], list[Atom]]:
    sources = [
        Atom("here", {"kind": "local", "trust_env": False}),
        Atom("py", {"kind": "process", "inherit_env": False}),
        Atom("curl", {"kind": "shell", "tool": "curl", "inherit_env": False}),
        Atom("pod", {"kind": "kubernetes", "pod": "api-0"}),
    ]

    def service(key: str, name: str, *via: str, path: str = "/health") -> Atom:
        return Atom(
            key,
            {"kind": "kubernetes-service", "service": name, "via": list(via), "path": path},
        )

    targets = [
        service("api-cluster-ip", "api", "cluster-ip"),
        service("api-node-port", "api", "node-port"),
        service("api-endpoints", "api", "endpoints"),
        service("api-forward", "api", "port-forward"),
        service("api-forward-404", "api", "port-forward", path="/missing"),
        service("api-all", "api", "cluster-ip", "node-port", "endpoints", "port-forward"),
        service("refusing-forward", "refusing", "port-forward"),
        service("refusing-endpoints", "refusing", "endpoints", "port-forward"),
        service("missing", "no-such-service", "cluster-ip"),
        Atom("tcp-backend", {"kind": "tcp", "host": "127.0.0.1", "port": port}),
        Atom("http-backend", {"kind": "http", "url": f"http://127.0.0.2:{port}/health"}),
        Atom("tcp-not-ready", {"kind": "tcp", "host": "127.0.0.3", "port": port}),
    ]
    return sources, targets


def test_every_kubernetes_cell_answers_as_it_does_alone(
    kube_store: kl.Store, kubeconfig: Path, backend: int
) -> None:
    loopback_service(kube_store, backend)
    # A second Service whose pods' port-forward is refused by the kubelet.
    loopback_service(kube_store, backend, name="refusing", forward_to=closed_port())
    extra = {"kubernetes": {"kubeconfig": str(kubeconfig), "timeout": "5s"}}
    sources, targets = pools(backend)
    oracle = AloneOracle(DEFAULTS, extra=extra)

    def make(seed: int) -> Generated:
        return generate(seed, sources, targets, DEFAULTS, max_sources=3, extra=extra)

    outcome = sweep(range(MATRICES), make, oracle, parallel=4)
    assert outcome.matrices == MATRICES
    assert not outcome.found, "\n\n".join(str(d) for d in outcome.found[:5])
    assert {s[0] for s in oracle.known} == {a.key for a in sources}
    assert {s[1] for s in oracle.known} == {a.key for a in targets}
    # The sweep saw tunnels that answer and tunnels the kubelet refuses.
    statuses = {oracle.known[k][0] for k in oracle.known if k[1].endswith("forward")}
    assert {"ok", "refused"} <= statuses, statuses
