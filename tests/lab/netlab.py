"""The network-namespace lab: the Airflow-beside-Minikube story in miniature, on real kernels.

Usable three ways:
  CLI      python -m tests.lab.netlab up|down|status|env [--prefix pe]   (from the repo root)
  Python   lab = Lab.up(prefix="pe"); ...; lab.down()     or     with Lab.up() as lab: ...
  pytest   the session fixture `netlab` in tests/lab/fixtures.py (a plugin of tests/conftest.py)

Topology (namespace names are `<prefix>-<role>`; interface names live inside namespaces, so two
labs with different prefixes can be up at once with the same addresses)::

                       pe-node  (ip_forward=1, iptables DNAT/DROP/REJECT)
     pe-sched ---eth0--veth-sched--+
     10.231.49.10                  |  bridge "minikube" 10.231.49.2/24  (= Minikube's 192.168.49.2)
     pe-dns   ---eth0--veth-dns----+
     10.231.49.53 (dnsmasq)
     pe-worker --eth0--veth-worker 10.231.50.1/24   (another docker network: NOT on the bridge)
     10.231.50.10
     pe-pod    --eth0--veth-pod    10.244.0.1/24
     10.244.0.5:8000 (podserver.py)

Routes, deliberately minimal; no namespace has a default route, so nothing can leave the lab:
  sched   10.231.49.0/24 (link), 10.96.0.0/12 via the node (the service CIDR: ClusterIP works)
  worker  10.231.50.0/24 (link) only: the node IP, the ClusterIP and the DNS server are all
          outside every route it has, so connect() and sendto() fail at once with ENETUNREACH
  pod     10.244.0.0/24 (link), 10.231.49.0/24 via the node (to answer bridge clients)
  dns     10.231.49.0/24 (link), 10.244.0.0/24 via the node (to answer the pod)
  node    its three links, and 10.96.0.0/12 dev veth-pod, which only exists so that the node's
          own connect() to a ClusterIP finds a route before the OUTPUT DNAT rewrites it
  root    while the lab is up: `unreachable` routes for 10.231.48.0/20, 10.244.0.0/16 and
          10.96.0.0/12 (metric derived from the prefix), so a probe mistakenly run from the root
          namespace fails locally instead of following the default route off the machine

Targets on the node IP (10.231.49.2):
  30080 NodePort: DNAT to 10.244.0.5:8000        (PREROUTING, and OUTPUT for the node itself)
  30081 DROP                          -> no answer: ETIMEDOUT from the kernel, or the deadline
  30082 REJECT icmp-host-unreachable  -> EHOSTUNREACH (113)
  30083 REJECT tcp-reset              -> ECONNREFUSED (111)
  30084 nothing listens               -> ECONNREFUSED (111)
  30085 REJECT icmp-admin-prohibited  -> EHOSTUNREACH (113)
  udp 30090 DNAT to the pod's UDP echo 10.244.0.5:9053 -> the datagram comes back
  udp 30091 nothing listens           -> the kernel's own ICMP port unreachable: ECONNREFUSED
  udp 30092 REJECT icmp-port-unreachable -> ECONNREFUSED (type 3 code 3)
  udp 30093 DROP                      -> silence: open or filtered
  udp 30094 REJECT icmp-admin-prohibited -> EHOSTUNREACH (type 3 code 13)
Ping: the pod pings with an ICMP datagram socket (ping_group_range "0 2147483647", as in a
container), the other namespaces with a raw socket (root). The node IP answers; 10.231.49.81 / .82 / .85 (more addresses of the bridge) DROP,
REJECT icmp-host-unreachable and REJECT icmp-admin-prohibited echo requests; the ClusterIP
never answers (only its tcp port is forwarded, as kube-proxy in iptables mode does).
The scheduler has a second address, 10.231.49.11 (a chosen source); 10.231.49.99 is nobody's.
ClusterIP 10.104.33.17:80: DNAT to 10.244.0.5:8000. Route-less address: 10.231.63.254 (101).
Hairpin (pod -> its own NodePort) is MASQUERADEd as kube-proxy does, so it works.
DNS: dnsmasq on 10.231.49.53 answers health-predict-api-service.default.svc.cluster.local with
the ClusterIP, v6-only.default.svc.cluster.local with fd00:10:244::5 (no lab namespace has IPv6
beyond loopback), and NXDOMAIN for every other name (--local=/#/: it never forwards anything).

Measured on the project VM (Debian 12, kernel 6.18, 2 cores); test_netlab.py asserts them:
  up 0.10-0.19 s (idle or at load 3.6 on 2 cores; the CLI command ~0.2 s more), down 0.02-0.05 s
  sched -> NodePort, ClusterIP, service FQDN, short name (search list): ok, HTTP /health 200
  sched -> DROP: blocking connect 110 ETIMEDOUT after 3.05 s (tcp_syn_retries=1: SYN at 0 s,
           one retransmission at 1 s, give up at 3 s); settimeout(1): connect_ex 11 EAGAIN at 1.0 s
  sched -> REJECT (host-unreachable or admin-prohibited): 113. With a deadline (non-blocking
           connect, as asyncio does) within 1 ms; a blocking connect() only after ~1.02 s, the
           first SYN retransmission (the first ICMP arrives while connect() holds the socket
           and is kept as a "soft" error). The node sets icmp_ratelimit=0: by default the kernel
           sends at most ~1 ICMP error per second per peer, and a burst of probes then gets
           113 or a timeout depending on order.
  sched -> tcp-reset 111, closed 111, route-less 101, pod IP 101 (pod CIDR not routed): < 1 ms
  sched -> unknown names: EAI_NONAME (-2) "Name or service not known" (NXDOMAIN for each
           search suffix and for the name itself), ~2 ms
  worker -> NodePort 101, ClusterIP 101 (ENETUNREACH, no packet sent); its gateway 10.231.50.1
           :30080 -> 111 (the NodePort DNAT matches the bridge IP only)
  worker -> any name: EAI_AGAIN (-3) "Temporary failure in name resolution" in ~1 ms: glibc's
           sendto() to the unroutable nameserver fails with ENETUNREACH, so nothing is sent and
           no resolver timeout is waited; `localhost` still resolves from the lab's hosts file
  node -> NodePort, ClusterIP, pod IP ok; pod -> 127.0.0.1:8000 ok, pod -> NodePort ok

Why a per-namespace nsswitch.conf: this machine's says `hosts: files mdns4_minimal
[NOTFOUND=return] dns`, and mdns4_minimal claims every `*.local` name, `cluster.local`
included. The lab pins `hosts: files dns` so lookups in the lab depend on the lab's DNS only.
Files in /etc/netns/NS/ apply under `ip netns exec` only (it bind-mounts them), not to a bare
setns(), which is why every probe here goes through `ip netns exec`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

STATE_ROOT = Path("/run/probe-engine-netlab")
NETNS_RUN = Path("/run/netns")
NETNS_ETC = Path("/etc/netns")
ROLES = ("node", "pod", "sched", "worker", "dns")
PODSERVER = Path(__file__).with_name("podserver.py")
# sbin directories are searched too: a non-login root shell or a venv may not have them on PATH.
EXTRA_PATH = ("/usr/local/sbin", "/usr/sbin", "/sbin")
REQUIRED_TOOLS = ("ip", "iptables", "iptables-restore", "dnsmasq", "sysctl")
READY_TIMEOUT = 5.0
TERM_GRACE = 1.0
KILL_GRACE = 2.0
PREFIX_RE = re.compile(r"^[a-z][a-z0-9-]{0,23}$")
LAB_NETNS_RE = re.compile(r"^(?P<prefix>[a-z][a-z0-9-]*)-(?P<role>node|pod|sched|worker|dns)$")


class LabError(RuntimeError):
    """The lab could not be built or torn down (a fault of the lab, not a probe result)."""


# --------------------------------------------------------------------------- tools and commands


def tool(name: str) -> str | None:
    """Absolute path of a command, also looking in the sbin directories."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *EXTRA_PATH])
    return shutil.which(name, path=search)


