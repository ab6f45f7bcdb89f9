"""The Kubernetes lab's fixtures, a pytest plugin registered in tests/conftest.py: a running
stand-in apiserver, its kubeconfig and store, a loopback backend, a namespace standing for a pod.
"""

from __future__ import annotations

import http.server
import os
import shutil
import socketserver
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.kubelab import apiserver as kl
from tests.session import unavailable

__all__ = [
    "HttpBackend",
    "http_backend",
    "kube_apiserver",
    "kube_store",
    "kube_tls_apiserver",
    "kubeconfig",
    "lab_netns",
    "populate_service",
]

TOKEN = "kubelab-token"


@pytest.fixture
def kube_apiserver() -> Iterator[kl.ApiServer]:
    """A running stand-in apiserver on plain HTTP, bearer token ``kubelab-token``."""
    with kl.ApiServer(token=TOKEN) as server:
        yield server


@pytest.fixture
def kube_tls_apiserver() -> Iterator[kl.ApiServer]:
    """The same over HTTPS with a self-signed certificate (its PEM in ``ca_pem``)."""
    with kl.ApiServer(token=TOKEN, tls=True) as server:
        yield server


@pytest.fixture
def kube_store(kube_apiserver: kl.ApiServer) -> kl.Store:
    """The store behind ``kube_apiserver``: put objects here, they are served at once."""
    return kube_apiserver.store


@pytest.fixture
def kubeconfig(kube_apiserver: kl.ApiServer, tmp_path: Path) -> Path:
    """A kubeconfig file for ``kube_apiserver``, context ``minikube``."""
    return kube_apiserver.write_kubeconfig(tmp_path / "kubeconfig")


def populate_service(
    store: kl.Store,
    name: str = "health-predict-api-service",
    namespace: str = "default",
    *,
    nodes: int = 1,
    ready: int = 1,
    not_ready: int = 0,
    port: int = 80,
    target_port: int | str = 8000,
    node_port: int = 30080,
    runtime: kl.PodRuntime | None = None,
) -> dict[str, object]:
    """The story's Service in miniature: a NodePort Service selecting ``app=<name>`` pods,
    ``nodes`` Ready nodes (192.168.49.2, .3, ...; the first also has an ExternalIP), ``ready`` +
    ``not_ready`` pods (10.244.0.10, ...) serving port 8000 named ``http``, EndpointSlice and
    Endpoints computed from them, and a NetworkPolicy allowing ingress on 8000 from
    ``app=airflow-worker``. Every pod gets ``runtime`` (default: local, 127.0.0.1)."""
    labels = {"app": name}
    store.put(
        kl.service(
            name,
            namespace,
            selector=labels,
            type="NodePort",
            ports=[
                {"name": "http", "port": port, "targetPort": target_port, "nodePort": node_port}
            ],
        )
    )
    node_names = ["minikube"] + [f"minikube-m{i + 2:02d}" for i in range(nodes - 1)]
    for i, node_name in enumerate(node_names):
        store.put(
            kl.node(
                node_name, f"192.168.49.{i + 2}", external_ip="203.0.113.10" if i == 0 else None
            )
        )
    for i in range(ready + not_ready):
        store.put(
            kl.pod(
                f"{name}-{i}",
                namespace,
                labels=labels,
                pod_ip=f"10.244.{i // 200}.{i % 200 + 10}",
                node_name=node_names[i % len(node_names)],
                ready=i < ready,
                ports=[{"name": "http", "containerPort": 8000}],
            ),
            runtime=runtime,
        )
    store.sync_endpoints(name, namespace)
    store.put(
        kl.network_policy(
            f"{name}-ingress",
            namespace,
            pod_selector=labels,
            ingress=[
                {
                    "from": [{"podSelector": {"matchLabels": {"app": "airflow-worker"}}}],
                    "ports": [{"protocol": "TCP", "port": 8000}],
                }
            ],
        )
    )
    return {"service": name, "namespace": namespace, "nodes": node_names}


@dataclass(frozen=True)
class HttpBackend:
    """A real HTTP server on 127.0.0.1: ``GET /health`` -> ``ok``, ``GET /bytes/N`` -> N bytes."""

    host: str
    port: int


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    CHUNK = b"0123456789abcdef" * 4096  # 64 KiB

    def do_GET(self) -> None:
        if self.path.startswith("/bytes/"):
            size = int(self.path.rsplit("/", 1)[1])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.send_header("Connection", "close")
            self.end_headers()
            left = size
            while left > 0:
                piece = self.CHUNK[: min(left, len(self.CHUNK))]
                self.wfile.write(piece)
                left -= len(piece)
        else:
            body = b"ok\n" if self.path == "/health" else b"not found\n"
            self.send_response(200 if self.path == "/health" else 404)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # a client cut off mid-body (the dropped port-forward test) is expected, not news
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@pytest.fixture
def http_backend() -> Iterator[HttpBackend]:
    """A loopback HTTP server standing for the pod's application."""
    server = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield HttpBackend("127.0.0.1", int(server.server_address[1]))
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def lab_netns() -> Iterator[str]:
    """A fresh network namespace with only ``lo`` up, standing for a pod; needs root and ip."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        unavailable("a namespace standing for a pod", "needs root and iproute2")
    name = f"kl-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
