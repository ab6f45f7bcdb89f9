"""NetworkPolicies: which select a Service's pods, and whether they let the probed port in.

Evaluated from the policies' own words (podSelector, policyTypes, ingress rules with ports and
peers), as the API server returns them; the facts say which peers are allowed, so the
diagnosis can tell "denied" from "allowed from elsewhere only".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...facts import PolicyFact


def label_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector ({matchLabels, matchExpressions}); an empty one matches everything."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _rule_allows_port(rule: Mapping[str, Any], port: int | None, names: set[str]) -> bool:
    ports = rule.get("ports")
    if not ports:
        return True  # no ports: every port
    for item in ports:
        if str(item.get("protocol", "TCP")).upper() != "TCP":
            continue
        value = item.get("port")
        if value is None:
            return True
        if isinstance(value, str) and not value.isdigit():
            if value in names:
                return True
            continue
        low = int(value)
        high = int(item.get("endPort") or low)
        if port is not None and low <= port <= high:
            return True
    return False


def _describe_peer(peer: Mapping[str, Any]) -> str:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        text = f"ipBlock {block.get('cidr')}"
        if block.get("except"):
            text += f" except {', '.join(block['except'])}"
        return text
    parts = []
    if "podSelector" in peer:
        parts.append(f"pods {_describe_selector(peer['podSelector'])}")
    if "namespaceSelector" in peer:
        parts.append(f"namespaces {_describe_selector(peer['namespaceSelector'])}")
    else:
        parts.append("in the policy's namespace")
    return " ".join(parts)


def _describe_selector(selector: Mapping[str, Any] | None) -> str:
    if not selector or (not selector.get("matchLabels") and not selector.get("matchExpressions")):
        return "(all)"
    terms = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    for expression in selector.get("matchExpressions") or []:
        values = ",".join(expression.get("values") or [])
        terms.append(f"{expression.get('key')} {expression.get('operator')} ({values})".strip())
    return ",".join(terms)


def policy_facts(
    policies: Sequence[Mapping[str, Any]],
    pod_labels: Sequence[Mapping[str, str]],
    port: int | None,
    port_names: set[str],
) -> list[PolicyFact]:
    """The NetworkPolicies that select at least one backing pod, and whether they let the
    probed port in (from some peer; which peers is in `allowed_from`)."""
    found = []
    for policy in policies:
        spec = policy.get("spec") or {}
        selected = sum(
            1 for labels in pod_labels if label_selector_matches(spec.get("podSelector"), labels)
        )
        if not selected:
            continue
        rules = spec.get("ingress") or []
        types = spec.get("policyTypes") or (["Ingress"] + (["Egress"] if "egress" in spec else []))
        name = (policy.get("metadata") or {}).get("name")
        selects = _describe_selector(spec.get("podSelector"))
        if "Ingress" not in types:
            found.append(
                PolicyFact(
                    name=name,
                    policy_types=types,
                    selects_pods=selected,
                    pod_selector=selects,
                    allows_port=True,
                    note="restricts egress only",
                )
            )
            continue
        allowing = [r for r in rules if _rule_allows_port(r, port, port_names)]
        peers = sorted(
            {_describe_peer(p) for r in allowing for p in r.get("from") or []}
            | ({"anywhere"} if any(not r.get("from") for r in allowing) else set())
        )
        found.append(
            PolicyFact(
                name=name,
                policy_types=types,
                selects_pods=selected,
                pod_selector=selects,
                allows_port=bool(allowing),
                ingress_rules=len(rules),
                allowed_from=peers,
            )
        )
    return found
