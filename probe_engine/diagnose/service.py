"""Rule "service-facts": what a Kubernetes Service's own facts say: no ready endpoint, a
selector matching no pod, a NetworkPolicy selecting its pods.

The facts come from TargetInfo.facts, filled by the kubernetes-service target. Names read:
service, namespace, selector (mapping or "k=v,..." text), ports (list of {name, port,
targetPort, nodePort}), ready / not_ready (counts or address lists; also accepted as
ready_endpoints / not_ready_endpoints or endpoints: {ready, not_ready}), pods (pods matching
the selector: a count or a list), network_policies (names, or {name, allows_port, ...}).
Every fact is optional: a missing fact is not a cause.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..results import CellResult, Finding, MatrixResult, TargetInfo
from ..status import FAILED
from .common import by_target, evidence, listing, severity

SERVICE_KINDS = ("kubernetes-service", "kubernetes")


def is_service(info: TargetInfo) -> bool:
    return info.kind in SERVICE_KINDS or info.via is not None or "service" in info.facts


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, list | tuple):
        return len(value)
    return None


def ready_counts(facts: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """(ready, not ready) endpoint counts, whichever spelling the facts use."""
    nested = facts.get("endpoints")
    nested = nested if isinstance(nested, Mapping) else {}
    ready = next(
        (
            c
            for c in (
                _count(facts.get("ready")),
                _count(facts.get("ready_endpoints")),
                _count(nested.get("ready")),
            )
            if c is not None
        ),
        None,
    )
    not_ready = next(
        (
            c
            for c in (
                _count(facts.get("not_ready")),
                _count(facts.get("not_ready_endpoints")),
                _count(nested.get("not_ready")),
            )
            if c is not None
        ),
        None,
    )
    return ready, not_ready


def selector_text(facts: Mapping[str, Any]) -> str | None:
    value = facts.get("selector")
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in value.items()) or None
    return str(value) if value else None


def service_name(info: TargetInfo) -> str:
    name = info.facts.get("service") or info.target_name
    namespace = info.facts.get("namespace")
    return f"{namespace}/{name}" if namespace else str(name)


def service_ports(facts: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Service ports with snake_case or camelCase keys normalised to port/target_port/node_port."""
    found = []
    for item in facts.get("ports") or []:
        if not isinstance(item, Mapping):
            continue
        found.append(
            {
                "name": item.get("name"),
                "port": item.get("port"),
                "target_port": item.get("targetPort", item.get("target_port")),
                "node_port": item.get("nodePort", item.get("node_port")),
            }
        )
    return found


@dataclass(frozen=True)
class Policy:
    name: str
    allows_port: bool | None
    allowed_from: list[str] | None = None

    @property
    def open(self) -> bool:
        """Lets the port in from anywhere: not a cause."""
        return self.allows_port is True and (
            self.allowed_from is None or "anywhere" in self.allowed_from
        )


def policies(facts: Mapping[str, Any]) -> list[Policy]:
    found = []
    for item in facts.get("network_policies") or []:
        if isinstance(item, Mapping):
            allows = item.get("allows_port", item.get("allows", item.get("allowed")))
            peers = item.get("allowed_from")
            found.append(
                Policy(
                    str(item.get("name", "?")),
                    allows if isinstance(allows, bool) else None,
                    [str(p) for p in peers] if isinstance(peers, list) else None,
                )
            )
        elif item:
            found.append(Policy(str(item), None))
    return found


@dataclass(frozen=True)
class Cause:
    """A fact about the Service that explains failures, strongest first (lower rank)."""

    rank: int
    short: str
    why: str
    next_step: str
    facts: dict[str, Any]

    @property
    def text(self) -> str:
        return f"{self.short}: {self.why}" if self.why else self.short


def causes(info: TargetInfo) -> list[Cause]:
    """What the Service's facts alone say is wrong, most likely first."""
    facts = info.facts
    name = service_name(info)
    namespace = facts.get("namespace")
    ns = f" -n {namespace}" if namespace else ""
    selector = selector_text(facts)
    ready, not_ready = ready_counts(facts)
    pods = _count(facts.get("pods", facts.get("matching_pods")))
    found: list[Cause] = []
    if facts.get("type") == "ExternalName":
        pass  # a DNS alias: it has no endpoints of its own to count
    elif ready == 0:
        found.append(_no_ready(name, ns, facts, selector, not_ready, pods))
    elif ready and not_ready:
        found.append(
            Cause(
                6,
                f"Service {name} has {ready} ready and {not_ready} not-ready endpoints",
                "traffic only goes to the ready ones",
                f"`kubectl get pods{ns} -l {selector or '<selector>'}` to see which are not ready.",
                {"ready": ready, "not_ready": not_ready},
            )
        )
    blocking = [p for p in policies(facts) if not p.open]
    if blocking:
        denied = [p.name for p in blocking if p.allows_port is False]
        names = [p.name for p in blocking]
        one = len(names) == 1
        short = f"NetworkPolicy {listing(names)} select{'s' if one else ''} the pods"
        if selector:
            short += f" ({selector})"
        peers = sorted({f for p in blocking if p.allowed_from for f in p.allowed_from})
        if denied:
            why = (
                f"{listing(denied)} do{'es' if len(denied) == 1 else ''} not allow the probed "
                "port, so connections to the pods are dropped (a timeout, not a refusal)"
            )
        elif peers:
            why = (
                f"the port is allowed only from {listing(peers)}; traffic from anywhere else "
                "is dropped (a timeout, not a refusal)"
            )
        else:
            why = (
                "only the peers and ports it allows get through; traffic from anywhere else is "
                "dropped (a timeout, not a refusal)"
            )
        found.append(
            Cause(
                3 if denied else 4,
                short,
                why,
                f"`kubectl describe networkpolicy{ns} {names[0]}`: allow the source's namespace "
                "or pod labels (or an ipBlock) and the port.",
                {"network_policies": names, "denying": denied, "allowed_from": peers},
            )
        )
    return sorted(found, key=lambda c: c.rank)


