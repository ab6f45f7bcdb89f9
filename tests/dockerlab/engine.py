"""A private Docker engine, images built here without a registry, and a small container lab.

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

The ``docker`` CLI is never used.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar

import aiodocker
import aiohttp

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

T = TypeVar("T")

DEFAULT_CACHE_DIR = Path(os.environ.get("PE_DOCKERLAB_CACHE", "/var/cache/probe-engine-docker"))
"""Data-root, cached rootfs tarballs, lock and state file. Override with PE_DOCKERLAB_CACHE."""

LAB_LABEL = "org.probe-engine.dockerlab"
HASH_LABEL = "org.probe-engine.content-hash"
BRIDGE_PREFIX = "pedl-"
"""Names of the lab's Linux bridges and of the engine's network namespace start with this."""

RECIPE_VERSION = "1"
"""Bump to rebuild every image (it is part of each content hash)."""

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
# prerequisites and small process helpers

REQUIRED_BINARIES = (
    "dockerd",
    "containerd",
    "containerd-shim-runc-v2",
    "runc",
    "docker-init",
    "ip",
    "nsenter",
    "umount",
    "ldd",
)


def _which(name: str) -> str | None:
    return shutil.which(name, path=os.environ.get("PATH", "") + ":" + SAFE_PATH)


def missing_prerequisites(
    busybox: Path = Path("/bin/busybox"), python: Path = Path("/usr/bin/python3")
) -> list[str]:
    """What this machine lacks to run the lab, in words (empty when everything is there).

    Debian packages: docker.io (dockerd, containerd, runc, docker-init via tini), busybox-static,
    python3 (its standard library goes into pe-python), iproute2, util-linux, libc-bin."""
    problems: list[str] = []
    if os.geteuid() != 0:
        problems.append("not root (dockerd needs root)")
    problems += [f"no {name} binary" for name in REQUIRED_BINARIES if _which(name) is None]
    if not busybox.is_file():
        problems.append(f"no {busybox} (Debian package busybox-static)")
    elif _is_dynamic(busybox):
        problems.append(f"{busybox} is dynamically linked: install busybox-static")
    try:
        _python_layout(python)
    except PrerequisiteError as exc:
        problems.append(str(exc))
    return problems


def _is_dynamic(binary: Path) -> bool:
    """True if the ELF file asks for a program interpreter (PT_INTERP)."""
    with binary.open("rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:  # only 64-bit ELF is expected here
            return True
        order: Literal["little", "big"] = "little" if head[5] == 1 else "big"
        phoff = int.from_bytes(head[32:40], order)
        phentsize = int.from_bytes(head[54:56], order)
        phnum = int.from_bytes(head[56:58], order)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return any(
        int.from_bytes(table[i * phentsize : i * phentsize + 4], order) == 3  # PT_INTERP
        for i in range(phnum)
    )


def _run(args: Sequence[str], *, check: bool = True, timeout: float = 60.0) -> str:
    """Run a command (argument list, no shell) and return its stdout."""
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise DockerLabError(
            f"{' '.join(args)} exited {proc.returncode}: {proc.stderr.strip() or proc.stdout}"
        )
    return proc.stdout


def _pid_alive(pid: int) -> bool:
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


def _cmdline(pid: int) -> list[str]:
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


def _terminate(pid: int, timeout: float, reap: Callable[[], None] | None = None) -> str:
    """SIGTERM, wait up to ``timeout``, then SIGKILL. Returns how it ended."""
    if not _pid_alive(pid):
        return "gone"
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reap is not None:
            reap()
        if not _pid_alive(pid):
            return "sigterm"
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if reap is not None:
            reap()
        if not _pid_alive(pid):
            break
        time.sleep(0.05)
    return "sigkill"


def _kill_tree(pid: int) -> None:
    for child in _children(pid):
        _kill_tree(child)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _kill_processes_mentioning(path: Path) -> list[int]:
    """SIGKILL every process (and its descendants) whose command line mentions ``path``:
    the managed containerd and the shims of a dockerd that did not shut down cleanly."""
    needle = str(path)
    killed: list[int] = []
    for pid in _all_pids():
        if pid == os.getpid():
            continue
        if any(needle in arg for arg in _cmdline(pid)):
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


def _unmount_under(roots: Iterable[Path]) -> list[str]:
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


def _netns_path(name: str) -> Path:
    return Path("/run/netns") / name


def _links(netns: str) -> list[str]:
    """Interface names in a network namespace."""
    out = _run(["ip", "-n", netns, "-o", "link", "show"], check=False)
    names: list[str] = []
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@", 1)[0])
    return names


def _netns_pids(name: str) -> list[int]:
    """Processes whose network namespace is the named one."""
    try:
        target = _netns_path(name).stat()
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


def _kill_netns_processes(name: str) -> list[int]:
    pids = [p for p in _netns_pids(name) if p != os.getpid()]
    for pid in pids:
        _kill_tree(pid)
    return pids


def _delete_netns(name: str) -> bool:
    """Delete the bridges in the namespace, then the namespace; False if there was none."""
    if not _netns_path(name).exists():
        return False
    for link in _links(name):
        if link != "lo":
            subprocess.run(
                ["ip", "-n", name, "link", "del", link], capture_output=True, check=False
            )
    subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    return True


# --------------------------------------------------------------------------------------------
# the engine


@dataclass(frozen=True)
class DaemonConfig:
    """Where and how the private dockerd runs."""

    cache_dir: Path = DEFAULT_CACHE_DIR
    run_parent: Path | None = None
    """Parent of the temp folder holding exec-root, socket, pidfile and log (default: TMPDIR)."""
    bip: str = "10.201.0.1/24"
    address_pool: str = "10.204.0.0/16"
    """For networks created without a subnet (the lab always gives one)."""
    dns: str = "127.0.0.1"
    """Default resolver of every container: its own loopback, so no lookup can leave."""
    netns: str = "pedl-engine"
    """The network namespace dockerd runs in (created and deleted here)."""
    start_timeout: float = 60.0
    stop_timeout: float = 20.0
    lock_timeout: float = 600.0
    """How long to wait for another test session using the same cache folder."""

    @property
    def data_root(self) -> Path:
        return self.cache_dir / "data"

    @property
    def state_file(self) -> Path:
        return self.cache_dir / "dockerd-state.json"

    @property
    def lock_file(self) -> Path:
        return self.cache_dir / "lock"

    @property
    def rootfs_dir(self) -> Path:
        return self.cache_dir / "rootfs"


def cleanup_leftover(config: DaemonConfig) -> list[str]:
    """Stop and clean up a dockerd left running by a killed earlier run (found through the
    state file). Call with the cache lock held. Returns what it did, in words."""
    actions: list[str] = []
    if not config.state_file.exists():
        return actions
    try:
        state: dict[str, Any] = json.loads(config.state_file.read_text())
    except (OSError, ValueError):
        state = {}
    run_dir = Path(state["run_dir"]) if state.get("run_dir") else None
    pid = state.get("pid")
    if isinstance(pid, int) and _pid_alive(pid):
        cmd = _cmdline(pid)
        if cmd and Path(cmd[0]).name == "dockerd" and str(config.data_root) in cmd:
            how = _terminate(pid, config.stop_timeout)
            actions.append(f"stopped leftover dockerd {pid} ({how})")
    if run_dir is not None:
        killed = _kill_processes_mentioning(run_dir)
        if killed:
            actions.append(f"killed leftover containerd/shims {killed}")
    netns = str(state.get("netns") or config.netns)
    killed = _kill_netns_processes(netns)
    if killed:
        actions.append(f"killed processes left in netns {netns}: {killed}")
    roots = [config.data_root] + ([run_dir] if run_dir is not None else [])
    unmounted = _unmount_under(roots)
    if unmounted:
        actions.append(f"unmounted {len(unmounted)} leftover mounts")
    if _delete_netns(netns):
        actions.append(f"deleted netns {netns} (and the bridges in it)")
    if run_dir is not None and run_dir.exists():
        shutil.rmtree(run_dir, ignore_errors=True)
        actions.append(f"removed {run_dir}")
    config.state_file.unlink(missing_ok=True)
    return actions


class DockerDaemon:
    """A private dockerd, started and stopped by this process.

    ``with DockerDaemon() as daemon: ... daemon.url ...`` or ``start()`` / ``stop()``."""

    def __init__(self, config: DaemonConfig | None = None) -> None:
        self.config = config or DaemonConfig()
        self.run_dir: Path | None = None
        self.pid: int | None = None
        self.start_seconds: float | None = None
        self.stop_seconds: float | None = None
        self.leftover_actions: list[str] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock_fd: int | None = None
        self._owns_netns = False

    # paths ------------------------------------------------------------------------------------
    def _need_run_dir(self) -> Path:
        if self.run_dir is None:
            raise DockerLabError("the daemon has not been started")
        return self.run_dir

    @property
    def exec_root(self) -> Path:
        return self._need_run_dir() / "exec"

    @property
    def socket_path(self) -> Path:
        return self._need_run_dir() / "docker.sock"

    @property
    def pidfile(self) -> Path:
        return self._need_run_dir() / "dockerd.pid"

    @property
    def log_path(self) -> Path:
        return self._need_run_dir() / "dockerd.log"

    @property
    def url(self) -> str:
        """What ``aiodocker.Docker(url=...)`` and DOCKER_HOST take."""
        return f"unix://{self.socket_path}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except (OSError, DockerLabError):
            return ""

    # lifecycle --------------------------------------------------------------------------------
    def __enter__(self) -> DockerDaemon:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _lock(self) -> None:
        self.config.cache_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.config.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.config.lock_timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise DockerLabError(
                        f"{self.config.lock_file} is held by another test session"
                    ) from None
                time.sleep(0.5)
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _write_state(self) -> None:
        state = {
            "pid": self.pid,
            "run_dir": str(self.run_dir),
            "data_root": str(self.config.data_root),
            "netns": self.config.netns,
            "started_at": time.time(),
        }
        tmp = self.config.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(self.config.state_file)

    def command(self) -> list[str]:
        dockerd = _which("dockerd")
        if dockerd is None:
            raise PrerequisiteError("no dockerd binary (Debian package docker.io)")
        nsenter = _which("nsenter") or "nsenter"
        return [
            nsenter, f"--net={_netns_path(self.config.netns)}",  # execs dockerd: same pid
            dockerd,
            "--config-file", str(self._need_run_dir() / "daemon.json"),
            "--data-root", str(self.config.data_root),
            "--exec-root", str(self.exec_root),
            "--pidfile", str(self.pidfile),
            "--host", self.url,
            "--iptables=false",
            "--ip6tables=false",
            "--ip-forward=false",
            "--ip-masq=false",
            "--userland-proxy=false",
            "--bip", self.config.bip,
            "--dns", self.config.dns,
            "--default-address-pool", f"base={self.config.address_pool},size=24",
            "--containerd-namespace", "probe-engine",
            "--containerd-plugins-namespace", "probe-engine-plugins",
        ]  # fmt: skip

    def start(self) -> None:
        """Start dockerd and wait until it answers through aiodocker; raise DockerLabError
        (with the log's tail) if it does not. A PrerequisiteError means this machine cannot."""
        problems = [p for p in missing_prerequisites() if "busybox" not in p]
        if problems:
            raise PrerequisiteError("; ".join(problems))
        t0 = time.monotonic()
        self._lock()
        try:
            self.leftover_actions = cleanup_leftover(self.config)
            netns = self.config.netns
            if _netns_pids(netns):
                raise DockerLabError(
                    f"network namespace {netns} is in use by processes {_netns_pids(netns)}: "
                    "another lab engine? (DaemonConfig.netns picks another name)"
                )
            _delete_netns(netns)
            _run(["ip", "netns", "add", netns])
            self._owns_netns = True
            _run(["ip", "-n", netns, "link", "set", "lo", "up"])
            self.config.data_root.mkdir(parents=True, exist_ok=True)
            parent = self.config.run_parent or Path(tempfile.gettempdir())
            parent.mkdir(parents=True, exist_ok=True)
            self.run_dir = Path(tempfile.mkdtemp(prefix="pe-dockerd-", dir=parent))
            self.exec_root.mkdir()
            # The trust key would otherwise go to /etc/docker/key.json.
            daemon_json = {"deprecated-key-path": str(self.config.cache_dir / "key.json")}
            (self.run_dir / "daemon.json").write_text(json.dumps(daemon_json))
            env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
            env["PATH"] = SAFE_PATH + ":" + env.get("PATH", "")
            with self.log_path.open("wb") as log:
                self._proc = subprocess.Popen(
                    self.command(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,  # Ctrl-C to pytest must not reach it first
                )
            self.pid = self._proc.pid
            self._write_state()
            run_sync(lambda: self._wait_ready(t0 + self.config.start_timeout))
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0

    async def _wait_ready(self, deadline: float) -> None:
        last = "no answer"
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise DockerLabError(
                    f"dockerd exited {self._proc.returncode} while starting:\n{self.log_tail()}"
                )
            if self.socket_path.exists():
                try:
                    async with aiodocker.Docker(url=self.url) as docker:
                        await docker.version()
                        return
                except (aiodocker.DockerError, aiohttp.ClientError, OSError) as exc:
                    last = str(exc)
            await asyncio.sleep(0.05)
        raise DockerLabError(
            f"dockerd did not answer on {self.url} within {self.config.start_timeout} s "
            f"({last}):\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """Stop dockerd by pid (SIGTERM, wait, SIGKILL), then remove what it leaves behind:
        containerd and shims still mentioning the run folder, mounts under the run folder and
        the data-root, docker0 and the lab's bridges with the network namespace, the run folder,
        the state file."""
        t0 = time.monotonic()
        try:
            proc = self._proc
            if self.pid is not None:

                def reap() -> None:
                    if proc is not None:
                        proc.poll()

                _terminate(self.pid, self.config.stop_timeout, reap)
                if proc is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=5)
            if self.run_dir is not None:
                _kill_processes_mentioning(self.run_dir)
                _unmount_under([self.run_dir, self.config.data_root])
            if self._owns_netns:  # docker0 and the lab's bridges go with it
                _kill_netns_processes(self.config.netns)
                _delete_netns(self.config.netns)
                self._owns_netns = False
            if self.run_dir is not None:
                shutil.rmtree(self.run_dir, ignore_errors=True)
            if self._lock_fd is not None:
                self.config.state_file.unlink(missing_ok=True)
        finally:
            self._proc = None
            self.pid = None
            self._unlock()
            self.stop_seconds = time.monotonic() - t0


# --------------------------------------------------------------------------------------------
# root filesystems and images


@dataclass(frozen=True)
class RootfsEntry:
    """One member of an image's root filesystem."""

    path: str
    """Inside the image, relative, no leading slash."""
    kind: Literal["dir", "file", "symlink"]
    mode: int = 0o755
    source: Path | None = None
    """Host file whose content this member gets (kind file)."""
    data: bytes | None = None
    """Literal content (kind file, when no source)."""
    target: str | None = None
    """Link target (kind symlink)."""


def _dir(path: str, mode: int = 0o755) -> RootfsEntry:
    return RootfsEntry(path, "dir", mode)


def _link(path: str, target: str) -> RootfsEntry:
    return RootfsEntry(path, "symlink", 0o777, target=target)


def _text(path: str, text: str, mode: int = 0o644) -> RootfsEntry:
    return RootfsEntry(path, "file", mode, data=text.encode())


def _copy(path: str, source: Path, mode: int | None = None) -> RootfsEntry:
    real = source.resolve()
    return RootfsEntry(
        path, "file", mode if mode is not None else real.stat().st_mode & 0o7777, source=real
    )


BASE_ETC: tuple[RootfsEntry, ...] = (
    _text(
        "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
    ),
    _text("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
    _text("etc/nsswitch.conf", "hosts: files dns\npasswd: files\ngroup: files\n"),
    _dir("tmp", 0o1777),
    _dir("root", 0o700),
    _dir("proc"),
    _dir("sys"),
    _dir("dev"),
    _dir("etc"),
    _dir("var"),
    _dir("run"),
)
"""Docker bind-mounts /etc/hosts, /etc/hostname and /etc/resolv.conf over the image's."""


def busybox_applets(busybox: Path) -> list[str]:
    out = _run([str(busybox), "--list"])
    return sorted({a for a in out.split() if a and "/" not in a and a != "busybox"})


def busybox_rootfs(busybox: Path = Path("/bin/busybox")) -> list[RootfsEntry]:
    """``pe-busybox``: /bin/busybox plus a link per applet (sh, nc, wget, sleep, ...). No
    Python, no libraries: busybox-static needs none."""
    entries = [*BASE_ETC, _dir("bin"), _copy("bin/busybox", busybox, 0o755)]
    entries += [_link(f"bin/{a}", "busybox") for a in busybox_applets(busybox)]
    entries += [_dir("usr"), _link("usr/bin", "../bin"), _link("sbin", "bin")]
    return entries


# Standard library parts left out of pe-python: tests, GUIs, build tooling, and modules whose
# extension needs a library we would rather not ship.
STDLIB_EXCLUDED_DIRS = frozenset({
    "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data",
    "distutils", "site-packages", "dist-packages", "venv", "curses", "sqlite3", "dbm",
    "__phello__",
})  # fmt: skip
DYNLOAD_EXCLUDED = frozenset({
    "_testbuffer", "_testcapi", "_testclinic", "_testimportmultiple", "_testinternalcapi",
    "_testmultiphase", "_ctypes_test", "xxlimited", "xxlimited_35", "_xxtestfuzz",
    "_curses", "_curses_panel", "_dbm", "_gdbm", "_sqlite3", "readline", "nis", "_tkinter",
    "_crypt",
})  # fmt: skip


def _python_layout(python: Path) -> tuple[Path, str, Path]:
    """(real interpreter, "3.X", stdlib dir) of a Debian-style python3, or PrerequisiteError."""
    real = python.resolve()
    name = real.name
    if not real.is_file() or not name.startswith("python3."):
        raise PrerequisiteError(f"no Debian python3 at {python} (package python3)")
    version = name.removeprefix("python")
    stdlib = Path("/usr/lib") / f"python{version}"
    if not (stdlib / "os.py").is_file() or not (stdlib / "lib-dynload").is_dir():
        raise PrerequisiteError(f"no standard library at {stdlib} (package python3)")
    return real, version, stdlib


def _merged(path: str) -> str:
    """Where a library path lives in a /usr-merged tree, relative (``/lib/x`` -> ``usr/lib/x``)."""
    for top in ("/lib/", "/lib64/", "/bin/", "/sbin/"):
        if path.startswith(top):
            return "usr" + path
    return path.lstrip("/")


def _shared_libraries(binaries: Sequence[Path]) -> list[str]:
    """The shared libraries (as the loader names them) the binaries need, from ``ldd``."""
    libs: set[str] = set()
    for start in range(0, len(binaries), 64):
        out = _run(["ldd", *[str(b) for b in binaries[start : start + 64]]], check=False)
        for raw in out.splitlines():
            line = raw.strip()
            if "=>" in line:
                target = line.split("=>", 1)[1].strip().split(" (", 1)[0].strip()
                if target.startswith("/"):
                    libs.add(target)
                elif target == "not found":
                    raise DockerLabError(f"ldd: a library is missing: {line}")
            elif line.startswith("/") and not line.endswith(":"):  # not a file's header
                libs.add(line.split(" (", 1)[0].strip())
    return sorted(libs)


def python_rootfs(
    python: Path = Path("/usr/bin/python3"), busybox: Path | None = Path("/bin/busybox")
) -> list[RootfsEntry]:
    """``pe-python``: the host's Debian python3 (binary, the shared libraries it and its
    extension modules load, the standard library without tests, GUIs and build tools, CA
    certificates) in a /usr-merged tree, plus busybox for ``sh``, ``sleep``, ``nc``... so the
    image behaves like a slim distribution image."""
    real, _version, stdlib = _python_layout(python)
    entries: list[RootfsEntry] = [*BASE_ETC]
    entries += [
        _dir("usr"),
        _dir("usr/bin"),
        _dir("usr/lib"),
        _dir("usr/lib64"),
        _dir("usr/sbin"),
        _dir("usr/local"),
        _dir("usr/local/bin"),
    ]
    entries += [
        _link("bin", "usr/bin"),
        _link("sbin", "usr/sbin"),
        _link("lib", "usr/lib"),
        _link("lib64", "usr/lib64"),
    ]
    entries += [_copy(f"usr/bin/{real.name}", real, 0o755), _link("usr/bin/python3", real.name)]
    binaries: list[Path] = [real]
    for dirpath, dirnames, filenames in os.walk(stdlib):
        here = Path(dirpath)
        rel_dir = here.relative_to(stdlib)
        if rel_dir == Path("."):
            dirnames[:] = [
                d for d in dirnames if d not in STDLIB_EXCLUDED_DIRS and not d.startswith("config-")
            ]
        dirnames.sort()
        entries.append(_dir(str(here.relative_to("/"))))
        for name in sorted(filenames):
            src = here / name
            if ".opt-1." in name or ".opt-2." in name or name == "EXTERNALLY-MANAGED":
                continue
            if here.name == "lib-dynload":
                if not name.endswith(".so") or name.split(".", 1)[0] in DYNLOAD_EXCLUDED:
                    continue
                binaries.append(src)
            if src.is_symlink():
                resolved = src.resolve()
                if not resolved.is_file() or not resolved.is_relative_to(stdlib):
                    continue  # e.g. sitecustomize.py -> /etc/python3.X/
            rel = src.relative_to(Path("/"))
            entries.append(_copy(str(rel), src))
    for lib in _shared_libraries(binaries):
        entries.append(_copy(_merged(lib), Path(lib)))
    certs = Path("/etc/ssl/certs/ca-certificates.crt")
    if certs.is_file():
        entries += [
            _dir("etc/ssl"),
            _dir("etc/ssl/certs"),
            _copy("etc/ssl/certs/ca-certificates.crt", certs, 0o644),
            _dir("usr/lib/ssl"),
            _link("usr/lib/ssl/cert.pem", "/etc/ssl/certs/ca-certificates.crt"),
            _link("usr/lib/ssl/certs", "/etc/ssl/certs"),
        ]
    if busybox is not None:
        entries.append(_copy("usr/bin/busybox", busybox, 0o755))
        taken = {e.path for e in entries}
        entries += [
            _link(f"usr/bin/{a}", "busybox")
            for a in busybox_applets(busybox)
            if f"usr/bin/{a}" not in taken
        ]
    return entries


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _normalized(entries: Iterable[RootfsEntry]) -> list[RootfsEntry]:
    """Deduplicated (last wins), parents added, sorted so that a folder precedes its members."""
    by_path: dict[str, RootfsEntry] = {}
    for entry in entries:
        by_path[entry.path.strip("/")] = entry
    for path in list(by_path):
        parent = Path(path).parent
        while str(parent) != ".":
            by_path.setdefault(str(parent), _dir(str(parent)))
            parent = parent.parent
    return [by_path[p] for p in sorted(by_path, key=lambda p: p.split("/"))]


def rootfs_key(entries: Iterable[RootfsEntry]) -> str:
    """A content hash of a root filesystem: paths, kinds, modes, link targets, file contents
    (not times: the same files on another machine give the same key)."""
    h = hashlib.sha256(f"pe-dockerlab-rootfs {RECIPE_VERSION}\n".encode())
    for e in _normalized(entries):
        content = ""
        if e.source is not None:
            content = _file_digest(e.source)
        elif e.data is not None:
            content = hashlib.sha256(e.data).hexdigest()
        h.update(f"{e.path}\0{e.kind}\0{e.mode:o}\0{e.target or ''}\0{content}\n".encode())
    return h.hexdigest()


FIXED_MTIME = 1_700_000_000


def write_rootfs_tar(entries: Iterable[RootfsEntry], dest: Path) -> int:
    """Write the root filesystem as an uncompressed tar (owner root), atomically. Copied files
    keep their mtime (so the standard library's .pyc files stay valid). Returns its size."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for e in _normalized(entries):
            info = tarfile.TarInfo(e.path)
            info.mode = e.mode
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = FIXED_MTIME
            if e.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif e.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = e.target or ""
                tar.addfile(info)
            elif e.source is not None:
                st = e.source.stat()
                info.size = st.st_size
                info.mtime = int(st.st_mtime)
                with e.source.open("rb") as f:
                    tar.addfile(info, f)
            else:
                data = e.data or b""
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    tmp.replace(dest)
    return dest.stat().st_size


@dataclass(frozen=True)
class ImageInfo:
    """An image ensured by ``ensure_image``."""

    repo: str
    tag: str
    """The first 16 hex digits of the content hash; ``latest`` points at it too."""
    id: str
    size: int
    """Bytes, as the engine reports it."""
    content_hash: str
    built: bool
    """False: the engine already had it (nothing done)."""
    tar_cached: bool
    """True: the rootfs tarball came from the cache folder."""
    plan_seconds: float
    """Listing and hashing the files."""
    tar_seconds: float
    import_seconds: float
    seconds: float

    @property
    def ref(self) -> str:
        return f"{self.repo}:{self.tag}"


async def _import_tar(
    docker: aiodocker.Docker, tar: Path, repo: str, tag: str, labels: Mapping[str, str]
) -> None:
    """``docker import``: POST /images/create?fromSrc=- with the tarball as body.
    (aiodocker's ``images.import_image`` posts to /images/load, which wants ``docker save``
    archives, so the request is made through its generic ``_query``.)"""
    change = "LABEL " + " ".join(f"{k}={json.dumps(v)}" for k, v in labels.items())
    params = {
        "fromSrc": "-",
        "repo": repo,
        "tag": tag,
        "changes": change,
        "message": "probe-engine dockerlab",
    }
    with tar.open("rb") as body:
        async with docker._query(
            "images/create",
            method="POST",
            params=params,
            data=body,
            headers={"Content-Type": "application/x-tar"},
            timeout=aiohttp.ClientTimeout(total=600),
        ) as response:
            text = (await response.read()).decode(errors="replace")
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            message = json.loads(line)
            if isinstance(message, dict) and message.get("error"):
                raise DockerLabError(f"import of {repo}:{tag} failed: {message['error']}")


async def ensure_image(
    docker: aiodocker.Docker,
    repo: str,
    entries: Sequence[RootfsEntry],
    rootfs_dir: Path,
    plan_seconds: float = 0.0,
) -> ImageInfo:
    """The image ``repo:<hash16>`` for this root filesystem, built only if the engine lacks it
    (from the cached tarball if there is one). Also tags ``repo:latest`` and removes the
    repo's images and tarballs of other hashes."""
    t0 = time.monotonic()
    key = rootfs_key(entries)
    plan_seconds += time.monotonic() - t0
    tag = key[:16]
    ref = f"{repo}:{tag}"
    built = tar_cached = False
    tar_seconds = import_seconds = 0.0
    try:
        info = await docker.images.inspect(ref)
        if (info.get("Config") or {}).get("Labels", {}).get(HASH_LABEL) != key:
            raise DockerLabError(f"{ref} exists without the label {HASH_LABEL}={key}")
    except aiodocker.DockerError as exc:
        if exc.status != 404:
            raise
        tar = rootfs_dir / f"{repo}-{tag}.tar"
        t1 = time.monotonic()
        if tar.is_file():
            tar_cached = True
        else:
            await asyncio.to_thread(write_rootfs_tar, entries, tar)
        tar_seconds = time.monotonic() - t1
        t2 = time.monotonic()
        await _import_tar(docker, tar, repo, tag, {HASH_LABEL: key, LAB_LABEL: repo})
        import_seconds = time.monotonic() - t2
        built = True
        info = await docker.images.inspect(ref)
        for old in rootfs_dir.glob(f"{repo}-*.tar"):
            if old != tar:
                old.unlink(missing_ok=True)
    await docker.images.tag(ref, repo, tag="latest")
    for image in await docker.images.list(filters={"reference": [repo]}):
        tags = [t for t in image.get("RepoTags") or [] if t.startswith(repo + ":")]
        if image["Id"] != info["Id"] and tags:
            for stale in tags:
                with contextlib.suppress(aiodocker.DockerError):
                    await docker.images.delete(stale)
    return ImageInfo(
        repo=repo,
        tag=tag,
        id=info["Id"],
        size=int(info.get("Size", 0)),
        content_hash=key,
        built=built,
        tar_cached=tar_cached,
        plan_seconds=plan_seconds,
        tar_seconds=tar_seconds,
        import_seconds=import_seconds,
        seconds=time.monotonic() - t0 + plan_seconds,
    )


async def ensure_images(
    url: str, rootfs_dir: Path = DEFAULT_CACHE_DIR / "rootfs"
) -> dict[str, ImageInfo]:
    """``{"busybox": ..., "python": ...}``: pe-busybox and pe-python, built or reused."""
    images: dict[str, ImageInfo] = {}
    async with aiodocker.Docker(url=url) as docker:
        for key, repo, plan in (
            ("busybox", "pe-busybox", busybox_rootfs),
            ("python", "pe-python", python_rootfs),
        ):
            t0 = time.monotonic()
            entries = await asyncio.to_thread(plan)
            images[key] = await ensure_image(
                docker, repo, entries, rootfs_dir, plan_seconds=time.monotonic() - t0
            )
    return images


# --------------------------------------------------------------------------------------------
# the lab: networks and containers

API_SERVER_SCRIPT = r"""
import json, socket, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

http_port, blackhole_port, hang_port = (int(a) for a in sys.argv[1:4])

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path == "/health":
            code, body = 200, {"status": "ok", "service": socket.gethostname()}
        else:
            code, body = 404, {"error": "not found", "path": self.path}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass

# blackhole: an accept queue of one, filled by our own connection: SYNs to it are dropped,
# so a connect from elsewhere times out (no iptables needed)
blackhole = socket.socket()
blackhole.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
blackhole.bind(("0.0.0.0", blackhole_port))
blackhole.listen(0)
fillers = []
for _ in range(2):
    c = socket.socket()
    c.settimeout(0.5)
    try:
        c.connect(("127.0.0.1", blackhole_port))
    except OSError:
        pass
    fillers.append(c)

# hang: accepts and never answers (read timeout)
hang = socket.create_server(("0.0.0.0", hang_port))
held = []
def hold():
    while True:
        held.append(hang.accept()[0])
threading.Thread(target=hold, daemon=True).start()

server = ThreadingHTTPServer(("0.0.0.0", http_port), Handler)
open("/tmp/pe-api.ready", "w").close()
server.serve_forever()
"""
"""pe-api's main process: HTTP on 8000 (/health -> 200 JSON, else 404 JSON), a blackhole on
8002 (connect timeout), a silent listener on 8003 (read timeout). 8001 stays closed."""

SLEEP = ("sleep", "365d")


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    subnet: str
    gateway: str
    ip_range: str
    """Dynamic addresses come from here; the rest of the subnet is for fixed ones."""
    bridge: str
    """The Linux bridge's name (starts with BRIDGE_PREFIX, at most 15 characters)."""


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: Literal["busybox", "python"]
    network: str | None
    """None: network mode none."""
    ip: str | None = None
    command: tuple[str, ...] = SLEEP
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabSpec:
    networks: tuple[NetworkSpec, ...]
    containers: tuple[ContainerSpec, ...]
    dns: str = "127.0.0.1"
    """Every container's resolver (HostConfig.Dns): on a user network Docker's embedded DNS at
    127.0.0.11 answers the network's container names and forwards the rest here, i.e. to the
    container's own loopback, where nothing answers."""
    dns_options: tuple[str, ...] = ("timeout:1", "attempts:1")
    """resolv.conf options: a name nobody answers fails after 1 s (EAI_AGAIN) instead of 10."""
    api: str = "pe-api"
    api_port: int = 8000
    closed_port: int = 8001
    blackhole_port: int = 8002
    hang_port: int = 8003
    unreachable_ip: str = "10.202.0.250"
    """In pe-minikube's subnet, never assigned: ARP goes unanswered (EHOSTUNREACH after ~3 s)."""


DEFAULT_LAB = LabSpec(
    networks=(
        NetworkSpec(
            "pe-minikube", "10.202.0.0/24", "10.202.0.1", "10.202.0.128/25", "pedl-minikube"
        ),
        NetworkSpec("pe-default", "10.203.0.0/24", "10.203.0.1", "10.203.0.128/25", "pedl-default"),
    ),
    containers=(
        ContainerSpec(
            "pe-api",
            "python",
            "pe-minikube",
            "10.202.0.10",
            ("python3", "-u", "-c", API_SERVER_SCRIPT, "8000", "8002", "8003"),
            aliases=("api",),
        ),
        ContainerSpec("pe-scheduler", "python", "pe-minikube", "10.202.0.11"),
        ContainerSpec("pe-busybox", "busybox", "pe-minikube", "10.202.0.12"),
        ContainerSpec("pe-worker", "python", "pe-default", "10.203.0.10"),
        ContainerSpec("pe-none", "python", None),
    ),
)


@dataclass(frozen=True)
class LabContainer:
    name: str
    id: str
    image: str
    pid: int
    networks: Mapping[str, str]
    """Network name -> IPv4 address (empty for network mode none)."""
    dns: tuple[str, ...]


@dataclass(frozen=True)
class Lab:
    url: str
    spec: LabSpec
    containers: Mapping[str, LabContainer]
    setup_seconds: float
    images: Mapping[str, ImageInfo] = field(default_factory=dict)

    def ip(self, container: str, network: str | None = None) -> str:
        nets = self.containers[container].networks
        if network is None:
            if not nets:
                raise KeyError(f"{container} has no network")
            return next(iter(nets.values()))
        return nets[network]

    @property
    def api_ip(self) -> str:
        return self.ip(self.spec.api)


async def remove_lab(docker: aiodocker.Docker) -> int:
    """Remove every container and network carrying LAB_LABEL; returns how many things."""
    count = 0
    for container in await docker.containers.list(all=True, filters={"label": [LAB_LABEL]}):
        with contextlib.suppress(aiodocker.DockerError):
            await container.delete(force=True, v=True)
            count += 1
    for network in await docker.networks.list(filters={"label": [LAB_LABEL]}):
        with contextlib.suppress(aiodocker.DockerError):
            await (await docker.networks.get(network["Id"])).delete()
            count += 1
    return count


async def create_lab(
    url: str,
    images: Mapping[str, ImageInfo],
    spec: LabSpec = DEFAULT_LAB,
    ready_timeout: float = 20.0,
) -> Lab:
    """Create the lab's networks and containers (after removing any left from earlier runs),
    wait until pe-api serves, and describe what came up."""
    t0 = time.monotonic()
    containers: dict[str, LabContainer] = {}
    async with aiodocker.Docker(url=url) as docker:
        await remove_lab(docker)
        for net in spec.networks:
            await docker.networks.create({
                "Name": net.name,
                "Driver": "bridge",
                "CheckDuplicate": True,
                "Internal": True,
                "IPAM": {"Driver": "default", "Config": [
                    {"Subnet": net.subnet, "Gateway": net.gateway, "IPRange": net.ip_range}
                ]},
                "Options": {"com.docker.network.bridge.name": net.bridge},
                "Labels": {LAB_LABEL: "1"},
            })  # fmt: skip
        for c in spec.containers:
            image = images[c.image].ref
            host_config: dict[str, Any] = {
                "NetworkMode": c.network or "none",
                "Dns": [spec.dns],
                "DnsSearch": [],
                "DnsOptions": list(spec.dns_options),
                "Init": True,  # docker-init as PID 1: signals work, zombies are reaped
                "RestartPolicy": {"Name": "no"},
            }
            config: dict[str, Any] = {
                "Image": image,
                "Cmd": list(c.command),
                "Hostname": c.name,
                "Env": [f"PATH={SAFE_PATH}"],
                "Labels": {LAB_LABEL: "1"},
                "HostConfig": host_config,
            }
            if c.network is not None:
                endpoint: dict[str, Any] = {"Aliases": list(c.aliases)}
                if c.ip is not None:
                    endpoint["IPAMConfig"] = {"IPv4Address": c.ip}
                config["NetworkingConfig"] = {"EndpointsConfig": {c.network: endpoint}}
            container = await docker.containers.create(config, name=c.name)
            await container.start()
            data = await container.show()
            pid = int(data["State"]["Pid"])
            nets = {
                name: str(ep.get("IPAddress") or "")
                for name, ep in (data["NetworkSettings"].get("Networks") or {}).items()
                if name != "none"
            }
            containers[c.name] = LabContainer(
                name=c.name,
                id=data["Id"],
                image=image,
                pid=pid,
                networks=nets,
                dns=tuple(data["HostConfig"].get("Dns") or ()),
            )
        deadline = time.monotonic() + ready_timeout
        while True:
            result = await exec_run(docker, spec.api, ["test", "-e", "/tmp/pe-api.ready"])
            if result.exit_code == 0:
                break
            if time.monotonic() > deadline:
                logs = await docker.containers.container(spec.api).log(stdout=True, stderr=True)
                raise DockerLabError(f"{spec.api} did not come up: {''.join(logs)[-2000:]}")
            await asyncio.sleep(0.05)
    return Lab(
        url=url,
        spec=spec,
        containers=containers,
        images=dict(images),
        setup_seconds=time.monotonic() - t0,
    )


# --------------------------------------------------------------------------------------------
# exec


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes
    seconds: float
    """exec create + start + reading to the end + inspect."""

    @property
    def out(self) -> str:
        return self.stdout.decode(errors="replace")

    @property
    def err(self) -> str:
        return self.stderr.decode(errors="replace")


def _half_close(stream: Any) -> None:
    """Close the write side of an exec's hijacked connection, keep reading: the process sees
    EOF on stdin (what ``docker exec -i`` does with CloseWrite). aiodocker 0.27's
    ``Stream.close()`` writes EOF *and* closes the response, so its output would be lost; this
    reaches into ``Stream._resp`` (private) for the transport."""
    resp = stream._resp
    if resp is None or resp.connection is None or resp.connection.transport is None:
        raise DockerLabError("the exec stream is not open")
    transport = resp.connection.transport
    if transport.can_write_eof():
        transport.write_eof()


async def _exit_code(exec_: Any, timeout: float = 10.0) -> int:
    """The exit code from exec inspect; the exec may still show Running for a moment after its
    output ended."""
    deadline = time.monotonic() + timeout
    while True:
        info: dict[str, Any] = await exec_.inspect()
        if not info.get("Running") and info.get("ExitCode") is not None:
            return int(info["ExitCode"])
        if time.monotonic() > deadline:
            raise DockerLabError(f"exec {exec_.id} still running after its output ended")
        await asyncio.sleep(0.005)


async def exec_run(
    docker: aiodocker.Docker,
    container: str,
    cmd: Sequence[str],
    *,
    stdin: bytes | None = None,
    environment: Mapping[str, str] | None = None,
    timeout: float = 120.0,
) -> ExecResult:
    """Run ``cmd`` in ``container`` (name or id) like ``docker exec [-i]``: optional stdin (then
    EOF), stdout and stderr collected apart, the exit code from exec inspect."""
    t0 = time.monotonic()

    async def go() -> ExecResult:
        exec_ = await docker.containers.container(container).exec(
            list(cmd),
            stdin=stdin is not None,
            stdout=True,
            stderr=True,
            tty=False,
            environment=dict(environment) if environment else None,
        )
        out, err = bytearray(), bytearray()
        async with exec_.start(detach=False) as stream:
            if stdin is not None:
                if stdin:
                    await stream.write_in(stdin)
                _half_close(stream)
            while (msg := await stream.read_out()) is not None:
                (out if msg.stream == 1 else err).extend(msg.data)
        code = await _exit_code(exec_)
        return ExecResult(code, bytes(out), bytes(err), time.monotonic() - t0)

    return await asyncio.wait_for(go(), timeout)


class ExecSession:
    """One exec with stdin attached, for conversations: write, read stdout as it comes, close
    stdin, get the exit code. ::

        async with ExecSession(docker, "pe-scheduler", ["python3", "-u", "-c", code]) as s:
            await s.write(b"1\\n")
            line = await s.readline()        # before anything else is written
            s.close_stdin()                   # the process sees EOF
            code = await s.wait()             # drains the output, then exec inspect

    stderr is collected in ``self.stderr``; stdout not consumed by ``readline`` ends up in
    ``self.stdout_rest`` after ``wait``."""

    def __init__(
        self,
        docker: aiodocker.Docker,
        container: str,
        cmd: Sequence[str],
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self.docker = docker
        self.container = container
        self.cmd = list(cmd)
        self.environment = dict(environment) if environment else None
        self.stderr = bytearray()
        self.stdout_rest = bytearray()
        self._buffer = bytearray()
        self._eof = False
        self._exec: Any = None
        self._stream: Any = None

    async def __aenter__(self) -> ExecSession:
        self._exec = await self.docker.containers.container(self.container).exec(
            self.cmd,
            stdin=True,
            stdout=True,
            stderr=True,
            tty=False,
            environment=self.environment,
        )
        self._stream = self._exec.start(detach=False)
        await self._stream.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._stream is not None:
            await self._stream.close()

    async def write(self, data: bytes) -> None:
        await self._stream.write_in(data)

    def close_stdin(self) -> None:
        _half_close(self._stream)

    async def _pull(self) -> bool:
        """Read one message; False at the end of the output."""
        msg = await self._stream.read_out()
        if msg is None:
            self._eof = True
            return False
        if msg.stream == 2:
            self.stderr.extend(msg.data)
        else:
            self._buffer.extend(msg.data)
        return True

    async def readline(self) -> bytes:
        """The next stdout line (with its newline; what is left without one at the end)."""
        while b"\n" not in self._buffer and not self._eof:
            await self._pull()
        i = self._buffer.index(b"\n") + 1 if b"\n" in self._buffer else len(self._buffer)
        line = bytes(self._buffer[:i])
        del self._buffer[:i]
        return line

    async def wait(self) -> int:
        """Read the output to its end, then the exit code from exec inspect."""
        while not self._eof:
            await self._pull()
        self.stdout_rest.extend(self._buffer)
        self._buffer.clear()
        return await _exit_code(self._exec)


def errno_name(number: int) -> str:
    return errno.errorcode.get(number, str(number))
