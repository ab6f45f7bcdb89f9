"""The stand-in apiserver does what a scheduler and a kubelet would with pods created through
the API: admission, binding to a node, real processes whose output is the pod's log, status as
a cluster reports it, watches, graceful deletion, ephemeral containers; and with a node that is
a network namespace, each pod's own namespace wired to it. kubernetes-asyncio, unmodified."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from tests.conftest import require
from tests.kubelab import apiserver as kl
from tests.kubelab.apiserver.kubelet import Image, NodeRuntime

pytestmark = [pytest.mark.kubernetes, pytest.mark.anyio]

NS = "probes"


@pytest.fixture
def cluster(kube_apiserver: kl.ApiServer) -> Iterator[kl.ApiServer]:
    """Two nodes whose kubelets run pods on this machine, and the namespace `probes`."""
    store = kube_apiserver.store
    for index, name in enumerate(("node-a", "node-b")):
        store.put(kl.node(name, f"127.0.0.{index + 2}"))
        kube_apiserver.kubelet.add_node(name, NodeRuntime(node_ip=f"127.0.0.{index + 2}"))
    store.put({"kind": "Namespace", "metadata": {"name": NS}})
    yield kube_apiserver
    kube_apiserver.settle()


@pytest.fixture
async def core(kube_apiserver: kl.ApiServer, tmp_path: Path) -> AsyncIterator[Any]:
    path = kube_apiserver.write_kubeconfig(tmp_path / "kubeconfig")
    configuration = client.Configuration()
    await config.load_kube_config(str(path), client_configuration=configuration)
    async with client.ApiClient(configuration) as api:
        yield client.CoreV1Api(api)


def probe_pod(
    name: str, command: list[str], *, node: str | None = "node-a", **spec: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "probe-engine"}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "probe", "image": "python:3.12-slim", "command": command}],
            **spec,
        },
    }
    if node is not None:
        body["spec"]["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchFields": [
                                {"key": "metadata.name", "operator": "In", "values": [node]}
                            ]
                        }
                    ]
                }
            }
        }
    return body


async def until(core: Any, name: str, done: Any, seconds: float = 20) -> dict[str, Any]:
    """Read the pod until `done(pod)` holds."""
    async with asyncio.timeout(seconds):
        while True:
            response = await core.read_namespaced_pod(name, NS, _preload_content=False)
            pod: dict[str, Any] = json.loads(await response.read())
            if done(pod):
                return pod
            await asyncio.sleep(0.02)


def phase(pod: dict[str, Any]) -> str:
    return str(pod["status"]["phase"])


def container_state(pod: dict[str, Any]) -> dict[str, Any]:
    return dict(pod["status"]["containerStatuses"][0]["state"])


async def test_a_created_pod_is_scheduled_runs_and_its_output_is_its_log(
    cluster: kl.ApiServer, core: Any
) -> None:
    code = "import os; print('hello from', os.environ['HOSTNAME'], flush=True); raise SystemExit(3)"
    created = await core.create_namespaced_pod(NS, probe_pod("p1", [sys.executable, "-c", code]))
    assert created.status.phase == "Pending" and created.spec.node_name is None
    pod = await until(core, "p1", lambda p: phase(p) in ("Succeeded", "Failed"))
    assert pod["spec"]["nodeName"] == "node-a"
    assert pod["status"]["hostIP"] == "127.0.0.2"
    assert phase(pod) == "Failed"
    assert container_state(pod)["terminated"]["exitCode"] == 3
    log = await core.read_namespaced_pod_log("p1", NS)
    assert log == "hello from p1\n"


async def test_follow_streams_the_log_as_the_container_writes_it(
    cluster: kl.ApiServer, core: Any, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    code = (
        "import os, sys, time\n"
        "print('first', flush=True)\n"
        "while not os.path.exists(sys.argv[1]):\n"
        "    time.sleep(0.01)\n"
        "print('second', flush=True)\n"
    )
    await core.create_namespaced_pod(NS, probe_pod("p2", [sys.executable, "-c", code, str(gate)]))
    await until(core, "p2", lambda p: phase(p) != "Pending")
    response = await core.read_namespaced_pod_log("p2", NS, follow=True, _preload_content=False)
    assert await response.content.readline() == b"first\n"  # while the container still runs
    gate.touch()
    assert await response.content.readline() == b"second\n"
    assert await response.content.read() == b""


async def test_the_log_honours_since_seconds_timestamps_and_limit_bytes(
    cluster: kl.ApiServer, core: Any, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    code = (
        "import os, sys, time\n"
        "print('old line', flush=True)\n"
        "while not os.path.exists(sys.argv[1]):\n"
        "    time.sleep(0.01)\n"
        "print('new line', flush=True)\n"
    )
    await core.create_namespaced_pod(NS, probe_pod("p3", [sys.executable, "-c", code, str(gate)]))
    await until(core, "p3", lambda p: phase(p) != "Pending")
    response = await core.read_namespaced_pod_log("p3", NS, follow=True, _preload_content=False)
    assert await response.content.readline() == b"old line\n"
    await asyncio.sleep(6)  # the two lines arrive at least 6 s apart
    gate.touch()
    assert await response.content.readline() == b"new line\n"
    stamped = (await core.read_namespaced_pod_log("p3", NS, timestamps=True)).splitlines()
    assert [line.split(" ", 1)[1] for line in stamped] == ["old line", "new line"]
    times = [
        datetime.fromisoformat(line.split(" ")[0].replace("000Z", "+00:00")) for line in stamped
    ]
    assert all(
        line.split(" ")[0].endswith("Z") and len(line.split(" ")[0]) == 30 for line in stamped
    )
    assert (times[1] - times[0]).total_seconds() >= 6
    # A window reaching 3 s before the new line: it alone (the old one is 6 s older).
    since = int(time.time() - times[1].timestamp()) + 3
    assert await core.read_namespaced_pod_log("p3", NS, since_seconds=since) == "new line\n"
    assert await core.read_namespaced_pod_log("p3", NS, limit_bytes=5) == "old l"
    both = await core.read_namespaced_pod_log("p3", NS, timestamps=True, limit_bytes=40)
    assert both == "\n".join(stamped)[:40]
    with pytest.raises(ApiException) as refused:
        await core.read_namespaced_pod_log("p3", NS, limit_bytes=0)
    assert refused.value.status == 400


async def test_a_watch_sees_the_pod_through_its_life(cluster: kl.ApiServer, core: Any) -> None:
    listed = await core.list_namespaced_pod(NS, label_selector="run=w")
    response = await core.list_namespaced_pod(
        NS,
        label_selector="run=w",
        watch=True,
        resource_version=listed.metadata.resource_version,
        timeout_seconds=10,
        _preload_content=False,
    )
    body = probe_pod("p3", [sys.executable, "-c", "pass"])
    body["metadata"]["labels"]["run"] = "w"
    await core.create_namespaced_pod(NS, body)
    seen: list[tuple[str, str]] = []
    async with asyncio.timeout(20):
        async for line in response.content:
            event = json.loads(line)
            seen.append((event["type"], event["object"]["status"]["phase"]))
            assert event["object"]["kind"] == "Pod"
            if event["object"]["status"]["phase"] == "Succeeded":
                break
    response.release()
    assert seen[0] == ("ADDED", "Pending")
    assert ("MODIFIED", "Running") in seen
    assert seen[-1] == ("MODIFIED", "Succeeded")


async def test_a_watch_from_a_forgotten_resource_version_is_410(
    cluster: kl.ApiServer, core: Any
) -> None:
    for index in range(kl.store.HISTORY + 10):
        cluster.store.put({"kind": "Namespace", "metadata": {"name": f"churn-{index % 3}"}})
    response = await core.list_namespaced_pod(
        NS, watch=True, resource_version="5", _preload_content=False
    )
    event = json.loads(await response.content.readline())
    assert event["type"] == "ERROR"
    assert (event["object"]["code"], event["object"]["reason"]) == (410, "Expired")


async def test_a_cordoned_node_and_an_untolerated_taint_leave_the_pod_unschedulable(
    cluster: kl.ApiServer, core: Any
) -> None:
    cluster.store.put(kl.node("node-c", "127.0.0.9", unschedulable=True))
    taint = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
    cluster.store.put(kl.node("node-d", "127.0.0.10", taints=[taint]))
    for name, node in (("on-c", "node-c"), ("on-d", "node-d")):
        await core.create_namespaced_pod(NS, probe_pod(name, ["true"], node=node))
    messages = {}
    for name in ("on-c", "on-d"):
        pod = await until(core, name, lambda p: p["status"].get("conditions"))
        (condition,) = pod["status"]["conditions"]
        assert (condition["type"], condition["status"], condition["reason"]) == (
            "PodScheduled",
            "False",
            "Unschedulable",
        )
        messages[name] = condition["message"]
    assert messages["on-c"].startswith(
        "0/4 nodes are available: 3 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) were unschedulable."
    )
    assert (
        "1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"
        in (messages["on-d"])
    )
    tolerant = probe_pod(
        "tolerant",
        [sys.executable, "-c", "pass"],
        node="node-d",
        tolerations=[{**taint, "operator": "Exists"}],
    )
    cluster.kubelet.add_node("node-d", NodeRuntime())
    await core.create_namespaced_pod(NS, tolerant)
    pod = await until(core, "tolerant", lambda p: phase(p) == "Succeeded")
    assert pod["spec"]["nodeName"] == "node-d"


async def test_an_image_that_cannot_be_pulled_and_a_missing_command(
    cluster: kl.ApiServer, core: Any
) -> None:
    cluster.kubelet.images["private/probe:1"] = Image(
        pull_error='failed to pull image "private/probe:1": 401 Unauthorized'
    )
    body = probe_pod("unpulled", ["python3"])
    body["spec"]["containers"][0]["image"] = "private/probe:1"
    await core.create_namespaced_pod(NS, body)
    pod = await until(
        core,
        "unpulled",
        lambda p: (
            "waiting" in container_state(p)
            and container_state(p)["waiting"]["reason"] != "ContainerCreating"
        ),
    )
    waiting = container_state(pod)["waiting"]
    assert (waiting["reason"], waiting["message"]) == (
        "ErrImagePull",
        'failed to pull image "private/probe:1": 401 Unauthorized',
    )
    with pytest.raises(ApiException) as refused:
        await core.read_namespaced_pod_log("unpulled", NS)
    assert refused.value.status == 400
    assert "is waiting to start: trying and failing to pull image" in refused.value.body

    await core.create_namespaced_pod(NS, probe_pod("missing", ["no-such-program", "x"]))
    pod = await until(core, "missing", lambda p: phase(p) == "Failed")
    terminated = container_state(pod)["terminated"]
    assert (terminated["reason"], terminated["exitCode"]) == ("StartError", 128)
    assert 'exec: "no-such-program": executable file not found in $PATH' in terminated["message"]


async def test_pod_security_and_quota_refuse_at_admission(cluster: kl.ApiServer, core: Any) -> None:
    cluster.store.put(
        {
            "kind": "Namespace",
            "metadata": {
                "name": NS,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            },
        }
    )
    with pytest.raises(ApiException) as refused:
        await core.create_namespaced_pod(NS, probe_pod("host", ["true"], hostNetwork=True))
    assert refused.value.status == 403
    message = json.loads(refused.value.body)["message"]
    assert message.startswith(
        'pods "host" is forbidden: violates PodSecurity "restricted:latest": host namespaces '
        "(hostNetwork=true), allowPrivilegeEscalation != false"
    )
    compliant = probe_pod(
        "ok",
        [sys.executable, "-c", "pass"],
        securityContext={"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    )
    compliant["spec"]["containers"][0]["securityContext"] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    await core.create_namespaced_pod(NS, compliant)
    cluster.store.put(
        {"kind": "ResourceQuota", "metadata": {"name": "two-pods", "namespace": NS},
         "spec": {"hard": {"pods": "1"}}}
    )  # fmt: skip
    await until(core, "ok", lambda p: phase(p) == "Succeeded")
    second = {**compliant, "metadata": {"name": "second"}}
    running = {**compliant, "metadata": {"name": "running"}}
    running["spec"] = {
        **compliant["spec"],
        "containers": [{**compliant["spec"]["containers"][0], "command": ["sleep", "30"]}],
    }
    await core.create_namespaced_pod(NS, running)
    with pytest.raises(ApiException) as over:
        await core.create_namespaced_pod(NS, second)
    assert json.loads(over.value.body)["message"] == (
        'pods "second" is forbidden: exceeded quota: two-pods, requested: pods=1, used: pods=1, '
        "limited: pods=1"
    )
    await core.delete_namespaced_pod("running", NS, grace_period_seconds=0)


async def test_deletion_is_graceful_then_the_pod_is_gone(cluster: kl.ApiServer, core: Any) -> None:
    code = (
        "import os, signal, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: (os.write(1, b'stopping\\n'), os._exit(0)))\n"
        "os.write(1, b'up\\n')\n"
        "time.sleep(60)\n"
    )
    await core.create_namespaced_pod(NS, probe_pod("graceful", [sys.executable, "-c", code]))
    await until(core, "graceful", lambda p: phase(p) == "Running")
    response = await core.read_namespaced_pod_log(
        "graceful", NS, follow=True, _preload_content=False
    )
    assert await response.content.readline() == b"up\n"
    deleted = await core.delete_namespaced_pod("graceful", NS, grace_period_seconds=5)
    assert deleted.metadata.deletion_timestamp is not None
    assert await response.content.readline() == b"stopping\n"
    assert await response.content.read() == b""  # the stream ends with the container
    cluster.settle()
    assert cluster.store.get("Pod", "graceful", NS) is None
    with pytest.raises(ApiException) as gone:
        await core.read_namespaced_pod("graceful", NS)
    assert gone.value.status == 404


async def test_active_deadline_fails_the_pod(cluster: kl.ApiServer, core: Any) -> None:
    body = probe_pod("late", ["sleep", "30"], activeDeadlineSeconds=1)
    await core.create_namespaced_pod(NS, body)
    pod = await until(core, "late", lambda p: phase(p) == "Failed")
    assert pod["status"]["reason"] == "DeadlineExceeded"


async def test_delete_collection_by_label_removes_every_match(
    cluster: kl.ApiServer, core: Any
) -> None:
    for name in ("a", "b"):
        await core.create_namespaced_pod(NS, probe_pod(name, ["sleep", "30"]))
    await core.create_namespaced_pod(
        NS, {**probe_pod("other", ["sleep", "30"]), "metadata": {"name": "other"}}
    )
    await core.delete_collection_namespaced_pod(
        NS, label_selector="app.kubernetes.io/managed-by=probe-engine", grace_period_seconds=0
    )
    cluster.settle()
    left = await core.list_namespaced_pod(NS)
    assert [p.metadata.name for p in left.items] == ["other"]
    await core.delete_namespaced_pod("other", NS, grace_period_seconds=0)


async def test_an_ephemeral_container_joins_a_pod_and_cannot_be_changed(
    cluster: kl.ApiServer, core: Any, tmp_path: Path
) -> None:
    empty = tmp_path / "distroless"
    empty.mkdir()
    cluster.store.put(
        kl.pod("app", NS, containers=[{"name": "app", "image": "distroless"}]),
        runtime=kl.PodRuntime(env={"PATH": str(empty)}),
    )
    debug = {
        "name": "debug",
        "image": "python:3.12-slim",
        "command": ["sleep", "30"],
        "targetContainerName": "app",
    }
    pod = await core.patch_namespaced_pod_ephemeralcontainers(
        "app", NS, {"spec": {"ephemeralContainers": [debug]}}
    )
    assert [c.name for c in pod.spec.ephemeral_containers] == ["debug"]
    running = await until(
        core,
        "app",
        lambda p: (
            "running"
            in ((p["status"].get("ephemeralContainerStatuses") or [{}])[0].get("state") or {})
        ),
    )
    assert running["status"]["ephemeralContainerStatuses"][0]["name"] == "debug"
    changed = {**debug, "command": ["sleep", "1"]}
    with pytest.raises(ApiException) as refused:
        await core.patch_namespaced_pod_ephemeralcontainers(
            "app", NS, {"spec": {"ephemeralContainers": [changed]}}
        )
    assert refused.value.status == 422
    message = json.loads(refused.value.body)["message"]
    assert 'existing ephemeral containers "debug" may not be changed' in message
    runtime = cluster.store.runtime(NS, "app")
    assert runtime.container_env["debug"]["PATH"] != str(empty)
    await core.delete_namespaced_pod("app", NS, grace_period_seconds=0)


# ---- pods on a node that is a network namespace (root) -------------------------------------


@pytest.fixture
def node_netns() -> Iterator[str]:
    require(os.geteuid() == 0, "a node namespace needs root")
    name = f"kl-node-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    batch = "\n".join(
        [
            "link set lo up",
            "link add cbr0 type bridge",
            "addr add 10.250.7.1/24 dev cbr0",
            "link set cbr0 up",
        ]
    )
    subprocess.run(["ip", "-n", name, "-batch", "-"], input=batch, text=True, check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


async def test_a_pod_gets_a_namespace_wired_to_its_node_and_loses_it_on_delete(
    kube_apiserver: kl.ApiServer, core: Any, node_netns: str
) -> None:
    store = kube_apiserver.store
    store.put(kl.node("node-a", "10.250.7.1"))
    store.put({"kind": "Namespace", "metadata": {"name": NS}})
    kube_apiserver.kubelet.add_node(
        "node-a",
        NodeRuntime(
            netns=node_netns,
            pod_cidr="10.250.7.0/24",
            pod_routes=("10.250.0.0/16",),
            node_ip="10.250.7.1",
        ),
    )
    # the pod reaches its node's bridge address; the hostNetwork pod sees the node's own links
    code = (
        "import socket, os\n"
        "s = socket.socket(); s.settimeout(2)\n"
        "print(os.readlink('/proc/self/ns/net'), s.connect_ex(('10.250.7.1', 9)), flush=True)\n"
    )
    await core.create_namespaced_pod(NS, probe_pod("in-pod", [sys.executable, "-c", code]))
    await core.create_namespaced_pod(
        NS, probe_pod("on-host", [sys.executable, "-c", code], hostNetwork=True)
    )
    pods = {
        n: await until(core, n, lambda p: phase(p) == "Succeeded") for n in ("in-pod", "on-host")
    }
    assert pods["in-pod"]["status"]["podIP"] == "10.250.7.2"
    assert pods["on-host"]["status"]["podIP"] == "10.250.7.1"
    logs = {n: (await core.read_namespaced_pod_log(n, NS)).split() for n in pods}
    node_inode = os.stat(f"/run/netns/{node_netns}").st_ino
    assert logs["on-host"] == [f"net:[{node_inode}]", "111"]  # nothing listens on 9: refused
    assert logs["in-pod"][0] != f"net:[{node_inode}]" and logs["in-pod"][1] == "111"
    made = kube_apiserver.kubelet.namespaces()
    assert len(made) == 1 and made[0].startswith(node_netns)
    for name in pods:
        await core.delete_namespaced_pod(name, NS)
    kube_apiserver.settle()
    assert kube_apiserver.kubelet.namespaces() == []
    assert not Path(f"/run/netns/{made[0]}").exists()
