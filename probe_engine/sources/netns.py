"""The `netns` source: the agent, or a shell tool, inside a Linux network namespace.

It enters the namespace exactly as `ip netns exec NAME` does (that is the command it runs), so
the namespace's /etc/netns/NAME/resolv.conf, hosts and nsswitch.conf are bind-mounted over
/etc as they would be for a container there; a bare setns() would keep the machine's resolver.
One exec per source per run. A missing namespace, a missing `ip` or missing privileges make
the row a source-error with the reason, and the rest of the matrix runs.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from ..agent.facts import resolv_conf
from ..agent.proxy import proxy_environment
from ..model import CellRequest
from .base import Sink, Source
from .child import ChildChannel
from .process import child_environment
from .remote import Place, RemoteRow

NETNS_RUN = Path("/run/netns")  # where `ip netns add` pins namespaces by name
NETNS_ETC = Path("/etc/netns")  # per-namespace files that `ip netns exec` bind-mounts on /etc
# A root shell without a login, or a virtual environment, may lack the sbin directories.
SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")
CAP_SYS_ADMIN = 21  # setns() into a network namespace and the mounts of `ip netns exec`
# What `ip netns exec` says when it cannot enter, and what that means to a user.
IP_FAILURES = (
    ("Cannot open network namespace", "the namespace does not exist (any more)"),
    ("Operation not permitted", "entering a network namespace needs root (CAP_SYS_ADMIN)"),
    ("Permission denied", "entering a network namespace needs root (CAP_SYS_ADMIN)"),
)


def find_ip(path: str | None = None) -> str | None:
    """iproute2's `ip`, looked up on PATH and in the sbin directories."""
    search = os.pathsep.join([path if path is not None else os.environ.get("PATH", ""), *SBIN])
    return shutil.which("ip", path=search)


def effective_capabilities(status_text: str) -> int | None:
    """The CapEff mask from /proc/self/status text, or None if it is not there."""
    for line in status_text.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split(":", 1)[1].strip(), 16)
    return None


def can_enter_namespaces() -> bool:
    """Whether this process holds CAP_SYS_ADMIN (root normally does; a container may not)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return os.geteuid() == 0
    mask = effective_capabilities(status)
    return os.geteuid() == 0 if mask is None else bool(mask >> CAP_SYS_ADMIN & 1)


def namespace_inode(name: str) -> int | None:
    """Inode of the named namespace: `net:[INODE]` is how a process inside sees it."""
    try:
        return (NETNS_RUN / name).stat().st_ino
    except OSError:
        return None


def existing_namespaces() -> list[str]:
    try:
        return sorted(entry.name for entry in NETNS_RUN.iterdir())
    except OSError:
        return []


def preflight(name: str, ip: str | None) -> str | None:
    """Why probes cannot run in namespace `name` from here, or None when they can."""
    if not sys.platform.startswith("linux"):
        return f"network namespaces exist on Linux only (this is {sys.platform})"
    if ip is None:
        return (
            "iproute2's `ip` command was not found (searched PATH and "
            f"{', '.join(SBIN)}); it enters the namespace"
        )
    if namespace_inode(name) is None:
        present = existing_namespaces()
        listing = ", ".join(present[:12]) + (", ..." if len(present) > 12 else "")
        known = f"present: {listing}" if present else "no named network namespace exists"
        return f"network namespace {name!r} does not exist (no {NETNS_RUN / name}; {known})"
    if not can_enter_namespaces():
        uid = os.geteuid()
        who = (
            "root without that capability (a container without --privileged?)"
            if uid == 0
            else f"uid {uid}"
        )
        return (
            f"entering network namespace {name!r} needs root (CAP_SYS_ADMIN); "
            f"probe-engine runs as {who}"
        )
    return None


def explain_failure(name: str, reason: str) -> str:
    """A failed `ip netns exec` in a user's words, the tool's own message kept as evidence."""
    for needle, meaning in IP_FAILURES:
        if needle in reason:
            return f"cannot enter network namespace {name!r}: {meaning} ({reason})"
    return f"in network namespace {name!r}: {reason}"


def resolver_files(name: str) -> dict[str, Any]:
    """resolv.conf as `ip netns exec` shows it inside: /etc/netns/NAME's copy if there is one."""
    own = NETNS_ETC / name / "resolv.conf"
    path = own if own.is_file() else Path("/etc/resolv.conf")
    try:
        text: str | None = path.read_text()
    except OSError:
        text = None
    return {"resolv_conf": resolv_conf(text), "resolv_conf_path": str(path)}


class NetnsChannel(ChildChannel):
    """`ip netns exec NAME COMMAND`: a child of this process inside the named namespace, with
    the namespace's /etc/netns/NAME files mounted over /etc. `ip` execs the command, so the
    child is the program itself (its pid, its exit status)."""

    def __init__(
        self, ip: str, name: str, command: Sequence[str], env: Mapping[str, str] | None = None
    ) -> None:
        super().__init__([ip, "netns", "exec", name, *command], env)
        self.name = name

    def explain(self, reason: str) -> str:
        return explain_failure(self.name, reason)


class NetnsSource(Source):
    kind = "netns"

    def base_facts(self) -> dict[str, Any]:
        return {"netns_name": self.spec.name, **resolver_files(self.spec.name)}

    async def run(self, batch: Sequence[CellRequest], sink: Sink) -> None:
        spec = self.spec
        env = child_environment(spec.env, spec.inherit_env)
        ip = find_ip(env.get("PATH"))
        facts = self.base_facts()
        problem = preflight(spec.name, ip)
        if problem is not None or ip is None:
            self.fail_row(sink, batch, problem or "`ip` not found", facts)
            return
        if spec.tool is not None:
            # No Python inside to say hello: the prober's preamble reads the namespace's
            # routes and addresses from inside; this process adds what it sees from outside.
            facts.update(
                hostname=socket.gethostname(),
                proxy_env=proxy_environment(env),
                tool=spec.tool,
                tool_path=shutil.which(spec.tool, path=env.get("PATH")),
            )
            if facts["tool_path"] is None:
                message = f"{spec.tool} is not installed here (not found on PATH)"
                self.fail_row(sink, batch, message, facts)
                return

        place = Place(partial(NetnsChannel, ip, spec.name, env=env), facts, env)
        await RemoteRow(self, self.name, batch, sink, place).run()
