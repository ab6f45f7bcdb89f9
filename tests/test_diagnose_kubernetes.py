"""Diagnosis of the ways to one Kubernetes Service (cluster-ip, node-port, dns, dns-short,
endpoints, port-forward) and of the Service's own facts (ready endpoints, selector,
NetworkPolicies). The kubernetes-service target is built in parallel, so these results are
built by hand, in the shapes its columns and facts take (TargetInfo.via, TargetInfo.facts);
every fact is optional and the rules must cope without it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from probe_engine.diagnose import diagnose
from probe_engine.results import (
    CellResult,
    CheckRecord,
    Expectations,
    Finding,
    MatrixRef,
    MatrixResult,
    SourceInfo,
    Summary,
    TargetInfo,
)

PORTS = [{"name": "http", "port": 80, "targetPort": 8000, "nodePort": 30080, "protocol": "TCP"}]
FACTS: dict[str, Any] = {
    "service": "api",
    "namespace": "default",
    "type": "NodePort",
    "cluster_ip": "10.96.0.10",
    "selector": {"app": "api"},
    "ports": PORTS,
    "service_port": 80,
    "target_port": 8000,
    "node_port": 30080,
    "ready": 1,
    "not_ready": 0,
    "pods": 1,
    "network_policies": [],
}
ENDPOINTS = {
    "cluster-ip": ("10.96.0.10", 80),
    "node-port": ("192.168.49.2", 30080),
    "dns": ("api.default.svc.cluster.local", 80),
    "dns-short": ("api", 80),
    "endpoints": ("10.244.0.5", 8000),
    "port-forward": ("127.0.0.1", 41000),
}
ERRNO = {
    "refused": "ECONNREFUSED",
    "timeout": None,
    "unreachable": "EHOSTUNREACH",
}
# Where the story's scheduler runs: on the minikube network, a default route elsewhere.
ON_NODE_NETWORK: dict[str, Any] = {
    "netns": "net:[4026532001]",
    "addresses": ["127.0.0.1", "192.168.49.3"],
    "routes": [
        {"destination": "0.0.0.0/0", "gateway": "172.18.0.1", "device": "eth0"},
        {"destination": "192.168.49.0/24", "gateway": "0.0.0.0", "device": "eth1"},
    ],
    "default_route": True,
    "resolv_conf": {"nameservers": ["127.0.0.11"], "search": [], "options": []},
}
OFF_NETWORK: dict[str, Any] = {
    "netns": "net:[4026532002]",
    "addresses": ["127.0.0.1", "172.19.0.4"],
    "routes": [{"destination": "172.19.0.0/16", "gateway": "0.0.0.0", "device": "eth0"}],
    "default_route": False,
}


def family(address: str) -> str:
    return "ipv6" if ":" in address else "ipv4"


def cell(
    source: str, via: str, status: str, errno_name: str | None = None, **extra: Any
) -> CellResult:
    """A probe of api/<via> from `source`: a tcp check (after a system lookup for dns vias)."""
    host, port = extra.pop("at", ENDPOINTS[via])
    checks: list[CheckRecord] = []
    address = host
    if via.startswith("dns"):
        if status == "dns-error":
            checks.append(
                CheckRecord(
                    name="dns",
                    status="dns-error",
                    host=host,
                    resolver="system",
                    errno_name=errno_name or "EAI_NONAME",
                    reason=extra.pop("reason", "nxdomain"),
                )
            )
        else:
            checks.append(
                CheckRecord(
                    name="dns", status="ok", host=host, resolver="system", addresses=["10.96.0.10"]
                )
            )
            address = "10.96.0.10"
    if status != "dns-error":
        checks.append(
            CheckRecord(
                name="tcp",
                status=status,
                address=address,
                port=port,
                family=family(address),
                errno_name=None if status == "ok" else (errno_name or ERRNO.get(status)),
                source_address="192.168.49.3" if status == "ok" else None,
            )
        )
    return CellResult(
        source=source,
        source_name=source,
        target=f"api/{via}",
        target_name="api",
        endpoint=f"{host}:{port}",
        status=status,
        checks=checks,
        started_at=datetime.now(UTC),
        **extra,
    )


def failed_column(source: str, via: str, message: str) -> CellResult:
    """A column the target could not make concrete (e.g. endpoints with no ready pod)."""
    return CellResult(
        source=source,
        source_name=source,
        target=f"api/{via}",
        target_name="api",
        endpoint=f"api via {via}",
        status="target-error",
        message=message,
    )


def result(
    cells: list[CellResult],
    facts: dict[str, Any] | None = None,
    sources: dict[str, dict[str, Any]] | None = None,
) -> MatrixResult:
    vias = list(dict.fromkeys(c.target.split("/", 1)[1] for c in cells))
    targets = [
        TargetInfo(
            name=f"api/{via}",
            target_name="api",
            kind="kubernetes-service",
            endpoint="{}:{}".format(*ENDPOINTS[via]),
            via=via,
            facts={**(FACTS if facts is None else facts), "via": via},
        )
        for via in vias
    ]
    rows = list(dict.fromkeys(c.source for c in cells))
    now = datetime.now(UTC)
    draft = MatrixResult(
        tool_version="test",
        started_at=now,
        finished_at=now,
        duration_s=0.0,
        matrix=MatrixRef(path="hand-built.yaml", sha256=""),
        summary=Summary(total=len(cells), by_status={}, expectations=Expectations()),
        sources=[
            SourceInfo(
                name=r,
                source_name=r,
                kind="docker",
                facts=(sources or {}).get(r, ON_NODE_NETWORK),
            )
            for r in rows
        ],
        targets=targets,
        cells=cells,
    )
    return draft.model_copy(update={"findings": diagnose(draft)})


def cited(finding: Finding) -> set[tuple[str, str]]:
    return {(e.source, e.target) for e in finding.evidence}


def only(found: MatrixResult, rule: str) -> Finding:
    [finding] = [f for f in found.findings if f.rule == rule]
    return finding


def test_every_way_working_raises_nothing() -> None:
    found = result([cell("scheduler", via, "ok") for via in ENDPOINTS if via != "dns-short"])
    assert found.findings == []


def test_endpoints_ok_and_node_port_refused_points_at_kube_proxy() -> None:
    found = result(
        [
            cell("scheduler", "endpoints", "ok"),
            cell("scheduler", "node-port", "refused"),
            cell("scheduler", "port-forward", "ok"),
        ]
    )
    finding = only(found, "via-differs")
    assert finding.severity == "error"
    assert (
        finding.title == "api: node-port fails from scheduler while port-forward and endpoints work"
    )
    assert "The pods answer on their own addresses" in finding.detail
    assert (
        "the node 192.168.49.2:30080 answers ECONNREFUSED while the pods answer directly: the "
        "node does not forward nodePort 30080 to the pods (kube-proxy not running" in finding.detail
    )
    assert "kube-proxy" in finding.next_step
    assert cited(finding) == {
        ("scheduler", "api/node-port"),
        ("scheduler", "api/endpoints"),
        ("scheduler", "api/port-forward"),
    }
    assert [f.rule for f in found.findings] == ["via-differs"]


def test_probing_the_target_port_instead_of_the_node_port_is_named() -> None:
    found = result(
        [
            cell("scheduler", "endpoints", "ok"),
            cell("scheduler", "node-port", "refused", at=("192.168.49.2", 8000)),
        ]
    )
    finding = only(found, "via-differs")
    assert (
        "the node-port path probes port 8000, which is the Service's port or targetPort, not its "
        "nodePort 30080" in finding.detail
    )
    assert finding.next_step.startswith("Probe the nodePort (192.168.49.2:30080)")


def test_port_forward_ok_and_everything_else_failing_means_the_path_is_the_problem() -> None:
    found = result(
        [
            cell("worker", "port-forward", "ok"),
            cell("worker", "endpoints", "timeout"),
            cell("worker", "cluster-ip", "timeout"),
            cell("worker", "dns", "dns-error"),
            cell("worker", "node-port", "timeout"),
        ],
        sources={"worker": {**ON_NODE_NETWORK, "routes": ON_NODE_NETWORK["routes"][:1]}},
    )
    finding = only(found, "via-differs")
    detail = finding.detail
    assert finding.title == (
        "api: endpoints, cluster-ip, dns and node-port fail from worker while port-forward works"
    )
    assert (
        "The pod is healthy (port-forward through the API server reaches it): the path " in detail
    )
    assert "pod IPs live on the cluster's pod network" in detail
    assert "ClusterIPs are virtual addresses that kube-proxy translates on the nodes" in detail
    assert "worker cannot resolve the Service's name: api.default.svc.cluster.local does not " in (
        detail
    )
    assert "its resolver (nameservers 127.0.0.11) is not the cluster DNS" in detail
    assert "a firewall or security group drops the nodePort range" in detail
    # The row fails almost everything, yet the Service explanation is the one given.
    assert [f.rule for f in found.findings] == ["via-differs"]


def test_a_source_with_no_route_to_the_cluster_ip_is_told_why() -> None:
    found = result(
        [
            cell("worker", "node-port", "ok"),
            cell("worker", "cluster-ip", "unreachable", "ENETUNREACH"),
        ],
        sources={"worker": OFF_NETWORK},
    )
    finding = only(found, "via-differs")
    assert (
        "worker has no route to the ClusterIP 10.96.0.10 (and no default route); ClusterIPs "
        "are virtual" in finding.detail
    )
    assert "only pods and nodes (or hosts that route the service CIDR to a node)" in (
        finding.detail
    )
    assert finding.next_step.startswith("From outside the cluster use the NodePort or port-forward")


def test_endpoints_refused_while_port_forward_works_means_a_loopback_only_app() -> None:
    found = result(
        [
            cell("scheduler", "port-forward", "ok"),
            cell("scheduler", "endpoints", "refused"),
        ]
    )
    finding = only(found, "via-differs")
    assert "the application listens on 127.0.0.1 inside the pod" in finding.detail
    assert "0.0.0.0" in finding.next_step


def test_the_short_name_failing_while_the_full_name_works_is_explained_once() -> None:
    found = result(
        [
            cell("scheduler", "dns", "ok"),
            cell("scheduler", "dns-short", "dns-error"),
        ]
    )
    finding = only(found, "via-differs")
    assert "the short name api fails" in finding.detail
    assert "which pods of namespace default have and scheduler does not" in finding.detail
    assert finding.next_step.startswith("Use the full name api.default.svc.cluster.local")
    # search-list would say it too, about the same cells: not repeated.
    assert [f.rule for f in found.findings] == ["via-differs"]


def test_rows_with_the_same_pattern_share_one_finding() -> None:
    found = result(
        [
            cell(row, via, status)
            for row in ("worker-1", "worker-2")
            for via, status in (("endpoints", "ok"), ("node-port", "refused"))
        ]
    )
    finding = only(found, "via-differs")
    assert finding.title == "api: node-port fails from both sources while endpoints works"
    assert finding.detail.startswith("From worker-1 and worker-2: ")
    assert len(finding.evidence) == 4


def test_no_ready_endpoint_is_the_cause_of_a_service_failing_everywhere() -> None:
    facts = {**FACTS, "ready": 0, "not_ready": 2, "pods": 2}
    cells = []
    for row in ("scheduler", "worker"):
        cells += [
            cell(row, "cluster-ip", "refused"),
            cell(row, "node-port", "refused"),
            failed_column(row, "endpoints", "Service default/api has no ready endpoint"),
            failed_column(row, "port-forward", "Service default/api has no ready endpoint"),
        ]
    found = result(cells, facts)
    [finding] = found.findings
    assert finding.rule == "target-down"
    assert finding.title == (
        "api (api/cluster-ip, api/node-port, api/endpoints and api/port-forward) fails from "
        "both sources: Service default/api has no ready endpoint (2 not ready)"
    )
    assert "its pods exist but fail their readiness probe, or are still starting" in (
        finding.detail
    )
    assert finding.next_step.startswith("`kubectl describe pods -n default -l app=api`")
    assert "probe-engine wait" in finding.next_step
    assert len(finding.evidence) == 8


def test_a_selector_matching_no_pod_is_named() -> None:
    facts = {**FACTS, "ready": 0, "not_ready": 0, "pods": 0}
    found = result(
        [
            cell("scheduler", "cluster-ip", "refused"),
            failed_column("scheduler", "endpoints", "no endpoint at all"),
        ],
        facts,
    )
    [finding] = found.findings
    assert "Service default/api's selector app=api matches no pod" in finding.title
    assert "--show-labels" in finding.next_step


def test_a_network_policy_selecting_the_pods_explains_timeouts_past_port_forward() -> None:
    facts = {
        **FACTS,
        "network_policies": [
            {"name": "only-airflow", "allows_port": True, "allowed_from": ["namespace=airflow"]},
            {"name": "egress-only", "allows_port": True, "note": "restricts egress only"},
        ],
    }
    found = result(
        [
            cell("scheduler", "port-forward", "ok"),
            cell("scheduler", "endpoints", "timeout"),
            cell("scheduler", "cluster-ip", "timeout"),
        ],
        facts,
    )
    finding = only(found, "via-differs")
    assert (
        "Service facts: NetworkPolicy only-airflow selects the pods (app=api): the port is "
        "allowed only from namespace=airflow" in finding.detail
    )
    assert "egress-only" not in finding.detail


def test_a_denying_policy_is_reported_even_when_it_is_the_only_fact() -> None:
    facts = {"network_policies": [{"name": "deny-all", "allows_port": False}]}
    found = result(
        [cell("scheduler", "endpoints", "timeout"), cell("scheduler", "cluster-ip", "timeout")],
        facts,
    )
    [finding] = found.findings
    assert finding.title.endswith("fails from scheduler: NetworkPolicy deny-all selects the pods")
    assert "deny-all does not allow the probed port" in finding.detail


def test_service_facts_alone_when_everything_works_are_information() -> None:
    facts = {**FACTS, "ready": 2, "not_ready": 1}
    found = result(
        [cell("scheduler", "cluster-ip", "ok"), cell("scheduler", "endpoints", "ok")], facts
    )
    finding = only(found, "service-facts")
    assert finding.severity == "info"
    assert finding.title == "api: Service default/api has 2 ready and 1 not-ready endpoints"


def test_missing_facts_are_not_causes_and_break_nothing() -> None:
    found = result(
        [
            cell("scheduler", "endpoints", "ok"),
            cell("scheduler", "node-port", "refused"),
            cell("scheduler", "cluster-ip", "timeout"),
        ],
        facts={},
        sources={"scheduler": {}},
    )
    finding = only(found, "via-differs")
    assert "does not forward nodePort 30080" in finding.detail
    assert "Service facts" not in finding.detail


def test_a_large_matrix_is_diagnosed_quickly() -> None:
    """200 rows x 50 columns, one row and one column failing: two findings, fast."""
    rows = [f"pod-{i}" for i in range(200)]
    cells = []
    for row in rows:
        for column in range(50):
            status = "refused" if row == "pod-7" or column == 3 else "ok"
            cells.append(
                CellResult(
                    source=row,
                    source_name="pods",
                    target=f"t{column}",
                    target_name=f"t{column}",
                    endpoint=f"10.0.0.{column}:80",
                    status=status,
                    checks=[
                        CheckRecord(
                            name="tcp",
                            status=status,
                            address=f"10.0.0.{column}",
                            port=80,
                            errno_name="ECONNREFUSED" if status != "ok" else None,
                        )
                    ],
                )
            )
    now = datetime.now(UTC)
    big = MatrixResult(
        tool_version="test",
        started_at=now,
        finished_at=now,
        duration_s=0.0,
        matrix=MatrixRef(path="big.yaml", sha256=""),
        summary=Summary(total=len(cells), by_status={}, expectations=Expectations()),
        cells=cells,
    )
    # Its cost is measured in bench/ (no timed assertion here: these machines are noisy).
    findings = diagnose(big)
    assert [f.rule for f in findings] == ["source-down", "target-down"]