def _no_ready(
    name: str,
    ns: str,
    facts: Mapping[str, Any],
    selector: str | None,
    not_ready: int | None,
    pods: int | None,
) -> Cause:
    service = facts.get("service") or name.rsplit("/", 1)[-1]
    if not_ready:
        return Cause(
            1,
            f"Service {name} has no ready endpoint ({not_ready} not ready)",
            "its pods exist but fail their readiness probe, or are still starting",
            f"`kubectl describe pods{ns} -l {selector or '<selector>'}` (readiness probe, "
            "events); wait for readiness before testing (`probe-engine wait`).",
            {"ready": 0, "not_ready": not_ready},
        )
    if "selector" in facts and not selector:
        return Cause(
            2,
            f"Service {name} has no selector and no endpoints",
            "nothing fills its endpoints unless an EndpointSlice is created by hand",
            f"Give Service {name} a selector matching its pods.",
            {"ready": 0, "selector": None},
        )
    if selector and pods == 0:
        return Cause(
            1,
            f"Service {name}'s selector {selector} matches no pod",
            "so it has no endpoint at all",
            f"Compare `kubectl get pods{ns} -l {selector}` with the pods' labels "
            f"(`kubectl get pods{ns} --show-labels`).",
            {"ready": 0, "not_ready": 0, "selector": selector, "pods": 0},
        )
    if selector and pods:
        return Cause(
            1,
            f"Service {name} has no endpoint although its selector {selector} matches {pods} "
            "pod(s)",
            "they have no IP yet (Pending), or the Service's targetPort names a port the pods "
            "do not declare",
            f"`kubectl get pods{ns} -l {selector} -o wide` and compare the Service's "
            "targetPort with the containers' ports.",
            {"ready": 0, "selector": selector, "pods": pods},
        )
    if selector and not_ready == 0:
        return Cause(
            1,
            f"Service {name} has no endpoint at all, ready or not",
            f"its selector {selector} matches no running pod",
            f"Compare `kubectl get pods{ns} -l {selector}` with the pods' labels "
            f"(`kubectl get pods{ns} --show-labels`).",
            {"ready": 0, "not_ready": 0, "selector": selector},
        )
    return Cause(
        2,
        f"Service {name} has no ready endpoint",
        "",
        f"`kubectl get endpointslices{ns} -l kubernetes.io/service-name={service}` and the "
        "pods' state.",
        {"ready": 0, "not_ready": not_ready, "pods": pods},
    )


def service_facts(result: MatrixResult) -> list[Finding]:
    """One finding per Service whose facts point at a problem (no ready endpoint, a selector
    matching nothing, a NetworkPolicy selecting its pods), citing its cells."""
    cells_by_column = by_target(result)
    by_service: dict[str, list[TargetInfo]] = {}
    for info in result.targets:
        if is_service(info):
            by_service.setdefault(info.target_name, []).append(info)
    findings = []
    for target_name, infos in by_service.items():
        found = causes(infos[0])
        if not found:
            continue
        cells: list[CellResult] = [c for i in infos for c in cells_by_column.get(i.name, [])]
        failing = [c for c in cells if c.status in FAILED]
        ok = [c for c in cells if c.status == "ok"]
        top = found[0]
        if top.rank >= 5:
            # Worth knowing, explains no failure: cite what works, never an alarm.
            failing = []
        sev = severity(failing, contradiction=False) if failing else "info"
        title = f"{target_name}: {top.short}"
        detail = "; ".join(c.text for c in found) + "."
        if failing:
            detail += (
                f" {len(failing)} of {len(cells)} cells of {target_name} fail"
                + (f"; {len(ok)} succeed" if ok else "")
                + "."
            )
        findings.append(
            Finding(
                rule="service-facts",
                severity=sev,
                title=title,
                detail=detail,
                evidence=evidence(failing or ok or cells),
                next_step=top.next_step,
                facts={"service": service_name(infos[0]), "causes": [c.facts for c in found]},
            )
        )
    return findings
