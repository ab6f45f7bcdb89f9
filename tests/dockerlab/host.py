"""This machine, as the Docker lab needs it: its errors, running coroutines from fixtures,
and the processes, mounts and network namespaces dockerd leaves behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_CACHE_DIR = Path(os.environ.get("PE_DOCKERLAB_CACHE", "/var/cache/probe-engine-docker"))
"""Data-root, cached rootfs tarballs, lock and state file. Override with PE_DOCKERLAB_CACHE."""

SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class DockerLabError(RuntimeError):
    """The engine, an image or the lab could not be brought up (or down)."""


class PrerequisiteError(DockerLabError):
    """Something this machine lacks (root, a binary); see ``missing_prerequisites``."""


# --------------------------------------------------------------------------------------------
# running coroutines from synchronous code (pytest fixtures), whatever loop is around


def run_sync(factory: Callable[[], Awaitable[T]]) -> T:
    """Run ``factory()`` to completion on a fresh event loop, in a helper thread if this thread
    already runs a loop (an anyio test). aiodocker clients are bound to one loop, so every call
    opens and closes its own client: fixtures hand out data (URLs, ids, addresses), not clients."""

    async def main() -> T:
        return await factory()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(main())
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="dockerlab-run-sync")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


# --------------------------------------------------------------------------------------------
# processes, mounts and network namespaces of this machine


def which(name: str) -> str | None:
    return shutil.which(name, path=os.environ.get("PATH", "") + ":" + SAFE_PATH)


def run(args: Sequence[str], *, check: bool = True, timeout: float = 60.0) -> str:
    """Run a command (argument list, no shell) and return its stdout."""
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise DockerLabError(
            f"{' '.join(args)} exited {proc.returncode}: {proc.stderr.strip() or proc.stdout}"
        )
    return proc.stdout


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie counts as gone
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for candidate in _all_pids():
        try:
            stat = Path(f"/proc/{candidate}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(candidate)
    return found


def terminate(pid: int, timeout: float, reap: Callable[[], None] | None = None) -> str:
    """SIGTERM, wait up to ``timeout``, then SIGKILL. Returns how it ended."""
    if not pid_alive(pid):
        return "gone"
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reap is not None:
            reap()
        if not pid_alive(pid):
            return "sigterm"
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if reap is not None:
            reap()
        if not pid_alive(pid):
            break
        time.sleep(0.05)
    return "sigkill"


def _kill_tree(pid: int) -> None:
    for child in _children(pid):
        _kill_tree(child)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def kill_processes_mentioning(path: Path) -> list[int]:
    """SIGKILL every process (and its descendants) whose command line mentions ``path``:
    the managed containerd and the shims of a dockerd that did not shut down cleanly."""
    needle = str(path)
    killed: list[int] = []
    for pid in _all_pids():
        if pid == os.getpid():
            continue
        if any(needle in arg for arg in cmdline(pid)):
            _kill_tree(pid)
            killed.append(pid)
    return killed


def _mount_points_under(roots: Iterable[Path]) -> list[str]:
    prefixes = [str(r).rstrip("/") for r in roots]
    points: list[str] = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        raw = line.split()[4]
        point = raw.encode().decode("unicode_escape")  # \040 for space, etc.
        if any(point == p or point.startswith(p + "/") for p in prefixes):
            points.append(point)
    return points


def unmount_under(roots: Iterable[Path]) -> list[str]:
    """Unmount everything mounted at or below ``roots``, deepest first (lazily if busy)."""
    roots = list(roots)
    done: list[str] = []
    for _ in range(5):  # a mount can hide another one at the same point
        points = _mount_points_under(roots)
        if not points:
            break
        for point in sorted(points, key=lambda p: (p.count("/"), p), reverse=True):
            proc = subprocess.run(["umount", point], capture_output=True, check=False)
            if proc.returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True, check=False)
            done.append(point)
    return done


def netns_path(name: str) -> Path:
    return Path("/run/netns") / name


def _links(netns: str) -> list[str]:
    """Interface names in a network namespace."""
    out = run(["ip", "-n", netns, "-o", "link", "show"], check=False)
    names: list[str] = []
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@", 1)[0])
    return names


def netns_pids(name: str) -> list[int]:
    """Processes whose network namespace is the named one."""
    try:
        target = netns_path(name).stat()
    except OSError:
        return []
    pids: list[int] = []
    for pid in _all_pids():
        try:
            st = os.stat(f"/proc/{pid}/ns/net")
        except OSError:
            continue
        if (st.st_ino, st.st_dev) == (target.st_ino, target.st_dev):
            pids.append(pid)
    return pids


def kill_netns_processes(name: str) -> list[int]:
    pids = [p for p in netns_pids(name) if p != os.getpid()]
    for pid in pids:
        _kill_tree(pid)
    return pids


def delete_netns(name: str) -> bool:
    """Delete the bridges in the namespace, then the namespace; False if there was none."""
    if not netns_path(name).exists():
        return False
    for link in _links(name):
        if link != "lo":
            subprocess.run(
                ["ip", "-n", name, "link", "del", link], capture_output=True, check=False
            )
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    return True
