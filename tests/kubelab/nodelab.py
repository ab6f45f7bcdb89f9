"""Nodes for the kubelab's kubelet on the network-namespace lab: the lab's node namespace is node
`minikube`, and more nodes join its "minikube" bridge, each a namespace of its own, so that pods
the API server creates run on a real data path.

    nodes = NodeLab(lab, extra=3, firewalled={"minikube-m03"})
    nodes.up()                    # namespaces, links, routes, kube-proxy's NodePort rules
    nodes.register(server)        # Node objects in the store, a kubelet runtime per node
    ...
    nodes.down()                  # also what a killed run left (found by name)

Each node has a bridge `cbr0` with its pod CIDR (10.245.N.0/24, N the node's index) and
masquerades what its pods send elsewhere, as a CNI plugin with SNAT does; pods route the lab's
ranges through it and have no default route. An extra node (`<prefix>-nNN`, 10.231.49.(100+N)
on the bridge) routes the service CIDR and the lab's pod network via the lab's node (its
ClusterIP rules live there), answers the Service's NodePort on its own address as kube-proxy
would (DNAT to the lab's pod, masqueraded so the answer comes back through it), and resolves
through the lab's dnsmasq. A `firewalled` node drops its outgoing and forwarded traffic to the
NodePort range: a host firewall, the kind of difference "from which nodes does it work?" finds.
While the nodes are up, an `unreachable` route for 10.245.0.0/16 guards the root namespace.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import zlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from tests.kubelab import apiserver as kl
from tests.kubelab.apiserver.kubelet import NodeRuntime
from tests.lab.netlab import NETNS_ETC, NETNS_RUN, Lab, _ip_batch, _need, _run, _run_all, in_netns

POD_CIDRS = "10.245.0.0/16"
FIRST_EXTRA_IP = 100
NODE_PORT_RANGE = "30000:32767"


@dataclass(frozen=True)
class ClusterNode:
    name: str  # the Kubernetes node name
    netns: str
    ip: str
    pod_cidr: str
    firewalled: bool = False


@dataclass
class NodeLab:
    lab: Lab
    extra: int = 2
    firewalled: Collection[str] = ()
    nodes: list[ClusterNode] = field(default_factory=list)

    # ---- names -------------------------------------------------------------------------------

    @property
    def guard_metric(self) -> int:
        return 40000 + zlib.crc32(f"{self.lab.prefix}-nodes".encode()) % 20000

    def plan(self) -> list[ClusterNode]:
        lab = self.lab
        nodes = [ClusterNode("minikube", lab.node_ns, lab.node_ip, "10.245.0.0/24")]
        for index in range(1, self.extra + 1):
            name = f"minikube-m{index + 1:02d}"
            nodes.append(
                ClusterNode(
                    name,
                    f"{lab.prefix}-n{index:02d}",
                    f"10.231.49.{FIRST_EXTRA_IP + index}",
                    f"10.245.{index}.0/24",
                    name in self.firewalled,
                )
            )
        return nodes

    @property
    def pod_routes(self) -> tuple[str, ...]:
        return (*self.lab.guard_cidrs, POD_CIDRS)

    # ---- lifecycle ---------------------------------------------------------------------------

    def up(self) -> list[ClusterNode]:
        self.down()  # what a killed run left with this prefix
        self.nodes = self.plan()
        try:
            _run([_need("ip"), "route", "replace", "unreachable", POD_CIDRS, "metric",
                  str(self.guard_metric)])  # fmt: skip
            extra = self.nodes[1:]
            _ip_batch(f"netns add {node.netns}" for node in extra)
            self._wire_bridge_ports(extra)
            self._wire_nodes()
            self._write_etc(extra)
            self._configure()
        except BaseException:
            self.down()
            raise
        return self.nodes

    def _wire_bridge_ports(self, extra: Sequence[ClusterNode]) -> None:
        lines = []
        for index, node in enumerate(extra, start=1):
            port = f"vn{index:02d}"
            lines += [
                f"link add {port} type veth peer name eth0 netns {node.netns}",
                f"link set {port} master {self.lab.bridge_name} up",
            ]
        if lines:
            _ip_batch(lines, self.lab.node_ns)

    def _wire_nodes(self) -> None:
        lab = self.lab
        jobs: list[tuple[Sequence[str], str | None]] = []
        for node in self.nodes:
            gateway = node.pod_cidr.replace(".0/24", ".1/24")
            lines = [
                "link add cbr0 type bridge",
                f"addr add {gateway} dev cbr0",
                "link set cbr0 up",
            ]
            if node.netns != lab.node_ns:
                lines = [
                    "link set lo up",
                    f"addr add {node.ip}/24 dev eth0",
                    "link set eth0 up",
                    *lines,
                    f"route add {lab.service_cidr} via {lab.node_ip}",
                    f"route add {lab.pod_subnet} via {lab.node_ip}",
                ]
            jobs.append(([_need("ip"), "-n", node.netns, "-batch", "-"], "\n".join(lines) + "\n"))
        _run_all(jobs)

    def _write_etc(self, extra: Sequence[ClusterNode]) -> None:
        source = NETNS_ETC / self.lab.scheduler_ns  # the lab's resolver, hosts, nsswitch.conf
        for node in extra:
            folder = NETNS_ETC / node.netns
            folder.mkdir(parents=True, exist_ok=True)
            for item in ("resolv.conf", "hosts", "nsswitch.conf"):
                if (source / item).is_file():
                    shutil.copyfile(source / item, folder / item)

    def _configure(self) -> None:
        sysctl, restore = _need("sysctl"), _need("iptables-restore")
        jobs: list[tuple[Sequence[str], str | None]] = []
        for node in self.nodes:
            if node.netns != self.lab.node_ns:
                settings = ["net.ipv4.ip_forward=1", "net.ipv4.icmp_ratelimit=0",
                            "net.ipv4.tcp_syn_retries=1"]  # fmt: skip
                jobs.append((in_netns(node.netns, [sysctl, "-q", "-w", *settings]), None))
            jobs.append((in_netns(node.netns, [restore, "--noflush"]), self.rules(node)))
        _run_all(jobs)

    def rules(self, node: ClusterNode) -> str:
        """The node's masquerade for its pods; for an extra node, kube-proxy's NodePort rules
        and, if firewalled, the host firewall."""
        lab = self.lab
        nat = [
            "*nat",
            f"-A POSTROUTING -s {node.pod_cidr} ! -d {node.pod_cidr} -j MASQUERADE",
        ]
        target = f"{lab.pod_ip}:{lab.pod_port}"
        if node.netns != lab.node_ns:
            for chain in ("PREROUTING", "OUTPUT"):
                nat.append(
                    f"-A {chain} -d {node.ip} -p tcp --dport {lab.node_port} -j DNAT "
                    f"--to-destination {target}"
                )
            nat.append(
                f"-A POSTROUTING -d {lab.pod_ip} -p tcp --dport {lab.pod_port} -j MASQUERADE"
            )
        text = "\n".join([*nat, "COMMIT", ""])
        if node.firewalled:
            drop = f"-p tcp --dport {NODE_PORT_RANGE} -j DROP"
            text += "\n".join(["*filter", f"-A OUTPUT {drop}", f"-A FORWARD {drop}", "COMMIT", ""])
        return text

    def register(self, server: kl.ApiServer, *, cordoned: Collection[str] = ()) -> None:
        """Put each node in the store (and the `cordoned` names, nodes without a namespace
        whose spec says unschedulable) and give each a kubelet runtime."""
        for node in self.nodes:
            server.store.put(kl.node(node.name, node.ip, pod_cidr=node.pod_cidr))
            server.kubelet.add_node(
                node.name,
                NodeRuntime(
                    netns=node.netns,
                    pod_cidr=node.pod_cidr,
                    pod_routes=self.pod_routes,
                    node_ip=node.ip,
                ),
            )
        for index, name in enumerate(cordoned, start=len(self.nodes)):
            server.store.put(
                kl.node(name, f"10.231.49.{FIRST_EXTRA_IP + index}", unschedulable=True)
            )

    def down(self) -> list[str]:
        """Remove the extra nodes, every pod namespace left on any node, the lab node's
        bridge and rules for pods, and the guard route. Works from names alone."""
        prefix = re.escape(self.lab.prefix)
        ours = re.compile(rf"^{prefix}-(?:n\d\d(?:-p\d+)?|node-p\d+)$")
        present = sorted(
            p.name for p in NETNS_RUN.glob(f"{self.lab.prefix}-*") if ours.match(p.name)
        )
        removed: list[str] = []
        if present:
            _ip_batch([f"netns del {name}" for name in present], force=True)
            removed += [f"netns {name}" for name in present]
        for name in present:
            shutil.rmtree(NETNS_ETC / name, ignore_errors=True)
        lab_node = NETNS_RUN / self.lab.node_ns
        if lab_node.exists():
            ip = _need("ip")
            links = subprocess.run(
                [ip, "-n", self.lab.node_ns, "-o", "link", "show"],
                capture_output=True, text=True, check=False,
            ).stdout  # fmt: skip
            stale = ["link del cbr0"] if " cbr0:" in links else []
            stale += [f"link del {m}" for m in re.findall(r"\d+: (vn\d\d)@", links)]
            if stale:
                _ip_batch(stale, self.lab.node_ns, force=True)
                removed += stale
            rule = "-s 10.245.0.0/24 ! -d 10.245.0.0/24 -j MASQUERADE"
            with contextlib.suppress(Exception):
                _run(in_netns(self.lab.node_ns, [_need("iptables"), "-t", "nat", "-D",
                                                 "POSTROUTING", *rule.split()]))  # fmt: skip
        with contextlib.suppress(Exception):
            _run([_need("ip"), "route", "del", "unreachable", POD_CIDRS, "metric",
                  str(self.guard_metric)])  # fmt: skip
        return removed

    def pod_namespaces(self) -> list[str]:
        """Pod namespaces on these nodes that exist now (a clean run leaves none)."""
        prefix = re.escape(self.lab.prefix)
        pods = re.compile(rf"^{prefix}-(?:n\d\d|node)-p\d+$")
        return sorted(p.name for p in NETNS_RUN.glob(f"{self.lab.prefix}-*") if pods.match(p.name))
