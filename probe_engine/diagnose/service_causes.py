"""What a Kubernetes Service's own facts say is wrong, strongest first: no ready endpoint, a
selector matching no pod, a NetworkPolicy selecting its pods. Rules "service-facts",
"target-down" and "via-differs" cite these causes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..facts import ServiceFacts
from ..results import TargetInfo
from .facts import policies, selector_text, service_facts_of, service_name
from .grammar import listing


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
    facts = service_facts_of(info)
    name = service_name(info)
    namespace = facts.get("namespace")
    ns = f" -n {namespace}" if namespace else ""
    selector = selector_text(facts)
    ready, not_ready = facts.get("ready"), facts.get("not_ready")
    found: list[Cause] = []
    if facts.get("type") == "ExternalName":
        pass  # a DNS alias: it has no endpoints of its own to count
    elif ready == 0:
        found.append(_no_ready(name, facts))
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


def _no_ready(name: str, facts: ServiceFacts) -> Cause:
    """Why the Service `name` has no ready endpoint, as precisely as its facts tell."""
    namespace = facts.get("namespace")
    ns = f" -n {namespace}" if namespace else ""
    selector = selector_text(facts)
    not_ready, pods = facts.get("not_ready"), facts.get("pods")
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
