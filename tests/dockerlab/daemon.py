"""The private dockerd: in a network namespace of its own, its data-root in a cache folder,
started and stopped by pid, whatever a killed earlier run left cleaned up first."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import aiodocker
import aiohttp

from .host import (
    DEFAULT_CACHE_DIR,
    SAFE_PATH,
    DockerLabError,
    PrerequisiteError,
    cmdline,
    delete_netns,
    kill_netns_processes,
    kill_processes_mentioning,
    netns_path,
    netns_pids,
    pid_alive,
    run,
    run_sync,
    terminate,
    unmount_under,
    which,
)
from .images import python_layout

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


def missing_prerequisites(
    busybox: Path = Path("/bin/busybox"), python: Path = Path("/usr/bin/python3")
) -> list[str]:
    """What this machine lacks to run the lab, in words (empty when everything is there).

    Debian packages: docker.io (dockerd, containerd, runc, docker-init via tini), busybox-static,
    python3 (its standard library goes into pe-python), iproute2, util-linux, libc-bin."""
    problems: list[str] = []
    if os.geteuid() != 0:
        problems.append("not root (dockerd needs root)")
    problems += [f"no {name} binary" for name in REQUIRED_BINARIES if which(name) is None]
    if not busybox.is_file():
        problems.append(f"no {busybox} (Debian package busybox-static)")
    elif _is_dynamic(busybox):
        problems.append(f"{busybox} is dynamically linked: install busybox-static")
    try:
        python_layout(python)
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
    if isinstance(pid, int) and pid_alive(pid):
        cmd = cmdline(pid)
        if cmd and Path(cmd[0]).name == "dockerd" and str(config.data_root) in cmd:
            how = terminate(pid, config.stop_timeout)
            actions.append(f"stopped leftover dockerd {pid} ({how})")
    if run_dir is not None:
        killed = kill_processes_mentioning(run_dir)
        if killed:
            actions.append(f"killed leftover containerd/shims {killed}")
    netns = str(state.get("netns") or config.netns)
    killed = kill_netns_processes(netns)
    if killed:
        actions.append(f"killed processes left in netns {netns}: {killed}")
    roots = [config.data_root] + ([run_dir] if run_dir is not None else [])
    unmounted = unmount_under(roots)
    if unmounted:
        actions.append(f"unmounted {len(unmounted)} leftover mounts")
    if delete_netns(netns):
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
        dockerd = which("dockerd")
        if dockerd is None:
            raise PrerequisiteError("no dockerd binary (Debian package docker.io)")
        nsenter = which("nsenter") or "nsenter"
        return [
            nsenter, f"--net={netns_path(self.config.netns)}",  # execs dockerd: same pid
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
            if netns_pids(netns):
                raise DockerLabError(
                    f"network namespace {netns} is in use by processes {netns_pids(netns)}: "
                    "another lab engine? (DaemonConfig.netns picks another name)"
                )
            delete_netns(netns)
            run(["ip", "netns", "add", netns])
            self._owns_netns = True
            run(["ip", "-n", netns, "link", "set", "lo", "up"])
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

                terminate(self.pid, self.config.stop_timeout, reap)
                if proc is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=5)
            if self.run_dir is not None:
                kill_processes_mentioning(self.run_dir)
                unmount_under([self.run_dir, self.config.data_root])
            if self._owns_netns:  # docker0 and the lab's bridges go with it
                kill_netns_processes(self.config.netns)
                delete_netns(self.config.netns)
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
