"""The `netns` source: the agent, or a shell tool, inside a Linux network namespace.

It enters the namespace exactly as `ip netns exec NAME` does (that is the command it runs), so
the namespace's /etc/netns/NAME/resolv.conf, hosts and nsswitch.conf are bind-mounted over
/etc as they would be for a container there; a bare setns() would keep the machine's resolver.
One exec per source per run. A missing namespace, a missing `ip` or missing privileges make
the row a source-error with the reason, and the rest of the matrix runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import Process

from ..agent.facts import has_default_route, ipv4_routes, local_addresses, resolv_conf
from ..agent.proxy import proxy_environment
from ..agent.ship import agent_command, agent_payload
from ..model import CellRequest
from .base import Sink, Source, fail_batch
from .child import run_agent_process
from .process import child_environment
from .shell import ShellOutput, run_prober_process
from .shell_tools import shell_command

NETNS_RUN = Path("/run/netns")  # where `ip netns add` pins namespaces by name
NETNS_ETC = Path("/etc/netns")  # per-namespace files that `ip netns exec` bind-mounts on /etc
# A root shell without a login, or a virtual environment, may lack the sbin directories.
SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")
CAP_SYS_ADMIN = 21  # setns() into a network namespace and the mounts of `ip netns exec`
ENTERED_WITHIN = 2.0  # seconds for `ip` to switch namespace before the facts are read
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


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


async def facts_through(process: Process, name: str) -> dict[str, Any]:
    """The namespace's routes and addresses, read through /proc/PID/net of a process that
    `ip netns exec` has moved into it: no second exec. Empty if it never got there."""
    want = f"net:[{namespace_inode(name)}]"
    link = f"/proc/{process.pid}/ns/net"
    with anyio.move_on_after(ENTERED_WITHIN):
        while process.returncode is None:
            with contextlib.suppress(OSError):
                if os.readlink(link) == want:
                    break
            await anyio.sleep(0.002)
    # It may have exited (and its pid been reused) meanwhile: check again after reading.
    net = f"/proc/{process.pid}/net"
    routes_text = _read(f"{net}/route")
    fib_trie, if_inet6 = _read(f"{net}/fib_trie"), _read(f"{net}/if_inet6")
    try:
        entered = os.readlink(link) == want
    except OSError:
        entered = False
    if not entered:
        return {}
    routes = ipv4_routes(routes_text)
    return {
        "netns": want,
        "routes": routes,
        "default_route": has_default_route(routes),
        "addresses": local_addresses(fib_trie, if_inet6),
    }


class NetnsSource(Source):
    kind = "netns"

    def ip(self, env: Mapping[str, str]) -> str | None:
        return find_ip(env.get("PATH"))

    def command(self, ip: str, inner: Sequence[str]) -> list[str]:
        return [ip, "netns", "exec", self.spec.name, *inner]

    def environment(self) -> dict[str, str]:
        return child_environment(self.spec.env, self.spec.inherit_env)

    def base_facts(self) -> dict[str, Any]:
        return {"netns_name": self.spec.name, **resolver_files(self.spec.name)}

    async def run(self, batch: Sequence[CellRequest], sink: Sink) -> None:
        env = self.environment()
        ip = self.ip(env)
        problem = preflight(self.spec.name, ip)
        if problem is not None or ip is None:
            self.fail_row(sink, batch, problem or "`ip` not found", self.base_facts())
            return
        if self.spec.tool is None:
            await self._run_agent(ip, env, batch, sink)
        else:
            await self._run_tool(ip, env, batch, sink)

    async def _run_agent(
        self, ip: str, env: dict[str, str], batch: Sequence[CellRequest], sink: Sink
    ) -> None:
        facts = self.base_facts()
        said_hello = False

        def hello(seen: dict[str, Any]) -> None:
            nonlocal said_hello
            said_hello = True
            # The agent's own view (from inside) wins over what was read from outside.
            facts.update(seen)
            sink.row(self.row_info(facts=facts))

        outcome = await run_agent_process(
            self.command(ip, agent_command(self.spec.python or sys.executable)),
            env,
            agent_payload(self.agent_request(batch)),
            self.name,
            self.name,
            batch,
            sink,
            hello,
        )
        if outcome is None:
            return
        if said_hello:
            fail_batch(sink, self.name, self.name, batch, outcome)
        else:
            self.fail_row(sink, batch, explain_failure(self.spec.name, outcome), facts)

    async def _run_tool(
        self, ip: str, env: dict[str, str], batch: Sequence[CellRequest], sink: Sink
    ) -> None:
        tool = self.spec.tool
        # No Python inside to say hello: the namespace's routes and addresses are read through
        # the child once it is in there (facts_through), never from this process's namespace.
        facts: dict[str, Any] = {
            "hostname": socket.gethostname(),
            "proxy_env": proxy_environment(env),
            **self.base_facts(),
            "tool": tool,
            "tool_path": shutil.which(tool, path=env.get("PATH")),
        }
        if facts["tool_path"] is None:
            self.fail_row(sink, batch, f"{tool} is not installed here (not found on PATH)", facts)
            return

        async def started(process: Process) -> None:
            facts.update(await facts_through(process, self.spec.name))
            sink.row(self.row_info(facts=facts))

        output = ShellOutput(self.name, self.name, batch, sink, env)
        command = self.command(ip, shell_command(tool, self.settings.concurrency))
        reason = await run_prober_process(command, env, batch, output, on_started=started)
        if reason is None:
            return
        if output.answered:
            fail_batch(sink, self.name, self.name, batch, reason, output.answered)
        else:
            self.fail_row(sink, batch, explain_failure(self.spec.name, reason), facts)
