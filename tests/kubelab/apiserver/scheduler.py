"""The scheduler's decision for one pod: the node it binds to, or the reason none fits, worded
as kube-scheduler words it ("0/3 nodes are available: 1 node(s) were unschedulable, ...").

The filters probe-engine's pods meet: a cordoned node (spec.unschedulable), node affinity
(required terms, matchExpressions on labels and matchFields on metadata.name) and nodeSelector,
and taints with effect NoSchedule or NoExecute that the pod does not tolerate. Resources and
ports are not modelled: nodes have room.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from .resources import JSON

UNSCHEDULABLE = "node(s) were unschedulable"
AFFINITY = "node(s) didn't match Pod's node affinity/selector"
BLOCKING_EFFECTS = ("NoSchedule", "NoExecute")


def schedule(pod: JSON, nodes: Sequence[JSON]) -> tuple[str | None, str]:
    """(node name, "") for the first node that fits (by name), else (None, the message)."""
    reasons: Counter[str] = Counter()
    for node in sorted(nodes, key=lambda n: n["metadata"]["name"]):
        reason = _why_not(pod, node)
        if reason is None:
            return node["metadata"]["name"], ""
        reasons[reason] += 1
    total = len(nodes)
    listed = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
    message = f"0/{total} nodes are available"
    if listed:
        message += f": {listed}"
    message += (
        f". preemption: 0/{total} nodes are available: {total} Preemption is not helpful for "
        "scheduling."
    )
    return None, message


def _why_not(pod: JSON, node: JSON) -> str | None:
    spec = pod.get("spec") or {}
    labels = node["metadata"].get("labels") or {}
    if not _selector_matches(spec.get("nodeSelector") or {}, labels) or not _affinity_matches(
        spec, node
    ):
        return AFFINITY
    if (node.get("spec") or {}).get("unschedulable") and not _tolerated(
        {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
        spec.get("tolerations") or [],
    ):
        return UNSCHEDULABLE
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in BLOCKING_EFFECTS and not _tolerated(
            taint, spec.get("tolerations") or []
        ):
            return f"node(s) had untolerated taint {{{taint['key']}: {taint.get('value', '')}}}"
    return None


def _selector_matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def _affinity_matches(spec: JSON, node: JSON) -> bool:
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms")
    if not terms:
        return True
    labels = node["metadata"].get("labels") or {}
    fields = {"metadata.name": node["metadata"]["name"]}
    return any(
        all(_expression(e, labels) for e in term.get("matchExpressions") or [])
        and all(_expression(e, fields) for e in term.get("matchFields") or [])
        and (term.get("matchExpressions") or term.get("matchFields"))
        for term in terms
    )


def _expression(expression: Mapping[str, Any], values: Mapping[str, str]) -> bool:
    key, operator = expression.get("key", ""), expression.get("operator", "")
    wanted = [str(v) for v in expression.get("values") or []]
    present, value = key in values, values.get(key)
    if operator == "In":
        return present and value in wanted
    if operator == "NotIn":
        return not present or value not in wanted
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt") and present and wanted:
        try:
            number, bound = int(str(value)), int(wanted[0])
        except ValueError:
            return False
        return number > bound if operator == "Gt" else number < bound
    return False


def _tolerated(taint: Mapping[str, Any], tolerations: Sequence[Mapping[str, Any]]) -> bool:
    for toleration in tolerations:
        effect = toleration.get("effect") or ""
        if effect and effect != taint.get("effect"):
            continue
        operator = toleration.get("operator") or "Equal"
        key = toleration.get("key") or ""
        if operator == "Exists" and (not key or key == taint.get("key")):
            return True
        if (
            operator == "Equal"
            and key == taint.get("key")
            and (toleration.get("value") or "") == (taint.get("value") or "")
        ):
            return True
    return False
