"""Makes the Kubernetes lab fixtures available to the tests in this folder."""

from tests.kubelab.conftest_kube import (
    anyio_backend,
    http_backend,
    kube_apiserver,
    kube_store,
    kube_tls_apiserver,
    kubeconfig,
    lab_netns,
)

__all__ = [
    "anyio_backend",
    "http_backend",
    "kube_apiserver",
    "kube_store",
    "kube_tls_apiserver",
    "kubeconfig",
    "lab_netns",
]
