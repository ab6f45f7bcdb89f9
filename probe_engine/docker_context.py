"""The Docker context the docker CLI would use (Colima, Docker Desktop, rootless engines set
one), when nothing names a daemon: DOCKER_CONTEXT, else `currentContext` in config.json.

aiodocker (>= 0.25) resolves the context itself, TLS material included, but only under
~/.docker and only from 0.25 on (Python 3.9 gets 0.24). Where it cannot (DOCKER_CONFIG names
another folder, or an older aiodocker), the context's endpoint is read here, as the docker CLI
stores it: contexts/meta/<sha256 of the name>/meta.json, `Endpoints.docker.Host`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

CONTEXTS_FROM = (0, 25)  # the aiodocker that resolves contexts when given no url


class DockerContextError(Exception):
    """The configured Docker context cannot be used: the message says which and why."""


def config_dir(environ: Mapping[str, str]) -> Path:
    """Where the docker CLI keeps config.json and contexts/."""
    configured = environ.get("DOCKER_CONFIG")
    return Path(configured).expanduser() if configured else Path.home() / ".docker"


def current_context(environ: Mapping[str, str]) -> str | None:
    """The context's name, None for the built-in `default` (DOCKER_HOST or the sockets)."""
    name = environ.get("DOCKER_CONTEXT")
    if not name:
        path = config_dir(environ) / "config.json"
        try:
            name = json.loads(path.read_bytes()).get("currentContext")
        except FileNotFoundError:
            return None
        except (OSError, ValueError, AttributeError) as exc:
            raise DockerContextError(f"cannot read the Docker config {path}: {exc}") from None
    return None if not name or name == "default" else str(name)


def aiodocker_resolves(environ: Mapping[str, str]) -> bool:
    """Whether aiodocker, given no url, finds the same context this module would."""
    try:
        version = tuple(int(part) for part in metadata.version("aiodocker").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return False
    return version >= CONTEXTS_FROM and config_dir(environ) == Path.home() / ".docker"


def context_host(name: str, environ: Mapping[str, str]) -> str:
    """The daemon address of context `name` (aiodocker's url), read from its meta.json."""
    directory = config_dir(environ) / "contexts"
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = directory / "meta" / digest / "meta.json"
    try:
        host = json.loads(meta.read_bytes())["Endpoints"]["docker"]["Host"]
    except FileNotFoundError:
        raise DockerContextError(
            f"no Docker context {name!r} in {directory} (docker context ls lists them)"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DockerContextError(
            f"cannot read Docker context {name!r} from {meta}: {exc}"
        ) from None
    if (directory / "tls" / digest / "docker").is_dir():
        raise DockerContextError(
            f"Docker context {name!r} uses TLS certificates, which are only loaded from "
            "~/.docker with aiodocker >= 0.25: set DOCKER_HOST, DOCKER_TLS_VERIFY and "
            "DOCKER_CERT_PATH instead"
        )
    return str(host)
