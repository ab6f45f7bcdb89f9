"""Ping and UDP on real kernels: icmp and udp targets probed between the lab's namespaces.

Every answer comes from the kernel and the node's iptables rules (tests/lab/netlab.py): echo
replies, DROP (silence), REJECT with host-unreachable, admin-prohibited and port-unreachable,
the kernel's own port unreachable for a closed UDP port, a UDP echo service behind a DNAT.
Each way the agent pings is exercised where the place allows it: a raw socket (root), an ICMP
datagram socket (the pod: ping_group_range as in a container), the place's own ping binary (an
agent running as nobody), and the shell prober's ping (no Python). Nothing leaves the lab:
every source is a lab namespace without a default route, or loopback.
"""

from __future__ import annotations

import stat
import tempfile
import textwrap
from collections.abc import Mapping
from pathlib import Path

import anyio
import pytest

from probe_engine import MatrixResult, RunOptions, __version__, run_matrix
from probe_engine.results import CellResult, CheckRecord
from probe_engine.spec import load_matrix
from tests.conftest import cell, require, run_text
from tests.golden import check_golden
from tests.lab.netlab import Lab, tool

root = pytest.mark.root
NOBODY = 65534
REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


def lab_run(lab: Lab, text: str, environ: Mapping[str, str] | None = None) -> MatrixResult:
    return run_text(text, {**lab.matrix_environ(), **(environ or {})})


def only_check(found: CellResult, name: str) -> CheckRecord:
    checks = [c for c in found.checks if c.name == name]
    assert len(checks) == 1, found.model_dump_json(indent=1)
    return checks[0]


PING_TARGETS = """
targets:
  node: {kind: icmp, host: "${NETLAB_NODE_IP}"}
  drop: {kind: icmp, host: "${NETLAB_PING_DROP_IP}", timeout: 1s}
  reject: {kind: icmp, host: "${NETLAB_PING_REJECT_IP}"}
  prohibit: {kind: icmp, host: "${NETLAB_PING_PROHIBIT_IP}"}
  clusterip: {kind: icmp, host: "${NETLAB_CLUSTER_IP}", timeout: 1s}
  clusterip-port: {kind: tcp, host: "${NETLAB_CLUSTER_IP}", port: "${NETLAB_SERVICE_PORT}"}
  unrouted: {kind: icmp, host: "${NETLAB_UNROUTED_IP}"}
"""


@pytest.fixture(scope="module")
def pings(netlab: Lab) -> MatrixResult:
    """Every ping target from the scheduler (agent, raw socket), the scheduler's shell prober
    (iputils ping), the pod (agent, datagram socket) and the worker (no route)."""
    return lab_run(
        netlab,
        textwrap.dedent(
            """
        defaults: {timeout: 3s}
        sources:
          scheduler: {kind: netns, name: "${NETLAB_SCHEDULER_NS}", inherit_env: false}
          scheduler-sh:
            kind: netns
            name: "${NETLAB_SCHEDULER_NS}"
            tool: curl
            inherit_env: false
            env: {PATH: "/usr/bin:/bin"}
          pod: {kind: netns, name: "${NETLAB_POD_NS}", inherit_env: false}
          worker: {kind: netns, name: "${NETLAB_WORKER_NS}", inherit_env: false}
        """
        )
        + PING_TARGETS,
    )


@root
@pytest.mark.parametrize("row", ["scheduler", "scheduler-sh", "pod"])
def test_an_answered_ping_is_ok_with_its_round_trips(pings: MatrixResult, row: str) -> None:
    found = cell(pings, row, "node")
    check = only_check(found, "icmp")
    assert (found.status, check.status) == ("ok", "ok"), found.model_dump_json(indent=1)
    assert (check.sent, check.received, check.loss_percent) == (3, 3, 0.0)
    assert check.rtt_ms is not None
    assert 0 < check.rtt_ms["min"] <= check.rtt_ms["avg"] <= check.rtt_ms["max"]
    assert check.message is not None and check.message.startswith("3 of 3 echo replies, rtt")
    method = {"scheduler": "raw socket", "scheduler-sh": "ping (iputils)", "pod": "datagram socket"}
    assert check.method == method[row]
    assert found.tool == ("ping" if row == "scheduler-sh" else "agent")


