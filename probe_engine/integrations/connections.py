"""Airflow connections read as a run's cluster and Docker daemon, without importing Airflow.

- `kubernetes` (the type of apache-airflow-providers-cncf-kubernetes): `in_cluster`,
  `kube_config_path`, `kube_config` (the file's content: JSON or YAML text, or a mapping),
  `cluster_context`, `namespace`, `disable_verify_ssl`, each read plain or with the legacy
  `extra__kubernetes__` prefix, as that provider reads them. Content is written to a private
  file in a folder the caller removes after the run.
- `docker`: that provider's type holds a registry login; probe-engine pulls nothing, so it
  reads the Host (and Port) as the daemon's address: `unix:///var/run/docker.sock`,
  `tcp://10.0.0.5:2376` (or a bare host and a port), `ssh://user@host`. A registry's URL
  (`https://index.docker.io/v1`) is refused with what to write instead.

A Connection is read through the attributes every Airflow version has: conn_id, conn_type,
host, port, extra_dejson. A mistake is a SpecError naming the connection and the field.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from ..docker_host import DockerOverrides
from ..errors import SpecError
from ..kube import KubeOverrides

KUBERNETES_PREFIX = "extra__kubernetes__"
DAEMON_SCHEMES = ("unix", "tcp", "http", "https", "ssh", "npipe")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


class ConnectionLike(Protocol):
    conn_id: str | None
    conn_type: str | None
    host: str | None
    port: int | None

    @property
    def extra_dejson(self) -> dict[str, Any]: ...


def _field(connection: ConnectionLike, name: str) -> Any:
    extras = connection.extra_dejson or {}
    if name in extras:
        return extras[name]
    return extras.get(KUBERNETES_PREFIX + name)


def _flag(connection: ConnectionLike, name: str) -> bool:
    value = _field(connection, name)
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise _problem(connection, name, f"{value!r} is not true or false")


def _text(connection: ConnectionLike, name: str) -> str | None:
    value = _field(connection, name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _problem(connection, name, f"{type(value).__name__} where text belongs")
    return value


def _problem(connection: ConnectionLike, name: str, what: str) -> SpecError:
    return SpecError(what, file=f"Airflow connection {connection.conn_id!r}", field=name)


def _check_type(connection: ConnectionLike, wanted: str) -> None:
    if connection.conn_type != wanted:
        raise _problem(
            connection,
            "conn_type",
            f"is a {connection.conn_type!r} connection; a {wanted!r} connection is needed here",
        )


def kube_overrides(connection: ConnectionLike, scratch: Path) -> KubeOverrides:
    """The cluster a `kubernetes` connection names; kubeconfig content goes to `scratch`."""
    _check_type(connection, "kubernetes")
    in_cluster = _flag(connection, "in_cluster")
    path = _text(connection, "kube_config_path")
    content = _field(connection, "kube_config")
    given = [n for n, v in (("in_cluster", in_cluster), ("kube_config_path", path)) if v]
    if content not in (None, ""):
        given.append("kube_config")
    if len(given) > 1:
        raise _problem(
            connection,
            given[1],
            f"{' and '.join(given)} exclude each other (give one way to the cluster)",
        )
    if content not in (None, ""):
        path = _write_kubeconfig(connection, content, scratch)
    return KubeOverrides(
        kubeconfig=path,
        context=_text(connection, "cluster_context"),
        in_cluster=in_cluster,
        namespace=_text(connection, "namespace"),
        verify_ssl=not _flag(connection, "disable_verify_ssl"),
    )


def _write_kubeconfig(connection: ConnectionLike, content: Any, scratch: Path) -> str:
    if isinstance(content, Mapping):
        text = json.dumps(content)
    elif isinstance(content, str):
        text = content
    else:
        raise _problem(connection, "kube_config", f"{type(content).__name__} is not a kubeconfig")
    path = scratch / "kubeconfig"
    # Credentials: readable by this user only, from the first byte on.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write(text)
    return str(path)


def docker_overrides(connection: ConnectionLike) -> DockerOverrides:
    """The Docker daemon a `docker` connection's Host (and Port) names."""
    _check_type(connection, "docker")
    origin = f"Airflow connection {connection.conn_id!r}"
    host = (connection.host or "").strip()
    if not host:
        return DockerOverrides(None, origin)
    if "://" not in host:
        port = connection.port or 2375
        return DockerOverrides(f"tcp://{host}:{port}", origin)
    parts = urlsplit(host)
    if parts.scheme not in DAEMON_SCHEMES:
        raise _problem(
            connection,
            "host",
            f"{parts.scheme}:// is not a Docker daemon's address (unix://, tcp://, ssh://)",
        )
    if parts.scheme in ("http", "https", "tcp") and parts.path not in ("", "/"):
        raise _problem(
            connection,
            "host",
            f"{host} looks like a registry's URL; probe-engine needs the Docker daemon's "
            "address (unix:///var/run/docker.sock, tcp://HOST:2376, ssh://USER@HOST)",
        )
    if parts.scheme in ("http", "https", "tcp") and parts.port is None and connection.port:
        host = f"{host.rstrip('/')}:{connection.port}"
    return DockerOverrides(host, origin)
