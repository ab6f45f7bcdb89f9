"""deploy/rbac/ is exact: for each way of running, a token bound by those very files (the test
server enforces RBAC as the apiserver does) gets the same results as an unrestricted one, uses
every verb of every rule (none is superfluous), and without any one of them the run differs and
says which verb on which resource is missing."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from probe_engine import MatrixResult
from probe_engine.demo.fixtures import LoopbackLab
from tests.conftest import run_text
from tests.kubelab import apiserver as kl
from tests.kubelab.apiserver.kubelet import NodeRuntime
from tests.kubelab.apiserver.rbac import Grant, Rbac
from tests.test_pod_logs import POD_IP, create_running_pod, free_port, podserver_pod, wait_listening

pytestmark = [pytest.mark.kubernetes]

REPO = Path(__file__).parents[1]
RBAC = REPO / "deploy" / "rbac"
ACCOUNT = "system:serviceaccount:probe-engine:probe-engine"
TOKEN = "probe-engine-account-token"
SERVICE = "health-predict-api-service"


def documents(*files: str) -> list[dict[str, Any]]:
    return [doc for name in files for doc in yaml.safe_load_all((RBAC / name).read_text()) if doc]


def without(docs: list[dict[str, Any]], grant: Grant) -> list[dict[str, Any]]:
    """The documents with one verb taken off the rule that grants it."""
    kind, name = grant.role.split("/", 1)

    def trimmed(rule: dict[str, Any]) -> dict[str, Any]:
        if grant.resource in rule["resources"] and grant.group in rule["apiGroups"]:
            return {**rule, "verbs": [v for v in rule["verbs"] if v != grant.verb]}
        return rule

    changed = []
    for doc in docs:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            rules = [trimmed(rule) for rule in doc["rules"]]
            doc = {**doc, "rules": [rule for rule in rules if rule["verbs"]]}  # noqa: PLW2901
        changed.append(doc)
    return changed


def outcome(result: MatrixResult) -> dict[str, Any]:
    """What a run says: every cell's status and message (and which pods' logs showed its
    request, or why they could not be read), every row's, every column's errors."""
    return {
        "cells": {
            (c.source, c.target): (c.status, c.message, _server_side(c)) for c in result.cells
        },
        "rows": {s.name: (s.status, s.message, s.facts.get("left_behind")) for s in result.sources},
        "columns": {t.name: sorted((t.facts.get("errors") or {}).items()) for t in result.targets},
    }


def _server_side(cell: Any) -> tuple[Any, ...] | None:
    """evidence.pod_logs without its log lines (their times differ from run to run)."""
    seen = cell.server_log
    if seen is None:
        return None
    return (tuple(seen.pods), seen.matched, tuple(sorted((seen.errors or {}).items())))


def said(found: dict[str, Any]) -> str:
    return repr(found)


@dataclass(frozen=True)
class Way:
    files: tuple[str, ...]
    setup: Callable[[kl.ApiServer, Path, LoopbackLab], None]
    matrix: Callable[[Path, LoopbackLab], str]


def _targets_setup(server: kl.ApiServer, tmp: Path, loopback: LoopbackLab) -> None:
    """A NodePort Service whose every address is this machine's loopback HTTP server (no
    probe leaves the machine; no name goes to its resolver: no dns vias here)."""
    port, labels = loopback.http_port, {"app": "api"}
    store = server.store
    store.put(
        kl.service(
            SERVICE,
            selector=labels,
            type="NodePort",
            cluster_ip="127.0.0.1",
            ports=[{"name": "http", "port": port, "targetPort": port, "nodePort": port}],
        )
    )
    store.put(kl.node("node-a", "127.0.0.1"))
    store.put(
        kl.pod("api-0", labels=labels, pod_ip="127.0.0.1", ports=[{"containerPort": port}]),
        runtime=kl.PodRuntime(forward_ports={port: port}),
    )
    store.sync_endpoints(SERVICE)
    store.put(kl.network_policy("api", pod_selector=labels, ingress=[]))


def _targets_matrix(kubeconfig: Path, loopback: LoopbackLab, vias: str) -> str:
    return f"""