@root
@pytest.mark.parametrize("row", ["scheduler", "scheduler-sh", "pod"])
def test_a_dropped_ping_is_a_timeout_with_full_loss(pings: MatrixResult, row: str) -> None:
    found = cell(pings, row, "drop")
    check = only_check(found, "icmp")
    assert found.status == "timeout", found.model_dump_json(indent=1)
    assert (check.received, check.loss_percent, check.errno) == (0, 100.0, None)
    assert check.sent is not None and check.sent >= 1
    assert check.message is not None and "100% loss" in check.message


@root
@pytest.mark.parametrize("row", ["scheduler", "scheduler-sh", "pod"])
@pytest.mark.parametrize(
    ("target", "name", "code"),
    [("reject", "host-unreachable", 1), ("prohibit", "admin-prohibited", 13)],
)
def test_a_rejected_ping_is_unreachable_with_the_icmp_error_named(
    netlab: Lab, pings: MatrixResult, row: str, target: str, name: str, code: int
) -> None:
    found = cell(pings, row, target)
    check = only_check(found, "icmp")
    assert found.status == "unreachable", found.model_dump_json(indent=1)
    assert (check.icmp, check.icmp_type, check.icmp_code) == (name, 3, code)
    assert check.errno_name == "EHOSTUNREACH"
    sender = netlab.ping_reject_ip if target == "reject" else netlab.ping_prohibit_ip
    assert check.icmp_from == sender
    assert check.message is not None and f"(type 3 code {code})" in check.message


@root
@pytest.mark.parametrize("row", ["scheduler", "scheduler-sh"])
def test_a_clusterip_does_not_answer_ping_though_its_port_works(
    pings: MatrixResult, row: str
) -> None:
    # kube-proxy forwards only the Service's tcp port (test_netns_lab: the ClusterIP's HTTP
    # answers from the scheduler); an echo request to the virtual address goes nowhere.
    found = cell(pings, row, "clusterip")
    assert found.status == "timeout", found.model_dump_json(indent=1)
    assert only_check(found, "icmp").received == 0


@root
def test_the_diagnosis_says_a_silent_ping_with_answering_ports_is_not_a_down_host(
    netlab: Lab, pings: MatrixResult
) -> None:
    findings = [f for f in pings.findings if f.rule == "ping-filtered"]
    assert len(findings) == 1, [f.title for f in pings.findings]
    finding = findings[0]
    assert finding.title == (
        f"{netlab.cluster_ip} does not answer ping, but its ports answer: the host is up"
    )
    assert {e.source for e in finding.evidence} == {"scheduler", "scheduler-sh"}
    assert f"tcp port {netlab.service_port} (clusterip-port)" in finding.detail
    check_golden(finding, "ping-filtered")
    # No other finding calls the ClusterIP down on the strength of these pings.
    silent = {(e.source, e.target) for e in finding.evidence}
    others = [f for f in pings.findings if f.rule != "ping-filtered"]
    assert not [f.title for f in others if silent & {(e.source, e.target) for e in f.evidence}]


@root
def test_without_a_route_nothing_is_sent(pings: MatrixResult) -> None:
    for row, target in [("worker", "node"), ("scheduler", "unrouted")]:
        found = cell(pings, row, target)
        check = only_check(found, "icmp")
        assert (found.status, check.errno_name) == ("unreachable", "ENETUNREACH"), (row, target)
        assert check.sent == 0, (row, target)


# --------------------------------------------------------------------------- ping's fallbacks


def nobody_python(folder: Path) -> Path:
    """An interpreter that runs as nobody, without a capability: the agent as a user runs it."""
    setpriv = tool("setpriv")
    require(setpriv is not None, "setpriv (util-linux) is needed to run the agent as nobody")
    wrapper = folder / "python-as-nobody"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"exec {setpriv} --reuid={NOBODY} --regid={NOBODY} --clear-groups "
        '--inh-caps=-all /usr/bin/python3 "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper


