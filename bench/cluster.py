"""The cluster as the engine: a `kubernetes-nodes` source over 50 nodes x 20 targets.

    .venv/bin/python -m bench.cluster                   # root; a few minutes
    .venv/bin/python -m bench.cluster --nodes 50 --targets 20 --repeats 3

Through the Kubernetes test server (tests/kubelab): every node is a network namespace of the
lab (tests/lab's node and 49 more on its bridge, tests/kubelab/nodelab.py), every probe pod a
namespace of its own wired to its node (or, with host_network, the node's own), the agent a
real process in it; only the control plane is emulated, over the real REST wire. For 1, 10
and N nodes, pods on the pod network and on the host network, `probe-engine run` in a child
process (started by a small launcher, so its peak RSS is its own): wall time, API requests
per node (counted by the server: create, the log, delete) and for the whole source (nodes,
the pods' list and watch), and peak RSS. The per-node cost is the slope between 10 and N.
Every packet stays in the lab's namespaces; nothing is resolved by this machine's resolver.
Not a test: prints a table and writes bench/cluster_results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.run import child
from tests.kubelab import apiserver as kl
from tests.kubelab.nodelab import NodeLab
from tests.lab.netlab import Lab

HERE = Path(__file__).resolve().parent
PREFIX = "pe-bench-k"
NS = "probe-engine"


def targets(lab: Lab, count: int) -> str:
    """`count` targets on the lab: the Service's ways in, failures of every kind, names."""
    pool = [
        f'node-port: {{kind: http, url: "http://{lab.node_ip}:{lab.node_port}/health"}}',
        f"node-port-tcp: {{kind: tcp, host: {lab.node_ip}, port: {lab.node_port}}}",
        f'cluster-ip: {{kind: http, url: "http://{lab.cluster_ip}:{lab.service_port}/health"}}',
        f"cluster-ip-tcp: {{kind: tcp, host: {lab.cluster_ip}, port: {lab.service_port}}}",
        f"service-dns: {{kind: dns, name: {lab.service_fqdn}}}",
        f'service-url: {{kind: http, url: "{lab.service_url}"}}',
        f"unknown-name: {{kind: dns, name: {lab.unknown_name}}}",
        f"pod: {{kind: tcp, host: {lab.pod_ip}, port: {lab.pod_port}}}",
        f"closed: {{kind: tcp, host: {lab.node_ip}, port: {lab.closed_port}}}",
        f"reset: {{kind: tcp, host: {lab.node_ip}, port: {lab.reset_port}}}",
        f"reject: {{kind: tcp, host: {lab.node_ip}, port: {lab.reject_port}}}",
        f"prohibit: {{kind: tcp, host: {lab.node_ip}, port: {lab.prohibit_port}}}",
        f"drop: {{kind: tcp, host: {lab.node_ip}, port: {lab.drop_port}}}",
        f"unrouted: {{kind: tcp, host: {lab.unrouted_ip}, port: 80}}",
    ]
    extra = [
        f'path-{i}: {{kind: http, url: "http://{lab.cluster_ip}:{lab.service_port}/health?{i}"}}'
        for i in range(max(0, count - len(pool)))
    ]
    return "\n  ".join((pool + extra)[:count])


def matrix(kubeconfig: Path, lab: Lab, nodes: int, count: int, host_network: bool) -> str:
    return f"""
kubernetes: {{kubeconfig: '{kubeconfig}'}}
defaults: {{timeout: 1s, deadline: 5m}}
sources:
  nodes: {{kind: kubernetes-nodes, namespace: {NS}, host_network: {str(host_network).lower()},
          max_nodes: {nodes}}}
targets:
  {targets(lab, count)}
"""


def one_run(
    server: kl.ApiServer,
    path: Path,
    kubeconfig: Path,
    lab: Lab,
    nodes: int,
    count: int,
    host_network: bool,
) -> dict[str, Any]:
    path.write_text(matrix(kubeconfig, lab, nodes, count, host_network))
    before = len(server.requests)
    argv = [sys.executable, "-m", "probe_engine", "run", str(path), "--no-reports"]
    argv += ["--no-progress", "--output", "none", "--fail-on", "never"]
    wall, status, rss = child(argv, timeout=600)
    server.settle()
    requests = server.requests[before:]
    pods = [r for r in requests if f"/namespaces/{NS}/pods" in r.path]
    per_pod = [r for r in pods if r.path.count("/") > 5 or r.method == "POST"]
    left = server.store.list("Pod", NS)
    return {
        "nodes": nodes,
        "targets": count,
        "cells": nodes * count,
        "host_network": host_network,
        "exit_status": status,
        "wall_s": round(wall, 3),
        "peak_rss_mb": round(rss, 1),
        "api_requests": len(requests),
        "api_requests_per_node": round(len(per_pod) / nodes, 2),
        "api_requests_shared": len(requests) - len(per_pod),
        "pods_left": len(left),
        "pod_namespaces_left": len(server.kubelet.namespaces()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--targets", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)")
        return 2
    results: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    lab = Lab.up(PREFIX)
    nodes = NodeLab(lab, extra=args.nodes - 1)
    try:
        started = time.monotonic()
        nodes.up()
        print(f"lab: {args.nodes} node namespaces up in {time.monotonic() - started:.2f} s")
        with kl.ApiServer() as server, tempfile.TemporaryDirectory() as folder:
            nodes.register(server)
            server.store.put({"kind": "Namespace", "metadata": {"name": NS}})
            kubeconfig = server.write_kubeconfig(Path(folder) / "kubeconfig")
            for host_network in (False, True):
                for count in sorted({1, 10, args.nodes}):
                    samples = [
                        one_run(
                            server,
                            Path(folder) / "m.yaml",
                            kubeconfig,
                            lab,
                            count,
                            args.targets,
                            host_network,
                        )
                        for _ in range(args.repeats)
                    ]
                    best = min(samples, key=lambda s: s["wall_s"])
                    best["wall_s_median"] = statistics.median(s["wall_s"] for s in samples)
                    best["samples"] = [s["wall_s"] for s in samples]
                    results.append(best)
                    print(
                        f"{'host' if host_network else 'pod '} network {count:3d} nodes x "
                        f"{args.targets} targets: {best['wall_s']:6.2f} s (median "
                        f"{best['wall_s_median']:.2f}), {best['api_requests_per_node']} API "
                        f"requests per node + {best['api_requests_shared']} shared, peak RSS "
                        f"{best['peak_rss_mb']} MB, pods left {best['pods_left']}, namespaces "
                        f"left {best['pod_namespaces_left']}"
                    )
    finally:
        nodes.down()
        lab.down()
    slopes = {}
    for host_network in (False, True):
        runs = {r["nodes"]: r for r in results if r["host_network"] == host_network}
        if 10 in runs and args.nodes in runs and args.nodes > 10:
            slope = (runs[args.nodes]["wall_s"] - runs[10]["wall_s"]) / (args.nodes - 10)
            rss = (runs[args.nodes]["peak_rss_mb"] - runs[10]["peak_rss_mb"]) / (args.nodes - 10)
            slopes["host" if host_network else "pod"] = {
                "seconds_per_node": round(slope, 4),
                "rss_mb_per_node": round(rss, 3),
            }
            print(
                f"per node ({'host' if host_network else 'pod'} network, 10 -> {args.nodes}): "
                f"{slope * 1000:.0f} ms, {rss:.2f} MB of peak RSS"
            )
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "runs": results,
        "per_node": slopes,
    }
    (HERE / "cluster_results.json").write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"load {load_before[0]:.1f} -> {os.getloadavg()[0]:.1f}; wrote bench/cluster_results.json"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