kubernetes: {{kubeconfig: '{kubeconfig}'}}
defaults: {{timeout: 1s}}
sources: {{here: {{kind: local}}}}
targets:
  api: {{kind: kubernetes-service, service: {SERVICE}, path: /health, via: [{vias}]}}
  typo: {{kind: kubernetes-service, service: no-such-service, via: [cluster-ip]}}
"""


def _pods_setup(server: kl.ApiServer, tmp: Path, loopback: LoopbackLab) -> None:
    server.store.put(kl.pod("worker-0", labels={"app": "worker"}))
    server.store.put(kl.pod("toolbox"))


def _pods_matrix(kubeconfig: Path, loopback: LoopbackLab) -> str:
    return f"""
kubernetes: {{kubeconfig: '{kubeconfig}'}}
sources:
  workers: {{kind: kubernetes, selector: app=worker, python: {sys.executable}}}
  toolbox: {{kind: kubernetes, pod: toolbox, python: {sys.executable}}}
targets:
  closed: {{kind: tcp, host: 127.0.0.1, port: {loopback.closed_port}}}
"""


def _nodes_setup(server: kl.ApiServer, tmp: Path, loopback: LoopbackLab) -> None:
    for index, name in enumerate(("node-a", "node-b")):
        server.store.put(kl.node(name, f"127.0.0.{index + 2}"))
        server.kubelet.add_node(name, NodeRuntime(node_ip=f"127.0.0.{index + 2}"))
    server.store.put({"kind": "Namespace", "metadata": {"name": "probe-engine"}})


def _nodes_matrix(kubeconfig: Path, loopback: LoopbackLab) -> str:
    return f"""
kubernetes: {{kubeconfig: '{kubeconfig}'}}
sources:
  nodes: {{kind: kubernetes-nodes, namespace: probe-engine, python: {sys.executable}}}
targets:
  closed: {{kind: tcp, host: 127.0.0.1, port: {loopback.closed_port}}}
"""


def _ephemeral_setup(server: kl.ApiServer, tmp: Path, loopback: LoopbackLab) -> None:
    empty = tmp / "distroless"
    empty.mkdir(exist_ok=True)
    server.store.put(
        kl.pod("app", labels={"app": "distroless"}, containers=[{"name": "app", "image": "x"}]),
        runtime=kl.PodRuntime(env={"PATH": str(empty)}),
    )


def _ephemeral_matrix(kubeconfig: Path, loopback: LoopbackLab) -> str:
    return f"""
kubernetes: {{kubeconfig: '{kubeconfig}'}}
sources:
  app: {{kind: kubernetes, selector: app=distroless, debug: {{ephemeral: true}}}}
targets:
  closed: {{kind: tcp, host: 127.0.0.1, port: {loopback.closed_port}}}
