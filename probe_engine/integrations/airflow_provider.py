"""probe-engine as an Airflow provider: what `airflow providers list` and the UI learn about it.

Airflow finds it through the `apache_airflow_provider` entry point (pyproject.toml) and calls
`get_provider_info()` in every Airflow process, so this module imports nothing heavy and never
Airflow itself. The operator reads the standard `kubernetes` connection type (the fields of
apache-airflow-providers-cncf-kubernetes) and `docker` (its Host taken as the daemon). Where
the provider that owns such a type is not installed, this one declares it, so the UI can make
one; where it is, that provider's form stays (declaring it twice only earns warnings).
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from .._version import __version__

PACKAGE = "probe-engine"
AIRFLOW_MODULE = "probe_engine.integrations.airflow"
HOOKS_MODULE = "probe_engine.integrations.airflow_hooks"
# The providers that own the connection types the operator reads.
OWNERS = {
    "kubernetes": "apache-airflow-providers-cncf-kubernetes",
    "docker": "apache-airflow-providers-docker",
}
_BOOLEAN = {"type": ["boolean", "null"]}
_TEXT = {"type": ["string", "null"]}
# Declared the way Airflow 3.2+ reads connection forms (conn-fields, ui-field-behaviour);
# Airflow 2 reads the hook classes' get_ui_field_behaviour instead.
CONNECTION_TYPES: dict[str, dict[str, Any]] = {
    "kubernetes": {
        "connection-type": "kubernetes",
        "hook-class-name": f"{HOOKS_MODULE}.KubernetesClusterHook",
        "hook-name": "Kubernetes Cluster Connection",
        "conn-fields": {
            "in_cluster": {"label": "In cluster configuration", "schema": _BOOLEAN},
            "kube_config_path": {"label": "Kube config path", "schema": _TEXT},
            "kube_config": {
                "label": "Kube config (JSON format)",
                "schema": {**_TEXT, "format": "password"},
            },
            "namespace": {"label": "Namespace", "schema": _TEXT},
            "cluster_context": {"label": "Cluster context", "schema": _TEXT},
            "disable_verify_ssl": {"label": "Disable SSL", "schema": _BOOLEAN},
        },
        "ui-field-behaviour": {
            "hidden-fields": ["host", "schema", "login", "password", "port", "extra"],
            "relabeling": {},
        },
    },
    "docker": {
        "connection-type": "docker",
        "hook-class-name": f"{HOOKS_MODULE}.DockerDaemonHook",
        "hook-name": "Docker",
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "login", "password", "extra"],
            "relabeling": {"host": "Docker daemon"},
            "placeholders": {
                "host": "unix:///var/run/docker.sock, tcp://10.0.0.5:2376, ssh://user@host",
                "port": "2375 or 2376 for a tcp:// host without one",
            },
        },
    },
}


def _installed(distribution: str) -> bool:
    try:
        metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


def get_provider_info() -> dict[str, Any]:
    """The provider's description, as Airflow's provider_info schema asks for it."""
    modules = [AIRFLOW_MODULE]
    return {
        "package-name": PACKAGE,
        "name": "probe-engine",
        "description": (
            "Reachability diagnostics from inside a DAG: a matrix of sources x targets probed "
            "from the task's own process (and containers, pods, namespaces), errno-level "
            "results, reports and a diagnosis."
        ),
        "versions": [__version__],
        "integrations": [{"integration-name": "probe-engine", "tags": ["software"]}],
        "operators": [{"integration-name": "probe-engine", "python-modules": modules}],
        "sensors": [{"integration-name": "probe-engine", "python-modules": modules}],
        "hooks": [{"integration-name": "probe-engine", "python-modules": [HOOKS_MODULE]}],
        "connection-types": [
            declared for kind, declared in CONNECTION_TYPES.items() if not _installed(OWNERS[kind])
        ],
        "extra-links": [f"{AIRFLOW_MODULE}.ProbeReportLink"],
    }
