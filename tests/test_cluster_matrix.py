"""One matrix with the three places a run makes for itself, against the labs: probe pods on every
node (kubernetes-nodes, on the namespace lab's nodes), an ephemeral container in a distroless
pod (kubernetes + debug, the pod being the lab's pod namespace), a sidecar beside a distroless
container (docker + sidecar, on the real dockerd of the tests). It leaves no pod, no container
and no namespace behind; only the ephemeral container stays, as Kubernetes wants."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import aiodocker
import pytest

from tests.conftest import cell, require, run_text
from tests.dockerlab import LAB_LABEL, DockerDaemon, Lab, run_sync
from tests.dockerlab.images import ensure_image
from tests.kubelab import apiserver as kl
from tests.kubelab.nodelab import NodeLab
from tests.lab.netlab import Lab as NetLab
from tests.test_docker_sidecar import DISTROLESS, SIDECAR_LABEL, distroless_rootfs

pytestmark = [pytest.mark.root, pytest.mark.kubernetes, pytest.mark.docker]

NS = "probe-engine"
DISTROLESS_CONTAINER = "pe-cluster-distroless"


@pytest.fixture
def nodes(netlab: NetLab) -> Iterator[NodeLab]:
    require(os.geteuid() == 0, "the lab needs root")
    lab = NodeLab(netlab, extra=2, firewalled={"minikube-m03"})
    lab.up()
    try:
        yield lab
    finally:
        lab.down()


@pytest.fixture
def distroless_container(docker_engine: DockerDaemon, docker_lab: Lab) -> Iterator[str]:
    async def up() -> None:
        async with aiodocker.Docker(url=docker_lab.url) as docker:
            image = await ensure_image(
                docker, DISTROLESS, distroless_rootfs(), docker_engine.config.rootfs_dir
            )
            container = await docker.containers.create(
                {
                    "Image": image.ref,
                    "Cmd": ["/app/busybox", "sleep", "365d"],
                    "Labels": {LAB_LABEL: "1"},
                    "HostConfig": {"NetworkMode": "pe-minikube", "Init": True},
                },
                name=DISTROLESS_CONTAINER,
            )
            await container.start()

    async def down() -> None:
        async with aiodocker.Docker(url=docker_lab.url) as docker:
            await docker.containers.container(DISTROLESS_CONTAINER).delete(force=True)

    run_sync(up)
    yield DISTROLESS_CONTAINER
    run_sync(down)


def sidecars(url: str) -> list[str]:
    async def listed() -> list[str]:
        async with aiodocker.Docker(url=url) as docker:
            found = await docker.containers.list(all=True, filters={"label": [SIDECAR_LABEL]})
            return [c["Names"][0] for c in found]

    return run_sync(listed)


def test_the_three_new_places_in_one_matrix_leave_nothing_behind(
    netlab: NetLab,
    nodes: NodeLab,
    kube_apiserver: kl.ApiServer,
    kubeconfig: Path,
    docker_lab: Lab,
    distroless_container: str,
    tmp_path: Path,
) -> None:
    store = kube_apiserver.store
    nodes.register(kube_apiserver)
    store.put({"kind": "Namespace", "metadata": {"name": NS}})
    empty = tmp_path / "distroless"
    empty.mkdir()
    # The lab's pod, as a distroless pod: exec finds neither python3 nor sh in it
    store.put(
        kl.pod(
            netlab.pod_name,
            labels={"app": "health-predict-api"},
            pod_ip=netlab.pod_ip,
            host_ip=netlab.node_ip,
            containers=[{"name": "api", "image": "gcr.io/distroless/python3-debian12"}],
        ),
        runtime=kl.PodRuntime(netns=netlab.pod_ns, env={"PATH": str(empty)}),
    )
    python = docker_lab.images["python"].ref
    result = run_text(
        f"""
kubernetes: {{kubeconfig: '{kubeconfig}'}}
defaults: {{timeout: 2s}}
sources:
  nodes: {{kind: kubernetes-nodes, namespace: {NS}}}
  api-pod: {{kind: kubernetes, selector: app=health-predict-api, debug: {{ephemeral: true}}}}
  payments: {{kind: docker, host: "{docker_lab.url}", container: {distroless_container},
             sidecar: {{image: "{python}"}}}}
targets:
  node-port: {{kind: http, url: "http://{netlab.node_ip}:{netlab.node_port}/health"}}
  own-port: {{kind: http, url: "http://127.0.0.1:{netlab.pod_port}/health"}}
  docker-api: {{kind: http, url: "http://{docker_lab.api_ip}:8000/health"}}
cells:
  - {{source: nodes, target: node-port}}
  - {{source: api-pod, target: own-port}}
  - {{source: api-pod, target: node-port}}
  - {{source: payments, target: docker-api}}
"""
    )
    grid = {(c.source, c.target): c.status for c in result.cells}
    assert grid == {
        ("nodes/minikube", "node-port"): "ok",
        ("nodes/minikube-m02", "node-port"): "ok",
        ("nodes/minikube-m03", "node-port"): "timeout",
        # From the ephemeral container: the pod's own loopback (its namespace) and the NodePort
        (f"api-pod/{netlab.pod_name}", "own-port"): "ok",
        (f"api-pod/{netlab.pod_name}", "node-port"): "ok",
        ("payments", "docker-api"): "ok",
    }
    api_pod = next(s for s in result.sources if s.name == f"api-pod/{netlab.pod_name}")
    assert api_pod.facts["debug_container"] == "probe-engine-debug-1"
    assert cell(result, "payments", "docker-api").tool == "agent"
    # Nothing left: no probe pod, no pod namespace, no sidecar container
    kube_apiserver.settle()
    assert store.list("Pod", NS) == []
    assert kube_apiserver.kubelet.namespaces() == []
    assert nodes.pod_namespaces() == []
    assert sidecars(docker_lab.url) == []
    # ...but the ephemeral container, which cannot be removed: it stays in its pod
    pod = store.get("Pod", netlab.pod_name)
    assert pod is not None
    assert [c["name"] for c in pod["spec"]["ephemeralContainers"]] == ["probe-engine-debug-1"]
