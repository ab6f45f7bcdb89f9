"""Airflow connections read as the run's cluster and Docker daemon (probe_engine.integrations.
connections), without Airflow: a Connection is read through conn_id, conn_type, host, port and
extra_dejson, which is what these stand-ins carry. The real Airflow reading them (AIRFLOW_CONN_*
in a DAG run) is tests/test_airflow_dags.py's; the provider's description is checked here
against what Airflow's discovery needs."""

from __future__ import annotations

import asyncio
import json
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from probe_engine.errors import SpecError
from probe_engine.integrations.airflow_provider import get_provider_info
from probe_engine.integrations.connections import docker_overrides, kube_overrides
from probe_engine.kube import KubeOverrides, kube_settings, open_client
from tests.kubelab import apiserver as kl
from tests.kubelab.kubeconfig import kubeconfig_dict


@dataclass
class Connection:
    conn_id: str
    conn_type: str
    host: str | None = None
    port: int | None = None
    extra_dejson: dict[str, Any] = field(default_factory=dict)


def kubernetes(**extra: Any) -> Connection:
    return Connection("k8s", "kubernetes", extra_dejson=extra)


def test_a_kubernetes_connection_reads_the_cncf_providers_fields_plain_or_prefixed(
    tmp_path: Path,
) -> None:
    assert kube_overrides(kubernetes(), tmp_path) == KubeOverrides()
    assert kube_overrides(
        kubernetes(
            kube_config_path="/etc/kube/config",
            cluster_context="minikube",
            namespace="probes",
            disable_verify_ssl="True",
        ),
        tmp_path,
    ) == KubeOverrides("/etc/kube/config", "minikube", namespace="probes", verify_ssl=False)
    legacy = kubernetes(extra__kubernetes__in_cluster=True, extra__kubernetes__namespace="airflow")
    assert kube_overrides(legacy, tmp_path) == KubeOverrides(in_cluster=True, namespace="airflow")


def test_kubeconfig_content_goes_to_a_private_file_in_the_scratch_folder(tmp_path: Path) -> None:
    content = kubeconfig_dict("https://127.0.0.1:6443", token="secret-token")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    as_dict = kube_overrides(kubernetes(kube_config=content), tmp_path / "a")
    as_text = kube_overrides(kubernetes(kube_config=yaml.safe_dump(content)), tmp_path / "b")
    for overrides in (as_dict, as_text):
        assert overrides.kubeconfig is not None
        path = Path(overrides.kubeconfig)
        assert yaml.safe_load(path.read_text()) == content
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"in_cluster": True, "kube_config_path": "/k"},
            "Airflow connection 'k8s': kube_config_path: in_cluster and kube_config_path "
            "exclude each other (give one way to the cluster)",
        ),
        (
            {"kube_config_path": "/k", "kube_config": "{}"},
            "Airflow connection 'k8s': kube_config: kube_config_path and kube_config exclude "
            "each other (give one way to the cluster)",
        ),
        (
            {"in_cluster": "maybe"},
            "Airflow connection 'k8s': in_cluster: 'maybe' is not true or false",
        ),
        ({"namespace": 7}, "Airflow connection 'k8s': namespace: int where text belongs"),
    ],
)
def test_a_kubernetes_connection_that_contradicts_itself_is_bad_input(
    tmp_path: Path, extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(SpecError) as raised:
        kube_overrides(kubernetes(**extra), tmp_path)
    assert str(raised.value) == message


def test_a_connection_of_another_type_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="is a 'docker' connection; a 'kubernetes' connection"):
        kube_overrides(Connection("k8s", "docker"), tmp_path)
    with pytest.raises(SpecError, match="is a 'http' connection; a 'docker' connection"):
        docker_overrides(Connection("d", "http", host="x"))


@pytest.mark.parametrize(
    ("host", "port", "daemon"),
    [
        ("unix:///var/run/docker.sock", None, "unix:///var/run/docker.sock"),
        ("tcp://10.0.0.5:2376", None, "tcp://10.0.0.5:2376"),
        ("tcp://10.0.0.5", 2376, "tcp://10.0.0.5:2376"),
        ("10.0.0.5", 2376, "tcp://10.0.0.5:2376"),
        ("build-host", None, "tcp://build-host:2375"),
        ("ssh://deploy@build-host", None, "ssh://deploy@build-host"),
        ("", None, None),
    ],
)
def test_a_docker_connections_host_is_the_daemon(
    host: str, port: int | None, daemon: str | None
) -> None:
    overrides = docker_overrides(Connection("pe_docker", "docker", host=host, port=port))
    assert overrides.host == daemon
    assert overrides.origin == "Airflow connection 'pe_docker'"


def test_a_registry_url_in_a_docker_connection_says_what_to_write_instead() -> None:
    with pytest.raises(SpecError) as raised:
        docker_overrides(Connection("reg", "docker", host="https://index.docker.io/v1"))
    assert str(raised.value) == (
        "Airflow connection 'reg': host: https://index.docker.io/v1 looks like a registry's "
        "URL; probe-engine needs the Docker daemon's address (unix:///var/run/docker.sock, "
        "tcp://HOST:2376, ssh://USER@HOST)"
    )
    with pytest.raises(SpecError, match=r"ftp:// is not a Docker daemon's address"):
        docker_overrides(Connection("reg", "docker", host="ftp://x"))


def test_disable_verify_ssl_reaches_a_self_signed_api_server_that_the_default_refuses(
    tmp_path: Path,
) -> None:
    """A kubeconfig without the server's CA: refused by default, accepted when the connection
    says disable_verify_ssl, against the kubelab server's real TLS."""
    with kl.ApiServer(token="t", tls=True) as server:
        config = tmp_path / "config"
        config.write_text(yaml.safe_dump(kubeconfig_dict(server.url, token="t")))

        async def namespace_list(verify: bool) -> Any:
            overrides = kube_overrides(
                kubernetes(kube_config_path=str(config), disable_verify_ssl=not verify),
                tmp_path,
            )
            kube = await open_client(kube_settings(None, overrides))
            try:
                return await kube.get(kube.core.list_namespace)
            finally:
                await kube.aclose()

        assert asyncio.run(namespace_list(verify=False))["kind"] == "NamespaceList"
        with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED|certificate verify"):
            asyncio.run(namespace_list(verify=True))


def test_in_cluster_outside_a_pod_says_so(tmp_path: Path) -> None:
    from probe_engine.kube import KubeError

    overrides = kube_overrides(kubernetes(in_cluster=True), tmp_path)
    with pytest.raises(KubeError, match="in-cluster service account was asked for, but this is"):
        asyncio.run(open_client(kube_settings(None, overrides), environ={}))


def test_the_provider_info_names_what_airflow_discovers() -> None:
    info = get_provider_info()
    json.dumps(info)  # Airflow validates it as JSON
    assert info["package-name"] == "probe-engine"
    assert info["operators"][0]["python-modules"] == ["probe_engine.integrations.airflow"]
    assert info["extra-links"] == ["probe_engine.integrations.airflow.ProbeReportLink"]
    # Neither owner of the two connection types is installed in this venv: both are declared.
    declared = {c["connection-type"]: c["hook-class-name"] for c in info["connection-types"]}
    assert declared == {
        "kubernetes": "probe_engine.integrations.airflow_hooks.KubernetesClusterHook",
        "docker": "probe_engine.integrations.airflow_hooks.DockerDaemonHook",
    }