def _need(name: str) -> str:
    path = tool(name)
    if path is None:
        raise LabError(f"{name} not found (searched PATH and {', '.join(EXTRA_PATH)})")
    return path


def missing_prerequisites() -> list[str]:
    """Human-readable reasons the lab cannot run here; empty when it can."""
    problems: list[str] = []
    if not sys.platform.startswith("linux"):
        problems.append(f"Linux network namespaces are needed, this is {sys.platform}")
    elif os.geteuid() != 0:
        problems.append("not root: network namespaces, veths and iptables need root")
    problems += [f"`{name}` not found" for name in REQUIRED_TOOLS if tool(name) is None]
    return problems


def _run(
    argv: Sequence[str], *, stdin: str | None = None, check: bool = True, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run a command (argument list, never a shell); raise LabError with its stderr on failure."""
    proc = subprocess.run(
        list(argv), input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise LabError(f"`{' '.join(argv)}` exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


def _run_all(jobs: Sequence[tuple[Sequence[str], str | None]]) -> None:
    """Run independent commands concurrently: each `ip netns exec` costs a few ms of setup."""
    procs = [
        (
            argv,
            subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
            stdin,
        )
        for argv, stdin in jobs
    ]
    errors = []
    for argv, proc, stdin in procs:
        _, err = proc.communicate(stdin, timeout=30)
        if proc.returncode != 0:
            errors.append(f"`{' '.join(argv)}` exited {proc.returncode}: {err.strip()}")
    if errors:
        raise LabError("; ".join(errors))


def _ip_batch(lines: Iterable[str], netns: str | None = None, *, force: bool = False) -> None:
    """One `ip -batch` per namespace instead of one process per command (keeps up fast)."""
    argv = [_need("ip")]
    if netns is not None:
        argv += ["-n", netns]
    if force:
        argv.append("-force")  # carry on past errors (tear-down of half-built labs)
    _run([*argv, "-batch", "-"], stdin="\n".join(lines) + "\n", check=not force)


def in_netns(netns: str, argv: Sequence[str]) -> list[str]:
    """argv wrapped in `ip netns exec`, so /etc/netns/NS/* apply as in a container."""
    return [_need("ip"), "netns", "exec", netns, *argv]


# --------------------------------------------------------------------------- names per prefix


def namespace_names(prefix: str) -> dict[str, str]:
    """role -> namespace name, for every role of a lab."""
    return {role: f"{prefix}-{role}" for role in ROLES}


def state_dir(prefix: str) -> Path:
    return STATE_ROOT / prefix


def guard_metric(prefix: str) -> int:
    """Metric of this lab's root guard routes: distinct per prefix, so parallel labs coexist
    and each tear-down removes only its own routes."""
    return 40000 + zlib.crc32(prefix.encode()) % 20000


def _check_prefix(prefix: str) -> None:
    # The prefix ends up in paths under /etc and /run: keep it to a safe, short alphabet.
    if not PREFIX_RE.match(prefix):
        raise LabError(f"bad prefix {prefix!r}: want {PREFIX_RE.pattern}")


# --------------------------------------------------------------------------- processes


def _proc_starttime(pid: int) -> int | None:
    """Start time in clock ticks (field 22 of /proc/PID/stat): with the pid, an identity that
    survives pid reuse, so a stale state file never makes us kill a stranger."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def process_alive(pid: int) -> bool:
    """True while pid runs; reaps it first if it is our child (else it lingers as a zombie)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _signal_all(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _wait_gone(pids: set[int], seconds: float) -> set[int]:
    """Poll until the processes are gone; return the ones still alive at the deadline."""
    deadline = time.monotonic() + seconds
    alive = {pid for pid in pids if process_alive(pid)}
    while alive and time.monotonic() < deadline:
        time.sleep(0.005)
        alive = {pid for pid in alive if process_alive(pid)}
    return alive


def _terminate(pids: set[int]) -> set[int]:
    """SIGTERM, then SIGKILL what is left; return pids that survived both (stuck in D state)."""
    _signal_all(pids, signal.SIGTERM)
    left = _wait_gone(pids, TERM_GRACE)
    _signal_all(left, signal.SIGKILL)
    return _wait_gone(left, KILL_GRACE)


def _netns_id(path: Path) -> tuple[int, int] | None:
    """(device, inode) of a network namespace file: how `ip netns pids` compares them."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def pids_in_netns(names: Iterable[str]) -> dict[int, str]:
    """pid -> namespace name for every process living in one of the named namespaces.
    Same scan as `ip netns pids`, done once for all namespaces instead of one exec each."""
    wanted: dict[tuple[int, int], str] = {}
    for name in names:
        ident = _netns_id(NETNS_RUN / name)
        if ident is not None:
            wanted[ident] = name
    found: dict[int, str] = {}
    if not wanted:
        return found
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        ident = _netns_id(entry / "ns" / "net")
        if ident in wanted:
            found[int(entry.name)] = wanted[ident]
    return found


def _read_state(prefix: str) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((state_dir(prefix) / "state.json").read_text())
    except (OSError, ValueError):
        return {}
    return data


def _state_pids(prefix: str) -> set[int]:
    """Pids recorded at `up` that still are the same processes (start time matches)."""
    recorded = _read_state(prefix).get("processes", {})
    return {
        int(entry["pid"])
        for entry in recorded.values()
        if _proc_starttime(int(entry["pid"])) == entry.get("starttime")
    }


# --------------------------------------------------------------------------- root guard routes


def guard_routes_present(prefix: str) -> list[str]:
    """Destinations of this lab's `unreachable` routes in the root namespace."""
    out = _run([_need("ip"), "-j", "route", "show", "type", "unreachable"]).stdout
    metric = guard_metric(prefix)
    return [r["dst"] for r in json.loads(out or "[]") if r.get("metric") == metric]


def _remove_guard_routes(prefix: str) -> list[str]:
    dsts = guard_routes_present(prefix)
    metric = guard_metric(prefix)
    if dsts:
        _ip_batch([f"route del unreachable {dst} metric {metric}" for dst in dsts], force=True)
    return dsts


# --------------------------------------------------------------------------- tear-down


def existing_namespaces(prefix: str) -> list[str]:
    return [name for name in namespace_names(prefix).values() if (NETNS_RUN / name).exists()]


def teardown(prefix: str) -> list[str]:
    """Remove every trace of lab `prefix`: processes, namespaces (their veths, bridge and
    iptables rules die with them), /etc/netns dirs, root guard routes, state. Idempotent, and
    works from names alone, so it also cleans a lab whose creator was killed."""
    _check_prefix(prefix)
    removed: list[str] = []
    names = list(namespace_names(prefix).values())
    # Kill first: a namespace stays alive while any process holds it.
    pids = set(pids_in_netns(names)) | _state_pids(prefix)
    stuck = _terminate(pids)
    removed += [f"process {pid}" for pid in sorted(pids - stuck)]
    present = existing_namespaces(prefix)
    if present:
        _ip_batch([f"netns del {name}" for name in present], force=True)
        removed += [f"netns {name}" for name in present]
    for name in names:
        if (NETNS_ETC / name).exists():
            shutil.rmtree(NETNS_ETC / name, ignore_errors=True)
            removed.append(f"{NETNS_ETC / name}")
    removed += [f"root route unreachable {dst}" for dst in _remove_guard_routes(prefix)]
    if state_dir(prefix).exists():
        shutil.rmtree(state_dir(prefix), ignore_errors=True)
        removed.append(str(state_dir(prefix)))
    if stuck:
        raise LabError(f"processes {sorted(stuck)} survived SIGKILL; namespaces unmounted")
    return removed


# --------------------------------------------------------------------------- readiness


def _hex_endpoint(ip: str, port: int) -> str:
    """An IPv4 endpoint as /proc/net/{tcp,udp} prints it (address in host byte order)."""
    octets = [int(part) for part in ip.split(".")]
    return "".join(f"{b:02X}" for b in reversed(octets)) + f":{port:04X}"


def _has_socket(table: Path, endpoint: str, state: str) -> bool:
    try:
        lines = table.read_text().splitlines()[1:]
    except OSError:
        return False
    return any(
        fields[1] == endpoint and fields[3] == state for fields in (ln.split() for ln in lines)
    )


def _wait_listening(
    proc: subprocess.Popen[bytes], netns: str, proto: str, endpoint: str, log: Path
) -> None:
    """Wait until proc has its socket bound inside netns, reading /proc/PID/net/* (no packet,
    no exec). The namespace check matters: before `ip netns exec` has switched namespaces the
    same file shows the root namespace's sockets."""
    want = _netns_id(NETNS_RUN / netns)
    state = "0A" if proto == "tcp" else "07"  # TCP_LISTEN; UDP shows TCP_CLOSE when bound
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise LabError(f"{proc.args!r} exited {proc.returncode}: {_tail(log)}")
        if _netns_id(Path(f"/proc/{proc.pid}/ns/net")) == want and _has_socket(
            Path(f"/proc/{proc.pid}/net/{proto}"), endpoint, state
        ):
            return
        if time.monotonic() > deadline:
            raise LabError(f"{proc.args!r} not listening after {READY_TIMEOUT} s: {_tail(log)}")
        time.sleep(0.003)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------- probes


# Probe snippets run by the lab's own Python inside a namespace; arguments come via sys.argv so
# nothing is pasted into code. They print one JSON object.
_CONNECT_CODE = """
import errno, json, socket, sys, time
host, port, timeout = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
if timeout != "none":
    s.settimeout(float(timeout))
t = time.monotonic()
code = s.connect_ex((host, port))
seconds = time.monotonic() - t
s.close()
print(json.dumps({"errno": code, "seconds": seconds,
                  "name": "OK" if code == 0 else errno.errorcode.get(code, "?")}))
"""

_RESOLVE_CODE = """
import json, socket, sys, time
names = {getattr(socket, n): n for n in dir(socket) if n.startswith("EAI_")}
t = time.monotonic()
try:
    infos = socket.getaddrinfo(sys.argv[1], None, socket.AF_UNSPEC, socket.SOCK_STREAM)
    out = {"addresses": sorted({i[4][0] for i in infos}), "error": None}
except socket.gaierror as exc:
    out = {"addresses": [], "error": exc.args[0], "error_name": names.get(exc.args[0], "?"),
           "message": exc.args[1] if len(exc.args) > 1 else str(exc)}
out["seconds"] = time.monotonic() - t
print(json.dumps(out))
"""

_HTTP_CODE = """
import http.client, json, sys
conn = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=float(sys.argv[4]))
conn.request("GET", sys.argv[3])
resp = conn.getresponse()
print(json.dumps({"status": resp.status, "body": resp.read().decode("utf-8", "replace")}))
"""


@dataclass(frozen=True)
class ConnectResult:
    """One TCP connect from a namespace: errno 0 means connected."""

    errno: int
    name: str
    seconds: float


@dataclass(frozen=True)
class ResolveResult:
    """One getaddrinfo from a namespace: error is None on success, else the EAI_* code."""

    addresses: tuple[str, ...]
    error: int | None
    error_name: str | None
    message: str | None
    seconds: float


@dataclass(frozen=True)
class HttpResult:
    status: int
    body: str


# --------------------------------------------------------------------------- the lab


@dataclass
class Lab:
    """One lab. Every name, address and port is an attribute so tests never hard-code them.

    Addresses are the same for every prefix: the namespaces keep labs apart."""

    prefix: str = "pe"
    guard_routes: bool = True
    # The "minikube" docker network, a bridge inside the node namespace.
    bridge_name: str = "minikube"
    bridge_subnet: str = "10.231.49.0/24"
    node_ip: str = "10.231.49.2"
    scheduler_ip: str = "10.231.49.10"
    dns_ip: str = "10.231.49.53"
    # The worker's own network: a link to the node, but not the bridge.
    worker_subnet: str = "10.231.50.0/24"
    worker_gateway_ip: str = "10.231.50.1"
    worker_ip: str = "10.231.50.10"
    # The pod network behind the node.
    pod_subnet: str = "10.244.0.0/24"
    pod_gateway_ip: str = "10.244.0.1"
    pod_ip: str = "10.244.0.5"
    pod_port: int = 8000
    pod_name: str = "health-predict-api-7c9d8b6f5-lab01"
    # The Service.
    service_cidr: str = "10.96.0.0/12"
    cluster_ip: str = "10.104.33.17"
    service_port: int = 80
    node_port: int = 30080
    service_name: str = "health-predict-api-service"
    service_namespace: str = "default"
    cluster_domain: str = "cluster.local"
    unknown_name: str = "no-such-service.default.svc.cluster.local"
    # A name with an IPv6 address only, in a lab whose namespaces have no IPv6 but loopback.
    ipv6_only_name: str = "v6-only.default.svc.cluster.local"
    ipv6_only_ip: str = "fd00:10:244::5"
    # Failure targets on the node IP, and an address no lab namespace routes.
    drop_port: int = 30081
    reject_port: int = 30082
    reset_port: int = 30083
    closed_port: int = 30084
    prohibit_port: int = 30085
    unrouted_ip: str = "10.231.63.254"
    # Ping targets: more addresses of the node's bridge, whose echo requests the node drops or
    # rejects (their other traffic is the node's own). The node IP itself answers ping; the
    # ClusterIP does not (only its tcp port is forwarded, as kube-proxy does).
    ping_drop_ip: str = "10.231.49.81"
    ping_reject_ip: str = "10.231.49.82"
    ping_prohibit_ip: str = "10.231.49.85"
    # UDP on the node IP: an echo service (DNAT to the pod's UDP echo), a port nothing listens
    # on (the kernel's own port unreachable), REJECT with port unreachable, DROP (open or
    # filtered), REJECT with admin-prohibited.
    pod_udp_port: int = 9053
    udp_echo_port: int = 30090
    udp_closed_port: int = 30091
    udp_reject_port: int = 30092
    udp_drop_port: int = 30093
    udp_prohibit_port: int = 30094
    # A second address of the scheduler (a chosen source address), and one no namespace has.
    scheduler_second_ip: str = "10.231.49.11"
    absent_source_ip: str = "10.231.49.99"
    # Root-namespace `unreachable` routes covering every lab address (see module docstring).
    guard_cidrs: tuple[str, ...] = ("10.231.48.0/20", "10.244.0.0/16", "10.96.0.0/12")
    # Filled by up().
    http_pid: int | None = None
    dns_pid: int | None = None
    up_seconds: float | None = None
    down_seconds: float | None = None
    _children: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)

    # ----------------------------------------------------------------- derived names

    @property
    def node_ns(self) -> str:
        return f"{self.prefix}-node"

    @property
    def pod_ns(self) -> str:
        return f"{self.prefix}-pod"

    @property
    def scheduler_ns(self) -> str:
        return f"{self.prefix}-sched"

    @property
    def worker_ns(self) -> str:
        return f"{self.prefix}-worker"

    @property
    def dns_ns(self) -> str:
        return f"{self.prefix}-dns"

    @property
    def namespaces(self) -> tuple[str, ...]:
        return tuple(namespace_names(self.prefix).values())

    @property
    def probing_namespaces(self) -> tuple[str, ...]:
        """Namespaces tests probe from (they get tcp_syn_retries=1)."""
        return (self.scheduler_ns, self.worker_ns, self.node_ns, self.pod_ns)

    @property
    def service_fqdn(self) -> str:
        return f"{self.service_name}.{self.service_namespace}.svc.{self.cluster_domain}"

    @property
    def search_domains(self) -> tuple[str, ...]:
        svc = f"svc.{self.cluster_domain}"
        return (f"{self.service_namespace}.{svc}", svc, self.cluster_domain)

    @property
    def nodeport_url(self) -> str:
        return f"http://{self.node_ip}:{self.node_port}/health"

    @property
    def clusterip_url(self) -> str:
        return f"http://{self.cluster_ip}:{self.service_port}/health"

    @property
    def service_url(self) -> str:
        return f"http://{self.service_fqdn}:{self.service_port}/health"

    @property
    def state_dir(self) -> Path:
        return state_dir(self.prefix)

    def describe(self) -> dict[str, Any]:
        """Every public attribute and derived name, for the CLI and for reports."""
        plain = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        derived = (
            "node_ns",
            "pod_ns",
            "scheduler_ns",
            "worker_ns",
            "dns_ns",
            "service_fqdn",
            "search_domains",
            "nodeport_url",
            "clusterip_url",
            "service_url",
        )
        return {**plain, **{name: getattr(self, name) for name in derived}}

    def matrix_environ(self) -> dict[str, str]:
        """The ${NETLAB_*} variables of configs/lab.yaml for this lab. The file's defaults are
        the default lab's (prefix "pe"), so this is only needed for another prefix:
        `eval "$(python -m tests.lab.netlab env --prefix X)"` exports the same."""
        return {
            "NETLAB_SCHEDULER_NS": self.scheduler_ns,
            "NETLAB_WORKER_NS": self.worker_ns,
            "NETLAB_NODE_NS": self.node_ns,
            "NETLAB_POD_NS": self.pod_ns,
            "NETLAB_NODE_IP": self.node_ip,
            "NETLAB_NODE_PORT": str(self.node_port),
            "NETLAB_CLUSTER_IP": self.cluster_ip,
            "NETLAB_SERVICE_PORT": str(self.service_port),
            "NETLAB_POD_IP": self.pod_ip,
            "NETLAB_POD_PORT": str(self.pod_port),
            "NETLAB_SERVICE_NAME": self.service_name,
            "NETLAB_SERVICE_FQDN": self.service_fqdn,
            "NETLAB_UNKNOWN_NAME": self.unknown_name,
            "NETLAB_DROP_PORT": str(self.drop_port),
            "NETLAB_REJECT_PORT": str(self.reject_port),
            "NETLAB_PROHIBIT_PORT": str(self.prohibit_port),
            "NETLAB_RESET_PORT": str(self.reset_port),
            "NETLAB_CLOSED_PORT": str(self.closed_port),
            "NETLAB_UNROUTED_IP": self.unrouted_ip,
            "NETLAB_PING_DROP_IP": self.ping_drop_ip,
            "NETLAB_PING_REJECT_IP": self.ping_reject_ip,
            "NETLAB_PING_PROHIBIT_IP": self.ping_prohibit_ip,
            "NETLAB_UDP_ECHO_PORT": str(self.udp_echo_port),
            "NETLAB_UDP_CLOSED_PORT": str(self.udp_closed_port),
            "NETLAB_UDP_REJECT_PORT": str(self.udp_reject_port),
            "NETLAB_UDP_DROP_PORT": str(self.udp_drop_port),
            "NETLAB_UDP_PROHIBIT_PORT": str(self.udp_prohibit_port),
            "NETLAB_SCHEDULER_SECOND_IP": self.scheduler_second_ip,
        }

    # ----------------------------------------------------------------- lifecycle

    @classmethod
    def up(cls, prefix: str = "pe", *, guard_routes: bool = True) -> Lab:
        """Build the lab (after cleaning a leftover with the same prefix) and return it."""
        lab = cls(prefix=prefix, guard_routes=guard_routes)
        lab.start()
        return lab

    @classmethod
    def attach(cls, prefix: str = "pe") -> Lab:
        """A handle on a lab brought up by another process (pids from its state file)."""
        lab = cls(prefix=prefix)
        procs = _read_state(prefix).get("processes", {})
        lab.http_pid = procs.get("http", {}).get("pid")
        lab.dns_pid = procs.get("dns", {}).get("pid")
        return lab

    def start(self) -> None:
        _check_prefix(self.prefix)
        problems = missing_prerequisites()
        if problems:
            raise LabError("; ".join(problems))
        started = time.monotonic()
        teardown(self.prefix)  # a lab left behind by a killed run with the same prefix
        try:
            self._build()
        except BaseException:
            self.down()  # never leave half a lab, whatever failed (Ctrl-C included)
            raise
        self.up_seconds = time.monotonic() - started

    def down(self) -> list[str]:
        """Tear the lab down; idempotent, safe on a half-built or already removed lab."""
        started = time.monotonic()
        removed = teardown(self.prefix)
        for child in self._children:
            child.wait()  # already dead and reaped; this only settles Popen's bookkeeping
        self._children.clear()
        self.down_seconds = time.monotonic() - started
        return removed

    def __enter__(self) -> Lab:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    # ----------------------------------------------------------------- build steps

    def _build(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.guard_routes:  # before any lab address exists anywhere
            self._add_guard_routes()
        _ip_batch(f"netns add {name}" for name in self.namespaces)
        self._wire_node()
        self._wire_leaves()
        self._write_netns_etc()
        # The servers need only their addresses: start them first, so their start-up (a Python
        # interpreter for the pod) overlaps the sysctl and iptables execs.
        dns, http = self._spawn_servers()
        self._configure_kernel()
        self._wait_servers(dns, http)
        self._write_state()

    def _add_guard_routes(self) -> None:
        metric = guard_metric(self.prefix)
        _ip_batch(f"route replace unreachable {cidr} metric {metric}" for cidr in self.guard_cidrs)

    def _wire_node(self) -> None:
        """The node: the bridge with its IP, and one veth per neighbour. Peers are created
        directly inside their namespaces, so no interface ever appears in the root namespace."""
        bits = self.bridge_subnet.split("/")[1]
        lines = [
            "link set lo up",
            f"link add {self.bridge_name} type bridge",
            f"addr add {self.node_ip}/{bits} dev {self.bridge_name}",
            *(
                f"addr add {ip}/{bits} dev {self.bridge_name}"
                for ip in (self.ping_drop_ip, self.ping_reject_ip, self.ping_prohibit_ip)
            ),
            f"link set {self.bridge_name} up",
        ]
        for role, ns in (("sched", self.scheduler_ns), ("dns", self.dns_ns)):
            lines += [
                f"link add veth-{role} type veth peer name eth0 netns {ns}",
                f"link set veth-{role} master {self.bridge_name} up",
            ]
        for role, ns, gateway, subnet in (
            ("worker", self.worker_ns, self.worker_gateway_ip, self.worker_subnet),
            ("pod", self.pod_ns, self.pod_gateway_ip, self.pod_subnet),
        ):
            lines += [
                f"link add veth-{role} type veth peer name eth0 netns {ns}",
                f"addr add {gateway}/{subnet.split('/')[1]} dev veth-{role}",
                f"link set veth-{role} up",
            ]
        # Only for the node's own connect() to a ClusterIP: routing happens before OUTPUT DNAT.
        lines.append(f"route add {self.service_cidr} dev veth-pod")
        _ip_batch(lines, self.node_ns)

    def _wire_leaves(self) -> None:
        bridge_bits = self.bridge_subnet.split("/")[1]
        leaves: dict[str, tuple[str, str, list[str]]] = {
            # The scheduler routes the service CIDR via the node: ClusterIP works from it.
            self.scheduler_ns: (
                self.scheduler_ip,
                bridge_bits,
                [f"{self.service_cidr} via {self.node_ip}"],
            ),
            # The DNS server answers the pod too (whose queries come from the pod subnet).
            self.dns_ns: (self.dns_ip, bridge_bits, [f"{self.pod_subnet} via {self.node_ip}"]),
            # The worker: its own subnet only. Nothing of the minikube network is routable.
            self.worker_ns: (self.worker_ip, self.worker_subnet.split("/")[1], []),
            # The pod answers bridge clients (NodePort/ClusterIP are DNAT only, no SNAT).
            self.pod_ns: (
                self.pod_ip,
                self.pod_subnet.split("/")[1],
                [f"{self.bridge_subnet} via {self.pod_gateway_ip}"],
            ),
        }
        jobs: list[tuple[Sequence[str], str | None]] = []
        for ns, (ip, bits, routes) in leaves.items():
            lines = ["link set lo up", f"addr add {ip}/{bits} dev eth0", "link set eth0 up"]
            if ns == self.scheduler_ns:  # a secondary address: the first stays the default
                lines.append(f"addr add {self.scheduler_second_ip}/{bits} dev eth0")
            lines += [f"route add {route}" for route in routes]
            jobs.append(([_need("ip"), "-n", ns, "-batch", "-"], "\n".join(lines) + "\n"))
        _run_all(jobs)

    def _write_netns_etc(self) -> None:
        """resolv.conf, hosts and nsswitch.conf per namespace (bind-mounted by ip netns exec).
        Every namespace points at the lab DNS, so nothing ever asks the machine's resolver."""
        files = {
            "resolv.conf": self.resolv_conf(),
            "hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
            "nsswitch.conf": _lab_nsswitch(),
        }
        for ns in self.namespaces:
            folder = NETNS_ETC / ns
            folder.mkdir(parents=True, exist_ok=True)
            for name, text in files.items():
                (folder / name).write_text(text)

    def resolv_conf(self) -> str:
        return (
            f"nameserver {self.dns_ip}\n"
            f"search {' '.join(self.search_domains)}\n"
            "options ndots:5 timeout:1 attempts:1\n"
        )

    def _configure_kernel(self) -> None:
        """sysctls and the node's iptables rules, concurrently (each is one exec)."""
        sysctl = _need("sysctl")
        jobs: list[tuple[Sequence[str], str | None]] = []
        for ns in self.namespaces:
            settings = ["net.ipv4.tcp_syn_retries=1"]  # kernel connect timeout ~3 s, not ~127 s
            if ns == self.node_ns:
                # icmp_ratelimit=0: the kernel sends at most one ICMP error per second per peer
                # by default, so a burst of probes to the REJECT ports would get some answers
                # and not others (EHOSTUNREACH or a timeout depending on order). Tests need
                # every probe answered.
                settings += ["net.ipv4.ip_forward=1", "net.ipv4.icmp_ratelimit=0"]
            if ns == self.pod_ns:
                # As Docker (20.10+) and containerd set it in containers: every group may open
                # an unprivileged ICMP socket, so the pod pings with a datagram socket.
                settings.append("net.ipv4.ping_group_range=0 2147483647")
            jobs.append((in_netns(ns, [sysctl, "-q", "-w", *settings]), None))
        jobs.append((in_netns(self.node_ns, [_need("iptables-restore")]), self.iptables_rules()))
        _run_all(jobs)

    def iptables_rules(self) -> str:
        """The node's rules in iptables-restore format: one exec, applied atomically."""
        tag = f'-m comment --comment "probe-engine lab {self.prefix}"'
        pod = f"{self.pod_ip}:{self.pod_port}"
        dnat = [
            f"-d {self.node_ip}/32 -p tcp --dport {self.node_port} {tag} -j DNAT "
            f"--to-destination {pod}",
            f"-d {self.cluster_ip}/32 -p tcp --dport {self.service_port} {tag} -j DNAT "
            f"--to-destination {pod}",
            f"-d {self.node_ip}/32 -p udp --dport {self.udp_echo_port} {tag} -j DNAT "
            f"--to-destination {self.pod_ip}:{self.pod_udp_port}",
        ]
        node = f"-d {self.node_ip}/32 -p tcp"
        udp = f"-d {self.node_ip}/32 -p udp"
        echo = "-p icmp --icmp-type echo-request"
        # OUTPUT repeats the DNAT so the node itself can use NodePort and ClusterIP. The
        # POSTROUTING MASQUERADE handles hairpin (the pod reaching itself through its Service)
        # as kube-proxy does: without SNAT the pod would answer itself directly and time out.
        return "\n".join(
            [
                "*nat",
                ":PREROUTING ACCEPT [0:0]",
                ":INPUT ACCEPT [0:0]",
                ":OUTPUT ACCEPT [0:0]",
                ":POSTROUTING ACCEPT [0:0]",
                *[f"-A PREROUTING {rule}" for rule in dnat],
                *[f"-A OUTPUT {rule}" for rule in dnat],
                f"-A POSTROUTING -s {self.pod_ip}/32 -d {self.pod_ip}/32 -p tcp "
                f"--dport {self.pod_port} {tag} -j MASQUERADE",
                f"-A POSTROUTING -s {self.pod_ip}/32 -d {self.pod_ip}/32 -p udp "
                f"--dport {self.pod_udp_port} {tag} -j MASQUERADE",
                "COMMIT",
                "*filter",
                ":INPUT ACCEPT [0:0]",
                ":FORWARD ACCEPT [0:0]",
                ":OUTPUT ACCEPT [0:0]",
                f"-A INPUT {node} --dport {self.drop_port} {tag} -j DROP",
                f"-A INPUT {node} --dport {self.reject_port} {tag} -j REJECT "
                "--reject-with icmp-host-unreachable",
                f"-A INPUT {node} --dport {self.reset_port} {tag} -j REJECT "
                "--reject-with tcp-reset",
                f"-A INPUT {node} --dport {self.prohibit_port} {tag} -j REJECT "
                "--reject-with icmp-admin-prohibited",
                f"-A INPUT {udp} --dport {self.udp_reject_port} {tag} -j REJECT "
                "--reject-with icmp-port-unreachable",
                f"-A INPUT {udp} --dport {self.udp_drop_port} {tag} -j DROP",
                f"-A INPUT {udp} --dport {self.udp_prohibit_port} {tag} -j REJECT "
                "--reject-with icmp-admin-prohibited",
                f"-A INPUT -d {self.ping_drop_ip}/32 {echo} {tag} -j DROP",
                f"-A INPUT -d {self.ping_reject_ip}/32 {echo} {tag} -j REJECT "
                "--reject-with icmp-host-unreachable",
                f"-A INPUT -d {self.ping_prohibit_ip}/32 {echo} {tag} -j REJECT "
                "--reject-with icmp-admin-prohibited",
                # A ClusterIP is virtual: kube-proxy (iptables mode) forwards only the Service's
                # ports, and what else is sent there goes nowhere (no ARP answer, no reply).
                f"-A FORWARD -d {self.service_cidr} {echo} {tag} -j DROP",
                "COMMIT",
                "",
            ]
        )

    def dnsmasq_argv(self) -> list[str]:
        return [
            _need("dnsmasq"),
            "--no-daemon",  # foreground, no pid file, no user switch: we own its lifetime
            "--conf-file=/dev/null",  # ignore /etc/dnsmasq.conf should one be installed
            "--no-resolv",
            "--no-hosts",  # no upstream, no /etc/hosts: only the lab's names
            "--bind-interfaces",
            f"--listen-address={self.dns_ip}",
            "--port=53",
            f"--host-record={self.service_fqdn},{self.cluster_ip}",
            f"--host-record={self.ipv6_only_name},{self.ipv6_only_ip}",
            f"--local=/{self.cluster_domain}/",  # unknown cluster names: NXDOMAIN not REFUSED
            "--local=/#/",  # ... and every other name too (no upstream exists to refuse for)
            "--log-facility=-",
            "--log-queries",
        ]

    def podserver_argv(self) -> list[str]:
        return [
            sys.executable,
            "-I",  # isolated and without site: stdlib only, and a faster start
            "-S",
            str(PODSERVER),
            "--port",
            str(self.pod_port),
            "--udp-port",
            str(self.pod_udp_port),
            "--pod-name",
            self.pod_name,
        ]

    def _spawn(self, ns: str, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        """Start a server in ns in its own session, so it outlives a CLI `up` and a Ctrl-C in
        the terminal that ran it; tear-down kills it by pid."""
        with log.open("ab") as out:
            proc = subprocess.Popen(
                in_netns(ns, argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._children.append(proc)
        return proc

    def _spawn_servers(self) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
        dns = self._spawn(self.dns_ns, self.dnsmasq_argv(), self.state_dir / "dnsmasq.log")
        http = self._spawn(self.pod_ns, self.podserver_argv(), self.state_dir / "podserver.log")
        self.dns_pid, self.http_pid = dns.pid, http.pid
        return dns, http

    def _wait_servers(self, dns: subprocess.Popen[bytes], http: subprocess.Popen[bytes]) -> None:
        dns_at, http_at = _hex_endpoint(self.dns_ip, 53), _hex_endpoint("0.0.0.0", self.pod_port)
        _wait_listening(dns, self.dns_ns, "udp", dns_at, self.state_dir / "dnsmasq.log")
        _wait_listening(http, self.pod_ns, "tcp", http_at, self.state_dir / "podserver.log")
        udp_at = _hex_endpoint("0.0.0.0", self.pod_udp_port)
        _wait_listening(http, self.pod_ns, "udp", udp_at, self.state_dir / "podserver.log")

    def _write_state(self) -> None:
        procs = {
            role: {"pid": pid, "starttime": _proc_starttime(pid)}
            for role, pid in (("http", self.http_pid), ("dns", self.dns_pid))
            if pid is not None
        }
        state = {
            "prefix": self.prefix,
            "processes": procs,
            "created": time.time(),
            "guard_metric": guard_metric(self.prefix) if self.guard_routes else None,
        }
        (self.state_dir / "state.json").write_text(json.dumps(state, indent=2) + "\n")

    # ----------------------------------------------------------------- probing helpers

    def run_in(
        self, ns: str, argv: Sequence[str], *, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside a lab namespace (as a container would, resolv.conf included)."""
        return _run(in_netns(ns, argv), timeout=timeout, check=False)

    def _python_json(self, ns: str, code: str, *args: str, timeout: float = 30.0) -> Any:
        proc = _run(in_netns(ns, [sys.executable, "-I", "-S", "-c", code, *args]), timeout=timeout)
        return json.loads(proc.stdout)

    def tcp_connect(
        self, ns: str, host: str, port: int, *, timeout: float | None = None
    ) -> ConnectResult:
        """connect_ex from ns; timeout None means the kernel's own (tcp_syn_retries) timeout."""
        raw = self._python_json(
            ns, _CONNECT_CODE, host, str(port), "none" if timeout is None else str(timeout)
        )
        return ConnectResult(errno=raw["errno"], name=raw["name"], seconds=raw["seconds"])

    def resolve(self, ns: str, name: str) -> ResolveResult:
        """getaddrinfo from ns through the namespace's resolv.conf."""
        raw = self._python_json(ns, _RESOLVE_CODE, name)
        return ResolveResult(
            addresses=tuple(raw["addresses"]),
            error=raw["error"],
            error_name=raw.get("error_name"),
            message=raw.get("message"),
            seconds=raw["seconds"],
        )

    def http_get(
        self, ns: str, host: str, port: int, path: str = "/health", *, timeout: float = 5.0
    ) -> HttpResult:
        """A plain http.client GET from ns (no proxy variables can interfere)."""
        raw = self._python_json(ns, _HTTP_CODE, host, str(port), path, str(timeout))
        return HttpResult(status=raw["status"], body=raw["body"])


def _lab_nsswitch() -> str:
    """The machine's nsswitch.conf with `hosts:` pinned to files+dns (see module docstring)."""
    try:
        lines = Path("/etc/nsswitch.conf").read_text().splitlines()
    except OSError:
        lines = []
    kept = [line for line in lines if not line.strip().startswith("hosts:")]
    return "\n".join([*kept, "hosts: files dns", ""])


# --------------------------------------------------------------------------- status


def lab_prefixes() -> list[str]:
    """Prefixes of every lab with a trace on this machine (namespaces or state)."""
    found = set()
    if NETNS_RUN.is_dir():
        for entry in NETNS_RUN.iterdir():
            match = LAB_NETNS_RE.match(entry.name)
            if match:
                found.add(match["prefix"])
    if STATE_ROOT.is_dir():
        found |= {entry.name for entry in STATE_ROOT.iterdir() if entry.is_dir()}
    return sorted(found)


def status_lines(prefix: str) -> tuple[bool, list[str]]:
    """(complete, report): what of lab `prefix` exists right now."""
    _check_prefix(prefix)
    names = list(namespace_names(prefix).values())
    present = existing_namespaces(prefix)
    pids = pids_in_netns(present)
    etc = [name for name in names if (NETNS_ETC / name).exists()]
    routes = guard_routes_present(prefix)
    state = _read_state(prefix)
    complete = len(present) == len(names) and {"dns", "http"} <= set(state.get("processes", {}))
    if complete:
        complete = all(process_alive(int(p["pid"])) for p in state["processes"].values())
    traces = present or etc or routes or state
    verdict = "up" if complete else "PARTIAL (run `down` to clean)" if traces else "down"
    lines = [f"lab {prefix!r}: {verdict}"]
    for name in names:
        held = sorted(pid for pid, ns in pids.items() if ns == name)
        mark = "present" if name in present else "absent"
        lines.append(f"  netns {name}: {mark}" + (f", pids {held}" if held else ""))
    lines.append(f"  /etc/netns dirs: {etc or 'none'}")
    lines.append(f"  root unreachable routes (metric {guard_metric(prefix)}): {routes or 'none'}")
    for role, entry in state.get("processes", {}).items():
        alive = "alive" if process_alive(int(entry["pid"])) else "dead"
        lines.append(f"  {role} server pid {entry['pid']}: {alive}")
    others = [p for p in lab_prefixes() if p != prefix]
    lines.append(f"  other labs on this machine: {others or 'none'}")
    return complete, lines


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.lab.netlab",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=("up", "down", "status", "env"))
    parser.add_argument("--prefix", default="pe", help="namespace name prefix (default: pe)")
    parser.add_argument(
        "--no-guard-routes",
        action="store_true",
        help="do not add the root-namespace unreachable routes",
    )
    parser.add_argument("--json", action="store_true", help="up/status: print the plan as JSON")
    args = parser.parse_args(argv)
    try:
        return _command(args)
    except LabError as exc:
        print(f"netlab: {exc}", file=sys.stderr)
        return 2


def _command(args: argparse.Namespace) -> int:
    if args.command == "up":
        lab = Lab.up(args.prefix, guard_routes=not args.no_guard_routes)
        _print_plan(lab, as_json=args.json)
        print(f"lab {lab.prefix!r} up in {lab.up_seconds:.3f} s")
        return 0
    if args.command == "env":
        # Shell-quoted exports of configs/lab.yaml's variables (no lab needs to be up).
        environ = Lab(prefix=args.prefix).matrix_environ()
        print("\n".join(f"export {key}={shlex.quote(value)}" for key, value in environ.items()))
        return 0
    if args.command == "down":
        lab = Lab(prefix=args.prefix)
        removed = lab.down()
        print("\n".join(f"removed {item}" for item in removed) or "nothing to remove")
        print(f"lab {lab.prefix!r} down in {lab.down_seconds:.3f} s")
        return 0
    complete, lines = status_lines(args.prefix)
    print("\n".join(lines))
    if complete:
        _print_plan(Lab.attach(args.prefix), as_json=args.json)
    return 0 if complete else 1


def _print_plan(lab: Lab, *, as_json: bool) -> None:
    plan = lab.describe()
    if as_json:
        print(json.dumps(plan, indent=2, default=str))
        return
    width = max(len(key) for key in plan)
    for key, value in plan.items():
        print(f"  {key:<{width}}  {value}")


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `status | head` ends quietly
    sys.exit(main())