def ping_as_nobody(netlab: Lab, folder: Path, busybox: str) -> MatrixResult:
    """Rows whose agent runs as nobody: with iputils ping on its PATH, with busybox ping
    alone, and with no ping at all."""
    only_busybox, empty = folder / "busybox-bin", folder / "empty"
    only_busybox.mkdir()
    empty.mkdir()
    (only_busybox / "ping").symlink_to(busybox)
    return lab_run(
        netlab,
        """
        defaults: {timeout: 3s}
        sources:
          iputils:
            kind: netns
            name: "${NETLAB_SCHEDULER_NS}"
            python: "${NOBODY_PYTHON}"
            inherit_env: false
            env: {PATH: "/usr/bin:/bin"}
          busybox:
            kind: netns
            name: "${NETLAB_SCHEDULER_NS}"
            python: "${NOBODY_PYTHON}"
            inherit_env: false
            env: {PATH: "${ONLY_BUSYBOX}"}
          nothing:
            kind: netns
            name: "${NETLAB_SCHEDULER_NS}"
            python: "${NOBODY_PYTHON}"
            inherit_env: false
            env: {PATH: "${EMPTY}"}
        targets:
          node: {kind: icmp, host: "${NETLAB_NODE_IP}", count: 2}
          reject: {kind: icmp, host: "${NETLAB_PING_REJECT_IP}", count: 2}
        """,
        {
            "NOBODY_PYTHON": str(nobody_python(folder)),
            "ONLY_BUSYBOX": str(only_busybox),
            "EMPTY": str(empty),
        },
    )


@root
def test_an_agent_without_privilege_pings_with_the_places_ping(netlab: Lab) -> None:
    # Debian's iputils ping has cap_net_raw as a file capability: it can ping where the
    # agent, running as nobody in a namespace whose ping_group_range is "1 0", cannot.
    require(tool("ping") is not None, "iputils ping is needed")
    busybox = tool("busybox")
    require(busybox is not None, "busybox is needed")
    assert busybox is not None
    # Folders nobody can search: pytest's own temporary root is root's alone (0700).
    with tempfile.TemporaryDirectory(prefix="pe-nobody-") as name:
        folder = Path(name)
        folder.chmod(0o755)
        result = ping_as_nobody(netlab, folder, busybox)
    why = [
        f"ping_group_range (1 0) excludes gid {NOBODY}",
        "not root (no CAP_NET_RAW for a raw socket)",
    ]
    node = only_check(cell(result, "iputils", "node"), "icmp")
    assert (node.status, node.received, node.reasons) == ("ok", 2, why), node
    assert node.method is not None and node.method.startswith("ping (iputils ")
    reject = only_check(cell(result, "iputils", "reject"), "icmp")
    assert (reject.status, reject.icmp) == ("unreachable", "host-unreachable")
    # busybox ping has no file capability: it cannot ping either, and says so.
    busy = only_check(cell(result, "busybox", "node"), "icmp")
    assert (busy.status, busy.method) == ("source-error", "busybox ping"), busy
    assert busy.message is not None and "busybox ping could not ping" in busy.message
    none = cell(result, "nothing", "node")
    assert none.status == "source-error"
    assert only_check(none, "icmp").message == (
        f"no way to ping here: ping_group_range (1 0) excludes gid {NOBODY}, "
        "not root (no CAP_NET_RAW for a raw socket), no ping binary"
    )


@root
def test_icmpv6_echo_and_errors_on_loopback() -> None:
    result = run_text(
        """
        defaults: {timeout: 2s}
        sources:
          here: {kind: local, trust_env: false}
        targets:
          ping6: {kind: icmp, host: "::1", count: 2}
          closed6: {kind: udp, host: "::1", port: 9}
        """
    )
    ping = only_check(cell(result, "here", "ping6"), "icmp")
    assert (ping.status, ping.family, ping.received) == ("ok", "ipv6", 2)
    closed = only_check(cell(result, "here", "closed6"), "udp")
    assert (closed.status, closed.icmp, closed.icmp_type, closed.icmp_code) == (
        "refused",
        "port-unreachable",
        1,
        4,
    )


# --------------------------------------------------------------------------- udp


UDP_TARGETS = """
targets:
  echo: {kind: udp, host: "${NETLAB_NODE_IP}", port: "${NETLAB_UDP_ECHO_PORT}", payload: hello}
  closed: {kind: udp, host: "${NETLAB_NODE_IP}", port: "${NETLAB_UDP_CLOSED_PORT}"}
  reject: {kind: udp, host: "${NETLAB_NODE_IP}", port: "${NETLAB_UDP_REJECT_PORT}"}
  drop: {kind: udp, host: "${NETLAB_NODE_IP}", port: "${NETLAB_UDP_DROP_PORT}", timeout: 1s}
  silent-ok:
    kind: udp
    host: "${NETLAB_NODE_IP}"
    port: "${NETLAB_UDP_DROP_PORT}"
    expect_response: false
    timeout: 1s
  prohibit: {kind: udp, host: "${NETLAB_NODE_IP}", port: "${NETLAB_UDP_PROHIBIT_PORT}"}
  hex: {kind: udp, host: "${NETLAB_NODE_IP}", port: "${NETLAB_UDP_ECHO_PORT}", payload_hex: "00ff10"}
"""


