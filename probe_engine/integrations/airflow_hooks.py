"""The connections ProbeMatrixOperator reads, as Airflow hooks: `kubernetes` and `docker`.

Declared by the provider (airflow_provider.py) only where the provider owning the type is not
installed, so the UI can make such a connection; the operator reads them through these hooks
either way. What a connection's fields mean is connections.py's (no Airflow there).
Importing this module imports Airflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from ..docker_host import DockerOverrides
from ..kube import KubeOverrides
from .connections import docker_overrides, kube_overrides

try:  # Airflow 3
    from airflow.sdk import BaseHook
except ImportError:  # Airflow 2.10
    from airflow.hooks.base import BaseHook


class KubernetesClusterHook(BaseHook):
    """A Kubernetes cluster, as the cncf-kubernetes provider's connection describes it."""

    conn_name_attr: ClassVar[str] = "kubernetes_conn_id"
    default_conn_name: ClassVar[str] = "kubernetes_default"
    conn_type: ClassVar[str] = "kubernetes"
    hook_name: ClassVar[str] = "Kubernetes Cluster Connection"

    def __init__(self, kubernetes_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kubernetes_conn_id = kubernetes_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Airflow 2's form (Airflow 3.2+ reads the provider info's conn-fields)."""
        return {
            "hidden_fields": ["host", "schema", "login", "password", "port"],
            "relabeling": {
                "extra": "Extra: in_cluster, kube_config_path, kube_config, cluster_context, "
                "namespace, disable_verify_ssl"
            },
            "placeholders": {"extra": '{"kube_config_path": "/opt/airflow/kubeconfig"}'},
        }

    def overrides(self, scratch: Path) -> KubeOverrides:
        """The cluster to use; kubeconfig content is written into `scratch`."""
        return kube_overrides(self.get_connection(self.kubernetes_conn_id), scratch)


class DockerDaemonHook(BaseHook):
    """A Docker daemon, named by a `docker` connection's Host (and Port)."""

    conn_name_attr: ClassVar[str] = "docker_conn_id"
    default_conn_name: ClassVar[str] = "docker_default"
    conn_type: ClassVar[str] = "docker"
    hook_name: ClassVar[str] = "Docker"

    def __init__(self, docker_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.docker_conn_id = docker_conn_id

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Airflow 2's form (Airflow 3.2+ reads the provider info's ui-field-behaviour)."""
        return {
            "hidden_fields": ["schema", "login", "password", "extra"],
            "relabeling": {"host": "Docker daemon"},
            "placeholders": {
                "host": "unix:///var/run/docker.sock, tcp://10.0.0.5:2376, ssh://user@host"
            },
        }

    def overrides(self) -> DockerOverrides:
        """The daemon to use."""
        return docker_overrides(self.get_connection(self.docker_conn_id))


__all__ = ["DockerDaemonHook", "KubernetesClusterHook"]
