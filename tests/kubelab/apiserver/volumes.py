"""A pod's volumes as the kubelet mounts them, for the volume kinds a probe workload uses:
`configMap` (the ConfigMap's keys as files, laid out as the kubelet's atomic writer does:
`..<timestamp>/KEY`, `..data` -> it, `KEY` -> `..data/KEY`) and `emptyDir`.

The container's process gets a mount namespace of its own (`unshare --mount`, root only) in
which each volume is bind-mounted at its mountPath (read-only when asked); a mountPath that does
not exist on this machine (/etc/probe-engine) is made inside an overlay of its nearest existing
parent, so nothing on the machine itself changes. `ip netns exec` then runs inside that mount
namespace. Other volume kinds are refused with the kubelet's words.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .resources import JSON

if TYPE_CHECKING:
    from .store import Store


class VolumeError(Exception):
    """A volume that cannot be set up: the message the kubelet's event would carry."""


@dataclass(frozen=True)
class Mount:
    source: Path
    path: str
    read_only: bool


def prepare(store: Store, pod: JSON, container: JSON, root: Path) -> list[Mount]:
    """The mounts of `container`, each volume's files made under `root` (the pod's directory)."""
    volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
    namespace = pod["metadata"].get("namespace", "default")
    mounts = []
    for mount in container.get("volumeMounts") or []:
        name = mount["name"]
        volume = volumes.get(name)
        if volume is None:
            raise VolumeError(f'volumeMounts "{name}": no volume of that name in the pod')
        directory = root / "volumes" / name
        if not directory.exists():
            _make(store, namespace, volume, directory)
        mounts.append(Mount(directory, mount["mountPath"], bool(mount.get("readOnly"))))
    return mounts


def _make(store: Store, namespace: str, volume: JSON, directory: Path) -> None:
    name = volume["name"]
    if "emptyDir" in volume:
        directory.mkdir(parents=True)
        return
    if "configMap" in volume:
        wanted = volume["configMap"]["name"]
        found = store.get("ConfigMap", wanted, namespace)
        if found is None:
            raise VolumeError(
                f'MountVolume.SetUp failed for volume "{name}" : configmap "{wanted}" not found'
            )
        _atomic_layout(directory, found.get("data") or {})
        return
    kind = next((k for k in volume if k != "name"), "?")
    raise VolumeError(f'volume "{name}": kubelab mounts configMap and emptyDir, not {kind}')


def _atomic_layout(directory: Path, files: dict[str, str]) -> None:
    """The kubelet's atomic writer: a timestamped directory, `..data` pointing at it, and a
    symlink per key (an update swaps `..data`; serve's reload sees it so)."""
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + str(os.getpid())
    (directory / stamp).mkdir(parents=True)
    for key, text in files.items():
        (directory / stamp / key).write_text(text)
        (directory / key).symlink_to(Path("..data") / key)
    (directory / "..data").symlink_to(stamp)


# Where the image's own files wait while volumes are mounted over their paths: a tmpfs of the
# container's mount namespace only (the machine's /mnt is untouched).
STAGE = "/mnt"


def wrap(
    command: Sequence[str], mounts: Sequence[Mount], root: Path, keep: Sequence[str] = ()
) -> list[str]:
    """`command` run in a mount namespace where every mount is in place, and the image's own
    directories (`keep`) still visible where a volume's mountPath covers them."""
    if os.geteuid() != 0:
        raise VolumeError("kubelab mounts volumes only as root (a mount namespace per container)")
    lines = ["set -e"]
    hidden = [
        os.path.normpath(k)
        for k in keep
        if any(_under(os.path.normpath(k), os.path.normpath(m.path)) for m in mounts)
    ]
    hidden = [h for h in hidden if not any(o != h and _under(h, o) for o in hidden)]
    if hidden:
        lines.append(f"mount -t tmpfs kubelab-image {STAGE}")
        for index, directory in enumerate(hidden):
            staged = f"{STAGE}/{index}"
            lines.append(f"mkdir {staged}")
            lines.append(f"mount --bind {shlex.quote(directory)} {staged}")
    overlaid: set[str] = set()
    for index, mount in enumerate(mounts):
        target = os.path.normpath(mount.path)
        if not os.path.exists(target):
            parent = _existing_parent(target)
            if parent == "/":
                raise VolumeError(f"mountPath {target}: kubelab cannot overlay /")
            if parent not in overlaid:
                upper, work = (
                    root / "overlay" / str(index) / "upper",
                    root / "overlay" / str(index) / "work",
                )
                upper.mkdir(parents=True)
                work.mkdir(parents=True)
                options = f"lowerdir={parent},upperdir={upper},workdir={work}"
                lines.append(
                    f"mount -t overlay overlay -o {shlex.quote(options)} {shlex.quote(parent)}"
                )
                overlaid.add(parent)
            lines.append(f"mkdir -p {shlex.quote(target)}")
        lines.append(f"mount --bind {shlex.quote(str(mount.source))} {shlex.quote(target)}")
        if mount.read_only:
            lines.append(f"mount -o remount,bind,ro {shlex.quote(target)}")
    for index, directory in enumerate(hidden):
        lines.append(f"mkdir -p {shlex.quote(directory)}")
        lines.append(f"mount --bind {STAGE}/{index} {shlex.quote(directory)}")
    lines.append('exec "$@"')
    script = "\n".join(lines)
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *command]


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _existing_parent(path: str) -> str:
    parent = os.path.dirname(path)
    while parent != "/" and not os.path.exists(parent):
        parent = os.path.dirname(parent)
    return parent
