"""Writes kubeconfig files that point kubernetes-asyncio (or kubectl) at the kubelab apiserver."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

__all__ = ["kubeconfig_dict", "write_kubeconfig"]


def kubeconfig_dict(
    server: str,
    *,
    token: str | None = None,
    ca_pem: bytes | None = None,
    insecure_skip_tls_verify: bool = False,
    context: str = "minikube",
    cluster: str = "minikube",
    user: str = "minikube",
    namespace: str = "default",
    extra_contexts: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A kubeconfig as a dict: one cluster, one user (bearer token), context ``context``
    (current). ``extra_contexts`` maps more context names to other server URLs (same user),
    e.g. to make a context whose API server is unreachable."""
    cluster_entry: dict[str, Any] = {"server": server}
    if ca_pem is not None:
        cluster_entry["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    if insecure_skip_tls_verify:
        cluster_entry["insecure-skip-tls-verify"] = True
    user_entry: dict[str, Any] = {"token": token} if token is not None else {}
    clusters = [{"name": cluster, "cluster": cluster_entry}]
    contexts = [
        {"name": context, "context": {"cluster": cluster, "user": user, "namespace": namespace}}
    ]
    for name, url in (extra_contexts or {}).items():
        clusters.append({"name": name, "cluster": {**cluster_entry, "server": url}})
        contexts.append(
            {"name": name, "context": {"cluster": name, "user": user, "namespace": namespace}}
        )
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": clusters,
        "users": [{"name": user, "user": user_entry}],
        "contexts": contexts,
        "current-context": context,
    }


def write_kubeconfig(path: str | os.PathLike[str], server: str, **kwargs: Any) -> Path:
    """Write :func:`kubeconfig_dict` as YAML to ``path`` (mode 0600, as kubectl writes it)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(kubeconfig_dict(server, **kwargs), sort_keys=False))
    target.chmod(0o600)
    return target
