"""A cell answers the same in any matrix as it does alone, in the namespace lab (see
tests/metamorphic.py): netns rows, the agent and curl, nc and bash as a user runs them there,
against the lab's NodePort, ClusterIP, pod, names (the lab's DNS only), firewall rules and an
IPv6-only name that no lab namespace can reach.
"""

from __future__ import annotations

import os

import pytest

from tests.lab.netlab import Lab
from tests.metamorphic import AloneOracle, Atom, Generated, generate, run, sweep

MATRICES = int(os.environ.get("PE_METAMORPHIC_LAB_MATRICES", "100"))
DEFAULTS = {"timeout": "3s"}
SLOW = "300ms"  # the DROP rule never answers: the deadline decides, whatever the load

root = pytest.mark.root


def pools(lab: Lab) -> tuple[list[Atom], list[Atom]]:
    quiet = {"inherit_env": False}  # no variable of the test run leaks into the namespace
    closed_proxy = f"http://{lab.node_ip}:{lab.closed_port}"
    sources = [
        Atom("sched", {"kind": "netns", "name": lab.scheduler_ns, **quiet}),
        Atom("worker", {"kind": "netns", "name": lab.worker_ns, **quiet}),
        Atom("node", {"kind": "netns", "name": lab.node_ns, **quiet}),
        Atom("pod", {"kind": "netns", "name": lab.pod_ns, **quiet}),
        Atom(
            "sched-proxy",
            {
                "kind": "netns",
                "name": lab.scheduler_ns,
                **quiet,
                "env": {"HTTP_PROXY": closed_proxy},
            },
        ),
        *(
            Atom(
                f"sched-{tool}",
                {"kind": "netns", "name": lab.scheduler_ns, "tool": tool, **quiet},
            )
            for tool in ("curl", "nc", "bash")
        ),
    ]
    node, fqdn, short = lab.node_ip, lab.service_fqdn, lab.service_name

    def tcp(key: str, host: str, port: int, **more: object) -> Atom:
        return Atom(key, {"kind": "tcp", "host": host, "port": port, **more})

    def http(key: str, url: str) -> Atom:
        return Atom(key, {"kind": "http", "url": url})

    targets = [
        http("nodeport", lab.nodeport_url),
        tcp("nodeport-tcp", node, lab.node_port),
        http("clusterip", lab.clusterip_url),
        http("pod-ip", f"http://{lab.pod_ip}:{lab.pod_port}/health"),
        tcp("pod-ip-tcp", lab.pod_ip, lab.pod_port),
        Atom("service-dns", {"kind": "dns", "name": fqdn, "expect_addresses": [lab.cluster_ip]}),
        http("service-fqdn", lab.service_url),
        tcp("service-fqdn-tcp", fqdn, lab.service_port),
        http("service-short", f"http://{short}:{lab.service_port}/health"),
        tcp("drop", node, lab.drop_port, timeout=SLOW),
        tcp("reject", node, lab.reject_port),
        tcp("prohibit", node, lab.prohibit_port),
        tcp("reset", node, lab.reset_port),
        tcp("closed", node, lab.closed_port),
        tcp("unrouted", lab.unrouted_ip, lab.node_port),
        Atom(
            "node-ports",
            {
                "kind": "tcp",
                "host": node,
                "ports": [lab.node_port, lab.reset_port, lab.closed_port, lab.reject_port],
            },
        ),
        Atom("unknown-dns", {"kind": "dns", "name": lab.unknown_name}),
        tcp("unknown-tcp", lab.unknown_name, lab.node_port),
        Atom("v6-only-dns", {"kind": "dns", "name": lab.ipv6_only_name}),
        http("v6-only-http", f"http://{lab.ipv6_only_name}:{lab.node_port}/health"),
        tcp("v6-only-tcp", lab.ipv6_only_name, lab.node_port),
    ]
    return sources, targets


@root
def test_an_ipv6_only_name_from_an_ipv4_only_place_fails_to_connect(netlab: Lab) -> None:
    """Issue #10, in the lab: the http cell beside a dns cell on the same name was `ok` with a
    dns check only, hiding that no connection could be made."""
    text = f"""
version: 1
defaults: {{timeout: 3s}}
sources:
  sched: {{kind: netns, name: {netlab.scheduler_ns}, inherit_env: false}}
targets:
  a-dns: {{kind: dns, name: {netlab.ipv6_only_name}}}
  b-http: {{kind: http, url: "http://{netlab.ipv6_only_name}:{netlab.node_port}/health"}}
"""
    grid = run(text, {}).grid()
    assert grid[("sched", "a-dns")].status == "ok"
    assert grid[("sched", "a-dns")].checks[0].addresses == [netlab.ipv6_only_ip]
    cell = grid[("sched", "b-http")]
    assert cell.status == "unreachable", cell
    assert [c.name for c in cell.checks] == ["dns", "tcp"]
    assert cell.checks[1].family == "ipv6"
    assert cell.checks[1].errno_name in ("EADDRNOTAVAIL", "ENETUNREACH")


@root
def test_every_lab_cell_answers_as_it_does_alone(netlab: Lab) -> None:
    sources, targets = pools(netlab)
    oracle = AloneOracle(DEFAULTS)

    def make(seed: int) -> Generated:
        return generate(seed, sources, targets, DEFAULTS)

    outcome = sweep(range(MATRICES), make, oracle, parallel=6)
    assert outcome.matrices == MATRICES
    assert not outcome.found, "\n\n".join(str(d) for d in outcome.found[:5])
    assert {s[0] for s in oracle.known} == {a.key for a in sources}
    assert {s[1] for s in oracle.known} == {a.key for a in targets}
