"""The lab's kernel facts, probed for real from inside each namespace.

These pin what the engine's netns tests will rely on: if a kernel or iptables change moves an
errno, this file says so before the engine's matrix tests do.
"""

from __future__ import annotations

import errno
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab import fixtures as lab_fixtures
from tests.lab.netlab import (
    NETNS_ETC,
    NETNS_RUN,
    Lab,
    guard_routes_present,
    lab_prefixes,
    pids_in_netns,
    process_alive,
    state_dir,
    tool,
)

root = pytest.mark.root
REPO = Path(__file__).resolve().parents[2]

# (source namespace, host, port, errno): Lab attribute names, so no address is written here.
# A host that is not an attribute is used literally.
FAST_CELLS = [
    ("scheduler_ns", "node_ip", "node_port", 0),  # NodePort
    ("scheduler_ns", "cluster_ip", "service_port", 0),  # ClusterIP, routed via the node
    ("scheduler_ns", "node_ip", "reject_port", errno.EHOSTUNREACH),  # icmp-host-unreachable
    ("scheduler_ns", "node_ip", "prohibit_port", errno.EHOSTUNREACH),  # icmp-admin-prohibited
    ("scheduler_ns", "node_ip", "reset_port", errno.ECONNREFUSED),  # REJECT tcp-reset
    ("scheduler_ns", "node_ip", "closed_port", errno.ECONNREFUSED),  # nothing listens
    ("scheduler_ns", "unrouted_ip", "node_port", errno.ENETUNREACH),  # no route at all
    ("scheduler_ns", "pod_ip", "pod_port", errno.ENETUNREACH),  # pod CIDR not routed
    ("worker_ns", "node_ip", "node_port", errno.ENETUNREACH),  # not on the minikube network
    ("worker_ns", "cluster_ip", "service_port", errno.ENETUNREACH),
    ("worker_ns", "worker_gateway_ip", "node_port", errno.ECONNREFUSED),  # DNAT is node_ip only
    ("node_ns", "node_ip", "node_port", 0),  # OUTPUT DNAT
    ("node_ns", "cluster_ip", "service_port", 0),
    ("node_ns", "pod_ip", "pod_port", 0),
    ("pod_ns", "127.0.0.1", "pod_port", 0),
    ("pod_ns", "node_ip", "node_port", 0),  # hairpin, thanks to the MASQUERADE rule
]


def _get(lab: Lab, key: str) -> str:
    return str(getattr(lab, key, key))


def _cell_id(cell: tuple[str, str, str, int]) -> str:
    ns, host, port, code = cell
    return f"{ns}->{host}:{port}={errno.errorcode.get(code, 'OK')}"


@root
@pytest.mark.parametrize("cell", FAST_CELLS, ids=[_cell_id(c) for c in FAST_CELLS])
def test_connect_errno_is_immediate(netlab: Lab, cell: tuple[str, str, str, int]) -> None:
    # With a deadline (non-blocking connect, as asyncio and settimeout do), every one of these
    # is decided by the first answer, or by the routing table before any packet is sent.
    ns, host, port, expected = cell
    result = netlab.tcp_connect(
        _get(netlab, ns), _get(netlab, host), int(_get(netlab, port)), timeout=2.0
    )
    assert (result.errno, result.name) == (expected, errno.errorcode.get(expected, "OK"))
    assert result.seconds < 1.0  # before the first SYN retransmission could have answered


@root
def test_drop_times_out_at_kernel_limit(netlab: Lab) -> None:
    # tcp_syn_retries=1: SYN at 0 s, one retransmission at 1 s, give up at 3 s.
    result = netlab.tcp_connect(netlab.scheduler_ns, netlab.node_ip, netlab.drop_port)
    assert result.errno == errno.ETIMEDOUT
    assert result.seconds > 2.5  # the kernel's own give-up time


@root
def test_drop_with_settimeout_is_eagain_at_deadline(netlab: Lab) -> None:
    # The caller's deadline shows as EAGAIN (11), not ETIMEDOUT: keep them apart in classify.
    result = netlab.tcp_connect(netlab.scheduler_ns, netlab.node_ip, netlab.drop_port, timeout=1)
    assert result.errno == errno.EAGAIN
    assert result.seconds > 0.9  # the caller's deadline, well before the kernel's 3 s


@root
@pytest.mark.parametrize("port", ["reject_port", "prohibit_port"])
def test_reject_with_blocking_connect_is_113_after_one_rto(netlab: Lab, port: str) -> None:
    # Measured: a *blocking* connect() gets EHOSTUNREACH only after ~1.02 s, the first SYN
    # retransmission, although the ICMP error comes back at once (and a non-blocking connect
    # reports it at once, above). The first ICMP is handled while connect() still holds the
    # socket lock and is kept as a soft error; the retransmitted SYN's ICMP ends the connect.
    # A faster CPU path may report it at once; either way it is 113 and never a timeout.
    result = netlab.tcp_connect(netlab.scheduler_ns, netlab.node_ip, int(_get(netlab, port)))
    assert result.errno == errno.EHOSTUNREACH  # never ETIMEDOUT, which would take 3 s


@root
def test_scheduler_resolves_service_fqdn(netlab: Lab) -> None:
    result = netlab.resolve(netlab.scheduler_ns, netlab.service_fqdn)
    assert (result.addresses, result.error) == ((netlab.cluster_ip,), None)


@root
def test_scheduler_resolves_short_name_via_search_list(netlab: Lab) -> None:
    result = netlab.resolve(netlab.scheduler_ns, netlab.service_name)
    assert (result.addresses, result.error) == ((netlab.cluster_ip,), None)