"""


def _logs_setup(server: kl.ApiServer, tmp: Path, loopback: LoopbackLab) -> None:
    """A backend pod the kubelet runs as a real process (tests/lab/podserver.py on 127.0.0.2,
    its access log the pod's log) behind a NodePort Service whose every address is its own."""
    store = server.store
    store.put(kl.node("node-a", POD_IP))
    server.kubelet.add_node("node-a", NodeRuntime(node_ip=POD_IP))
    port = free_port(POD_IP)
    pod = podserver_pod(port)
    admin = server.write_kubeconfig(tmp / "admin-kubeconfig", token="kubelab-admin")
    anyio.run(create_running_pod, admin, pod)
    wait_listening(POD_IP, port)
    store.put(
        kl.service(
            SERVICE,
            selector={"app": "api"},
            type="NodePort",
            cluster_ip=POD_IP,
            ports=[{"name": "http", "port": port, "targetPort": port, "nodePort": port}],
        )
    )
    store.sync_endpoints(SERVICE)
    store.put(kl.network_policy("api", pod_selector={"app": "api"}, ingress=[]))


def _logs_matrix(kubeconfig: Path, loopback: LoopbackLab) -> str:
    return _targets_matrix(kubeconfig, loopback, "cluster-ip, node-port, endpoints").replace(
        "path: /health,", "path: /health, evidence: {pod_logs: true},"
    )


WAYS = {
    "read-only targets": Way(
        ("read-only-targets.yaml",),
        _targets_setup,
        lambda k, lo: _targets_matrix(k, lo, "cluster-ip, node-port, endpoints"),
    ),
    "port-forward": Way(
        ("read-only-targets.yaml", "port-forward.yaml"),
        _targets_setup,
        lambda k, lo: _targets_matrix(k, lo, "cluster-ip, node-port, endpoints, port-forward"),
    ),
    "pod log evidence": Way(
        ("read-only-targets.yaml", "pod-log-evidence.yaml"), _logs_setup, _logs_matrix
    ),
    "pod exec sources": Way(("pod-exec-sources.yaml",), _pods_setup, _pods_matrix),
    "node probe pods": Way(("node-probe-pods.yaml",), _nodes_setup, _nodes_matrix),
    "ephemeral containers": Way(
        ("ephemeral-containers.yaml",), _ephemeral_setup, _ephemeral_matrix
    ),
}


def run_way(
    way: Way, docs: list[dict[str, Any]] | None, tmp: Path, loopback: LoopbackLab
) -> tuple[dict[str, Any], Rbac | None]:
    """A fresh server set up for `way`; the run with a token bound by `docs` (None: the
    unrestricted token)."""
    with kl.ApiServer(token="kubelab-admin") as server:
        way.setup(server, tmp, loopback)
        rbac = None
        if docs is not None:
            rbac = Rbac.load(docs, {TOKEN: ACCOUNT})
            server.rbac = rbac
        kubeconfig = server.write_kubeconfig(
            tmp / "kubeconfig", token=TOKEN if docs is not None else "kubelab-admin"
        )
        result = run_text(way.matrix(kubeconfig, loopback))
        server.settle()
        left = [p["metadata"]["name"] for p in server.store.list("Pod", "probe-engine")]
        found = outcome(result)
        found["pods left"] = left
        return found, rbac


@pytest.mark.parametrize("name", list(WAYS))
def test_the_files_grant_enough_and_nothing_unused(
    name: str, tmp_path: Path, loopback: LoopbackLab
) -> None:
    way = WAYS[name]
    unrestricted, _ = run_way(way, None, tmp_path, loopback)
    restricted, rbac = run_way(way, documents(*way.files), tmp_path, loopback)
    assert rbac is not None
    assert rbac.denied == []
    assert restricted == unrestricted
    assert rbac.declared() - rbac.used == set(), "granted but never used"
    if name == "pod log evidence":  # the logs were read and show each request
        reached = [v[2] for k, v in restricted["cells"].items() if k[1].startswith("api/")]
        assert reached == [(("api-0",), 1, ())] * 3, restricted


@pytest.mark.parametrize("name", list(WAYS))
def test_without_any_one_verb_the_run_says_which_is_missing(
    name: str, tmp_path: Path, loopback: LoopbackLab
) -> None:
    way = WAYS[name]
    docs = documents(*way.files)
    full, rbac = run_way(way, docs, tmp_path, loopback)
    assert rbac is not None
    for grant in sorted(rbac.declared(), key=lambda g: (g.role, g.resource, g.verb)):
        lacking, rbac_then = run_way(way, without(docs, grant), tmp_path, loopback)
        assert rbac_then is not None
        assert rbac_then.denied, f"{grant} was never asked for"
        assert lacking != full, f"nothing changed without {grant}"
        what = f"{grant.resource}.{grant.group}" if grant.group else grant.resource
        assert f"needs {grant.verb} on {what}" in said(lacking), (grant, lacking)