@pytest.fixture(scope="module")
def datagrams(netlab: Lab) -> MatrixResult:
    return lab_run(
        netlab,
        textwrap.dedent(
            """
        defaults: {timeout: 3s}
        sources:
          scheduler: {kind: netns, name: "${NETLAB_SCHEDULER_NS}", inherit_env: false}
          scheduler-sh: {kind: netns, name: "${NETLAB_SCHEDULER_NS}", tool: curl, inherit_env: false}
          worker: {kind: netns, name: "${NETLAB_WORKER_NS}", inherit_env: false}
        """
        )
        + UDP_TARGETS,
    )


@root
def test_a_udp_service_that_answers_is_ok(netlab: Lab, datagrams: MatrixResult) -> None:
    for target, size in [("echo", 5), ("hex", 3)]:
        found = cell(datagrams, "scheduler", target)
        check = only_check(found, "udp")
        assert found.status == "ok", found.model_dump_json(indent=1)
        assert (check.sent_bytes, check.received_bytes) == (size, size)
        assert check.peer == f"{netlab.node_ip}:{netlab.udp_echo_port}"
        assert check.source_address == netlab.scheduler_ip


@root
@pytest.mark.parametrize("target", ["closed", "reject"])
def test_a_closed_udp_port_is_refused_by_icmp_port_unreachable(
    netlab: Lab, datagrams: MatrixResult, target: str
) -> None:
    # "closed": nothing listens, the kernel's own answer; "reject": iptables' REJECT.
    found = cell(datagrams, "scheduler", target)
    check = only_check(found, "udp")
    assert found.status == "refused", found.model_dump_json(indent=1)
    assert (check.icmp, check.icmp_type, check.icmp_code) == ("port-unreachable", 3, 3)
    assert (check.errno_name, check.icmp_from) == ("ECONNREFUSED", netlab.node_ip)


@root
@pytest.mark.parametrize("target", ["drop", "silent-ok"])
def test_silence_is_open_or_filtered_never_ok(datagrams: MatrixResult, target: str) -> None:
    found = cell(datagrams, "scheduler", target)
    check = only_check(found, "udp")
    assert (found.status, check.errno) == ("timeout", None), found.model_dump_json(indent=1)
    assert check.message is not None and check.message.startswith("no answer: open or filtered")
    assert check.sent == 2  # sent again at half time: a lost datagram is not silence


@root
def test_an_admin_prohibited_udp_port_is_unreachable(datagrams: MatrixResult) -> None:
    check = only_check(cell(datagrams, "scheduler", "prohibit"), "udp")
    assert (check.status, check.icmp, check.icmp_code) == ("unreachable", "admin-prohibited", 13)
    assert check.errno_name == "EHOSTUNREACH"


@root
def test_udp_without_a_route_or_without_python(datagrams: MatrixResult) -> None:
    worker = only_check(cell(datagrams, "worker", "echo"), "udp")
    assert (worker.status, worker.errno_name) == ("unreachable", "ENETUNREACH")
    shell = cell(datagrams, "scheduler-sh", "echo")
    assert shell.status == "source-error"
    assert shell.message is not None and shell.message.startswith("no udp probe without Python")


# --------------------------------------------------------------------------- a chosen source


