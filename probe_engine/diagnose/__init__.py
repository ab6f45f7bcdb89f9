"""Explains a run: rules compare cells and say, in plain words, why one path works and another
does not. Each rule is a function `rule(result) -> list[Finding]` in a module named by its id
(via-differs is via_differs.py), registered in RULES. What rules share: cells.py (reading and
grouping cells), facts.py (reading row and column facts), phrasing.py (the words),
severity.py (how loud), differences.py (what differs between two rows), service_causes.py
(what a Service's facts say is wrong), no_proxy.py (why NO_PROXY did not exempt a host).

RULES is in priority order, and the order matters: a finding whose failing cells are all
explained by an earlier finding is dropped as a repeat. Row-level first (a container off the
target's network, a source that cannot run or fails everything: that explains all its cells),
then the rules that link columns (ways to one Service, address families, search lists,
readiness races), then column-level (a target that fails from every source), then per-cell
comparisons and facts, most generic last. Each finding's severity follows one policy
(severity.py): a healthy matrix raises no warning or error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..results import Finding, MatrixResult
from .address_family import address_family
from .container_network import container_network
from .cut_short import cut_short
from .dns_failure import dns_failure
from .proxy_differs import proxy_differs
from .readiness_race import readiness_race
from .search_list import search_list
from .service_facts import service_facts
from .source_differs import source_differs
from .source_down import source_down
from .target_down import target_down
from .tls_trust import tls_trust
from .via_differs import via_differs

log = logging.getLogger("probe_engine.diagnose")

# Every rule has this one signature: the whole result in, its findings out.
Rule = Callable[[MatrixResult], list[Finding]]

RULES: dict[str, Rule] = {
    "cut-short": cut_short,
    "container-network": container_network,
    "source-down": source_down,
    "via-differs": via_differs,
    "address-family": address_family,
    "search-list": search_list,
    "readiness-race": readiness_race,
    "target-down": target_down,
    "proxy-differs": proxy_differs,
    "tls-trust": tls_trust,
    "source-differs": source_differs,
    "service-facts": service_facts,
    "dns-failure": dns_failure,
}

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def diagnose(result: MatrixResult) -> list[Finding]:
    """Every rule's findings without repeats, most severe first (then in rule order)."""
    findings: list[Finding] = []
    explained: set[tuple[str, str]] = set()
    for name, rule in RULES.items():
        try:
            found = rule(result)
        except Exception as exc:  # a bug in one rule must not cost the run its report
            log.exception("diagnosis rule %s failed", name)
            found = [_rule_failed(name, exc)]
        for finding in found:
            failing = {(e.source, e.target) for e in finding.evidence if e.status != "ok"}
            if failing and failing <= explained:
                continue
            explained |= failing
            findings.append(finding)
    return sorted(findings, key=lambda f: SEVERITY_ORDER[f.severity])


def _rule_failed(name: str, exc: Exception) -> Finding:
    return Finding(
        rule=name,
        severity="info",
        title=f"The diagnosis rule {name} failed",
        detail=f"{type(exc).__name__}: {exc}. The other rules ran; the cells are unaffected.",
        next_step="Report this with the report.json attached.",
    )


__all__ = ["RULES", "Rule", "diagnose"]
