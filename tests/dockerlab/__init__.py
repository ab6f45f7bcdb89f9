"""The Docker lab: a private Docker engine, images built here without a registry, containers.

Nothing here talks to a registry or lets a packet leave the machine:

* ``DockerDaemon`` starts Debian's ``dockerd`` inside a network namespace of its own
  (``pedl-engine``: loopback only, no link to the host's network), with its own data-root (in a
  cache folder that persists, so images survive between runs), its own exec-root, pidfile and
  unix socket (in a temp folder), ``--bip`` of its own, no iptables rules, no forwarding, no
  masquerading, and ``--dns 127.0.0.1`` as every container's default resolver. ``docker0`` and
  the lab's bridges therefore live in that namespace: the host's interfaces, routes and sysctls
  are untouched, and no packet from a container has a way off the machine. It is stopped by pid
  (SIGTERM, wait, SIGKILL); then its bridges, its mounts and its namespace are removed. A
  dockerd left by a killed run is found through a state file in the cache folder and cleaned up
  first.
* ``ensure_images`` builds ``pe-busybox`` (Debian's busybox-static and its applet links: no
  Python) and ``pe-python`` (the host's Debian python3, the shared libraries it loads, a trimmed
  standard library, and busybox for ``sh``) as tarballs, imports them with
  ``POST /images/create?fromSrc=-`` and keys both by a content hash (the image tag and a label),
  so a second run reuses them. The tarballs are cached too.
* ``create_lab`` makes two user networks and five containers (``DEFAULT_LAB``). Containers keep
  Docker's default route via their network's gateway, which is the engine's namespace: it does
  not forward and drops silently, so reaching another network's address times out, as Docker's
  isolation rules make it do on a real host. Names go to Docker's embedded DNS, which forwards
  unknown ones to the container's own loopback (nothing answers: EAI_AGAIN after 1 s).
* ``exec_run`` and ``ExecSession`` exec through aiodocker, with stdin streamed in, stdout read as
  it comes and the exit code from exec inspect.

The ``docker`` CLI is never used. One module per concern: host.py (this machine: errors,
processes, mounts, namespaces), daemon.py, images.py, lab.py, execs.py; fixtures.py is the
pytest plugin (registered in tests/conftest.py) with the session fixtures.
"""

from __future__ import annotations

from .daemon import (
    DaemonConfig,
    DockerDaemon,
    cleanup_leftover,
    missing_prerequisites,
)
from .execs import (
    ExecResult,
    ExecSession,
    errno_name,
    exec_run,
)
from .host import (
    DEFAULT_CACHE_DIR,
    DockerLabError,
    PrerequisiteError,
    run_sync,
)
from .images import (
    HASH_LABEL,
    LAB_LABEL,
    ImageInfo,
    RootfsEntry,
    busybox_rootfs,
    ensure_image,
    ensure_images,
    python_rootfs,
    rootfs_key,
    write_rootfs_tar,
)
from .lab import (
    API_SERVER_SCRIPT,
    BRIDGE_PREFIX,
    DEFAULT_LAB,
    ContainerSpec,
    Lab,
    LabContainer,
    LabSpec,
    NetworkSpec,
    create_lab,
    remove_lab,
)

__all__ = [
    "API_SERVER_SCRIPT",
    "BRIDGE_PREFIX",
    "DEFAULT_CACHE_DIR",
    "DEFAULT_LAB",
    "HASH_LABEL",
    "LAB_LABEL",
    "ContainerSpec",
    "DaemonConfig",
    "DockerDaemon",
    "DockerLabError",
    "ExecResult",
    "ExecSession",
    "ImageInfo",
    "Lab",
    "LabContainer",
    "LabSpec",
    "NetworkSpec",
    "PrerequisiteError",
    "RootfsEntry",
    "busybox_rootfs",
    "cleanup_leftover",
    "create_lab",
    "ensure_image",
    "ensure_images",
    "errno_name",
    "exec_run",
    "missing_prerequisites",
    "python_rootfs",
    "remove_lab",
    "rootfs_key",
    "run_sync",
    "write_rootfs_tar",
]