@root
def test_a_chosen_source_address_or_interface_is_used_and_recorded(netlab: Lab) -> None:
    result = lab_run(
        netlab,
        """
        defaults: {timeout: 3s}
        sources:
          scheduler: {kind: netns, name: "${NETLAB_SCHEDULER_NS}", inherit_env: false}
          scheduler-sh: {kind: netns, name: "${NETLAB_SCHEDULER_NS}", tool: curl, inherit_env: false}
        targets:
          ping-second:
            {kind: icmp, host: "${NETLAB_NODE_IP}", bind: {address: "${NETLAB_SCHEDULER_SECOND_IP}"}}
          ping-eth0: {kind: icmp, host: "${NETLAB_NODE_IP}", bind: {interface: eth0}}
          ping-absent: {kind: icmp, host: "${NETLAB_NODE_IP}", bind: {address: "${ABSENT}"}}
          udp-second:
            kind: udp
            host: "${NETLAB_NODE_IP}"
            port: "${NETLAB_UDP_ECHO_PORT}"
            bind: {address: "${NETLAB_SCHEDULER_SECOND_IP}"}
          udp-no-such-interface:
            {kind: udp, host: "${NETLAB_NODE_IP}", port: "${NETLAB_UDP_ECHO_PORT}", bind: {interface: nope0}}
        """,
        {"ABSENT": netlab.absent_source_ip},
    )
    second = netlab.scheduler_second_ip
    ping = only_check(cell(result, "scheduler", "ping-second"), "icmp")
    assert (ping.status, ping.source_address, ping.bind) == ("ok", second, second)
    eth0 = only_check(cell(result, "scheduler", "ping-eth0"), "icmp")
    assert (eth0.status, eth0.bind) == ("ok", "interface eth0")
    udp = only_check(cell(result, "scheduler", "udp-second"), "udp")
    assert (udp.status, udp.source_address, udp.bind) == ("ok", second, second)
    absent = only_check(cell(result, "scheduler", "ping-absent"), "icmp")
    assert (absent.status, absent.errno_name) == ("source-error", "EADDRNOTAVAIL")
    assert absent.message == f"this place has no address {netlab.absent_source_ip} (EADDRNOTAVAIL)"
    nope = only_check(cell(result, "scheduler", "udp-no-such-interface"), "udp")
    assert (nope.status, nope.errno_name) == ("source-error", "ENODEV")
    assert nope.message == "this place has no interface nope0"
    # ping -I from the shell prober: the same choice, in iputils' words.
    shell = only_check(cell(result, "scheduler-sh", "ping-second"), "icmp")
    assert (shell.status, shell.bind) == ("ok", second)
    shell_absent = only_check(cell(result, "scheduler-sh", "ping-absent"), "icmp")
    assert shell_absent.status == "source-error"
    assert shell_absent.message is not None
    assert "Cannot assign requested address" in shell_absent.message


@root
@pytest.mark.parametrize("client", ["requests", "httpx", "urllib", "curl"])
def test_a_sources_chosen_address_carries_its_tcp_and_http_probes(netlab: Lab, client: str) -> None:
    # The source chooses its second address; the pod's access log names the client address it
    # saw (the NodePort's DNAT keeps the source), so the choice is proven on the server's side.
    tool = "tool: curl" if client == "curl" else f"http_client: {client}"
    result = lab_run(
        netlab,
        f"""
        defaults: {{timeout: 3s}}
        sources:
          second:
            kind: netns
            name: "${{NETLAB_SCHEDULER_NS}}"
            inherit_env: false
            {tool}
            bind: {{address: "${{NETLAB_SCHEDULER_SECOND_IP}}"}}
        targets:
          nodeport-tcp: {{kind: tcp, host: "${{NETLAB_NODE_IP}}", port: "${{NETLAB_NODE_PORT}}"}}
          nodeport:
            kind: http
            url: "http://${{NETLAB_NODE_IP}}:${{NETLAB_NODE_PORT}}/health?from={client}"
            expect_status: [200]
          eth0:
            kind: tcp
            host: "${{NETLAB_NODE_IP}}"
            port: "${{NETLAB_NODE_PORT}}"
            bind: {{interface: eth0}}
        """,
    )
    second = netlab.scheduler_second_ip
    tcp = cell(result, "second", "nodeport-tcp")
    http = cell(result, "second", "nodeport")
    assert (tcp.status, http.status) == ("ok", "ok"), http.model_dump_json(indent=1)
    if client != "curl":
        connected = only_check(tcp, "tcp")
        assert (connected.source_address, connected.bind) == (second, second)
        assert only_check(http, "http").bind == second
    assert cell(result, "second", "eth0").status == "ok"  # the target's own choice wins
    log = (netlab.state_dir / "podserver.log").read_text()
    asked = [line for line in log.splitlines() if f"/health?from={client} " in line]
    assert asked and all(line.startswith(f"{second}:") for line in asked), asked
    # The request names its run and cell in its User-Agent: the server's log says who came.
    marker = f'"probe-engine/{__version__} run={result.run_id} cell='
    assert result.run_id and all(marker in line for line in asked), asked
    assert only_check(http, "http").user_agent == (
        f"probe-engine/{__version__} run={result.run_id} cell=1"
    )