@root
@pytest.mark.parametrize("name", ["unknown_name", "no-such-service", "example.invalid"])
def test_unknown_names_are_nxdomain(netlab: Lab, name: str) -> None:
    # NXDOMAIN for every search suffix and the name itself; nothing is forwarded anywhere.
    result = netlab.resolve(netlab.scheduler_ns, _get(netlab, name))
    assert (result.error, result.error_name) == (socket.EAI_NONAME, "EAI_NONAME")
    assert result.message == "Name or service not known"


@root
@pytest.mark.parametrize("name", ["service_fqdn", "service_name"])
def test_worker_lookup_fails_fast_with_eai_again(netlab: Lab, name: str) -> None:
    # Its nameserver is unroutable from it: sendto() fails with ENETUNREACH, glibc gives up on
    # the only server at once and reports a temporary failure; no resolver timeout is waited.
    result = netlab.resolve(netlab.worker_ns, _get(netlab, name))
    assert (result.error, result.error_name) == (socket.EAI_AGAIN, "EAI_AGAIN")
    assert result.message == "Temporary failure in name resolution"
    assert result.seconds < 5.0  # no resolver timeout (5 s) was waited


@root
@pytest.mark.parametrize(
    ("ns", "host", "port"),
    [
        ("scheduler_ns", "node_ip", "node_port"),
        ("scheduler_ns", "cluster_ip", "service_port"),
        ("scheduler_ns", "service_fqdn", "service_port"),  # resolves, then connects
        ("scheduler_ns", "service_name", "service_port"),
        ("pod_ns", "127.0.0.1", "pod_port"),
    ],
)
def test_health_endpoint_answers(netlab: Lab, ns: str, host: str, port: str) -> None:
    reply = netlab.http_get(_get(netlab, ns), _get(netlab, host), int(_get(netlab, port)))
    assert reply.status == 200
    assert json.loads(reply.body) == {"status": "ok", "pod": netlab.pod_name}


@root
def test_slow_endpoint_sleeps(netlab: Lab) -> None:
    reply = netlab.http_get(netlab.pod_ns, "127.0.0.1", netlab.pod_port, "/slow?seconds=0.2")
    assert (reply.status, json.loads(reply.body)) == (200, {"slept": 0.2})


@root
def test_no_lab_namespace_has_a_default_route(netlab: Lab) -> None:
    for ns in netlab.namespaces:
        routes = _ip_json("-n", ns, "route", "show", "default")
        assert routes == [], f"{ns} has a default route: {routes}"


@root
def test_resolv_conf_per_namespace(netlab: Lab) -> None:
    text = (NETNS_ETC / netlab.scheduler_ns / "resolv.conf").read_text()
    assert f"nameserver {netlab.dns_ip}" in text
    assert "search default.svc.cluster.local svc.cluster.local cluster.local" in text
    assert "options ndots:5 timeout:1 attempts:1" in text
    shown = netlab.run_in(netlab.worker_ns, ["cat", "/etc/resolv.conf"]).stdout
    assert shown == netlab.resolv_conf()  # what a process in the namespace actually sees


@root
def test_root_guard_routes_cover_lab_ranges(netlab: Lab) -> None:
    assert sorted(guard_routes_present(netlab.prefix)) == sorted(netlab.guard_cidrs)


@root
def test_cli_leftover_is_cleaned_by_up_and_down_leaves_nothing() -> None:
    """A lab left by a CLI `up` (as by a killed run) is replaced by Lab.up; down removes all."""
    lab_fixtures.require_lab_prerequisites()
    prefix = "pe-tlife"
    assert _cli("up", prefix).returncode == 0
    leftover = set(pids_in_netns(Lab(prefix=prefix).namespaces))
    assert len(leftover) == 2  # dnsmasq and the pod server, now orphans of the CLI
    assert _cli("status", prefix).returncode == 0

    lab = Lab.up(prefix)
    assert not leftover & set(pids_in_netns(lab.namespaces)), "leftover servers not killed"
    servers = {pid for pid in (lab.http_pid, lab.dns_pid) if pid is not None}
    lab.down()
    _assert_nothing_left(prefix, leftover | servers)
    assert lab.down() == []  # idempotent: nothing left to remove
    status = _cli("status", prefix)
    assert (status.returncode, status.stdout.splitlines()[0]) == (1, f"lab {prefix!r}: down")


def test_missing_prerequisite_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lab_fixtures, "missing_prerequisites", lambda: ["not root"])
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="not root"):
        lab_fixtures.require_lab_prerequisites()


def test_missing_prerequisite_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lab_fixtures, "missing_prerequisites", lambda: ["not root"])
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not root"):
        lab_fixtures.require_lab_prerequisites()


def _assert_nothing_left(prefix: str, pids: set[int]) -> None:
    names = Lab(prefix=prefix).namespaces
    assert not [n for n in names if (NETNS_RUN / n).exists()], "namespace left"
    assert not [n for n in names if (NETNS_ETC / n).exists()], "/etc/netns dir left"
    assert guard_routes_present(prefix) == [], "root route left"
    assert not state_dir(prefix).exists(), "state dir left"
    assert prefix not in lab_prefixes()
    assert not [pid for pid in pids if process_alive(pid)], "process left"
    listed = subprocess.run([_ip(), "netns", "list"], capture_output=True, text=True, check=True)
    assert prefix not in listed.stdout


def _cli(command: str, prefix: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.lab.netlab", command, "--prefix", prefix],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _ip() -> str:
    path = tool("ip")
    assert path is not None
    return path


def _ip_json(*args: str) -> list[object]:
    out = subprocess.run([_ip(), "-j", *args], capture_output=True, text=True, check=True)
    parsed: list[object] = json.loads(out.stdout or "[]")
    return parsed