@root
def test_a_chosen_address_the_place_lacks_fails_every_kind_of_probe_as_a_source_error(
    netlab: Lab,
) -> None:
    result = lab_run(
        netlab,
        """
        defaults: {timeout: 3s}
        sources:
          absent:
            kind: netns
            name: "${NETLAB_SCHEDULER_NS}"
            inherit_env: false
            bind: {address: "${ABSENT}"}
          absent-curl:
            kind: netns
            name: "${NETLAB_SCHEDULER_NS}"
            inherit_env: false
            tool: curl
            bind: {address: "${ABSENT}"}
          absent-nc:
            kind: netns
            name: "${NETLAB_SCHEDULER_NS}"
            inherit_env: false
            tool: nc
            bind: {address: "${ABSENT}"}
        targets:
          tcp: {kind: tcp, host: "${NETLAB_NODE_IP}", port: "${NETLAB_NODE_PORT}"}
          http: {kind: http, url: "http://${NETLAB_NODE_IP}:${NETLAB_NODE_PORT}/health"}
          ping: {kind: icmp, host: "${NETLAB_NODE_IP}"}
          udp: {kind: udp, host: "${NETLAB_NODE_IP}", port: "${NETLAB_UDP_ECHO_PORT}"}
        """,
        {"ABSENT": netlab.absent_source_ip},
    )
    words = f"this place has no address {netlab.absent_source_ip} (EADDRNOTAVAIL)"
    for target in ("tcp", "ping", "udp"):
        found = cell(result, "absent", target)
        assert found.status == "source-error", found.model_dump_json(indent=1)
        assert found.checks[-1].message == words
    # http: the agent's tcp check fails first, with the same words
    assert cell(result, "absent", "http").checks[-1].message == words
    for target in ("tcp", "http"):
        curl = cell(result, "absent-curl", target)
        assert curl.status in ("source-error", "unreachable"), curl.model_dump_json(indent=1)
        nc = cell(result, "absent-nc", target)
        assert nc.status == "source-error"
        assert (
            nc.message
            == f"nc cannot send from a chosen source (bind: {netlab.absent_source_ip}); curl, ping and the agent can"
        )


# --------------------------------------------------------------------------- the README's tour

# configs/lab-reach.yaml's grid, as README.md shows it: status (and errno name) per cell.
# fmt: off
REACH_GRID = {
    "nodeport":       ("ok",          "ok",           "ok",           "unreachable ENETUNREACH"),
    "clusterip":      ("ok",          "ok",           "unreachable ENETUNREACH", "unreachable ENETUNREACH"),
    "ping-node":      ("ok",          "ok",           "ok",           "unreachable ENETUNREACH"),
    "ping-clusterip": ("timeout",     "timeout",      "unreachable ENETUNREACH", "unreachable ENETUNREACH"),
    "ping-prohibit":  ("unreachable EHOSTUNREACH", "unreachable EHOSTUNREACH",
                       "unreachable EHOSTUNREACH", "unreachable ENETUNREACH"),
    "udp-echo":       ("ok",          "source-error", "ok",           "unreachable ENETUNREACH"),
    "udp-closed":     ("refused ECONNREFUSED", "source-error", "refused ECONNREFUSED",
                       "unreachable ENETUNREACH"),
    "udp-drop":       ("timeout",     "source-error", "timeout",      "unreachable ENETUNREACH"),
}
# fmt: on
ROWS = ("scheduler", "scheduler-curl", "pod", "worker")


@root
def test_the_readme_tour_of_ping_and_udp_beside_tcp_and_http(netlab: Lab) -> None:
    loaded = load_matrix(REPO / "configs" / "lab-reach.yaml", netlab.matrix_environ())
    result = anyio.run(run_matrix, loaded, RunOptions())
    for target, answers in REACH_GRID.items():
        for row, answer in zip(ROWS, answers, strict=True):
            found = cell(result, row, target)
            failed = next((c for c in found.checks if c.status != "ok"), None)
            seen = " ".join(p for p in (found.status, failed and failed.errno_name) if p)
            assert seen == answer, (row, target, found.model_dump_json(indent=1))
    assert [f.rule for f in result.findings if f.rule == "ping-filtered"] == ["ping-filtered"]
    shown = README.read_text()
    for target, answers in REACH_GRID.items():
        assert f"│ {target:<15} │ {answers[0].split()[0]}" in shown, target
