"""Explains a run: rules compare cells and say, in plain words, why one path works and another
does not. Each rule is a function `rule(result) -> list[Cause]` in a module named by its id
(via-differs is via_differs.py), registered in RULES; it finds, and never words. words/
phrases every cause (one phrase per rule id, one grammar for counts and lists), findings.py
makes it a Finding (severity from the expectations, evidence capped). What rules share:
cause.py (the structured cause), cells.py (reading and grouping cells), facts.py (row and
column facts), differences.py (what differs between two rows), service_causes.py (what a
Service's facts say is wrong), no_proxy.py (each client's NO_PROXY rules, replayed).

RULES is in priority order, and the order matters: a cause whose failing cells are all
explained by an earlier one is dropped as a repeat. Row-level first (a container off the
target's network, a source that cannot run or fails everything: that explains all its cells),
then the rules that link columns (ways to one Service, a raw address that is a cluster's,
address families, search lists, readiness races), then one path against another (a
proxy, a CA store, two places), then column-level (a target that fails from every source that
probed it), then facts and lookups, most generic last. Severity follows
one policy (severity.py): a healthy matrix raises no warning or error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..results import CellResult, Finding, MatrixResult
from ..speedups import collector_paused
from .address_family import address_family
from .cause import Cause
from .cells import by_target, fresh
from .cluster_address import cluster_address
from .container_network import container_network
from .cut_short import cut_short
from .dns_failure import dns_failure
from .findings import finding
from .ping_filtered import ping_filtered
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

# Every rule has this one signature: the whole result in, its causes out.
Rule = Callable[[MatrixResult], list[Cause]]

RULES: dict[str, Rule] = {
    "cut-short": cut_short,
    "container-network": container_network,
    "source-down": source_down,
    "via-differs": via_differs,
    "cluster-address": cluster_address,
    "address-family": address_family,
    "search-list": search_list,
    "readiness-race": readiness_race,
    "proxy-differs": proxy_differs,
    "tls-trust": tls_trust,
    "source-differs": source_differs,
    "ping-filtered": ping_filtered,
    "target-down": target_down,
    "service-facts": service_facts,
    "dns-failure": dns_failure,
}

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def diagnose(result: MatrixResult) -> list[Finding]:
    """Every rule's findings without repeats, most severe first (then in rule order)."""
    # A diagnosis makes thousands of small objects and keeps few; a collection in the middle
    # of it rescans the whole run (10,000 cells' models): ~100 ms of a 5000-target run's
    # diagnosis in-process (bench/README.md), for no garbage. Paused, then restored.
    with collector_paused():
        fresh()
        try:
            findings = _findings(result)
            assert not broken_promises(result, findings), broken_promises(result, findings)
        finally:
            fresh()
    return findings


def _findings(result: MatrixResult) -> list[Finding]:
    findings: list[Finding] = []
    explained: set[int] = set()  # the cells explained so far (by identity: one object each)
    # The failing cells of the causes kept, counted into `explained` only when a later cause
    # is checked against them (a scan's one cause has 10,000, and nothing after it).
    pending: list[tuple[CellResult, ...]] = []
    for name, rule in RULES.items():
        try:
            found = rule(result)
            for cause in found:
                for cells in pending:
                    explained.update(id(c) for c in cells if c.status != "ok")
                pending.clear()
                if explained:  # nothing explained yet: every cause is new
                    failing = {id(c) for c in cause.failing if c.status != "ok"}
                    if failing and failing <= explained:
                        continue
                findings.append(finding(cause, result))
                pending.append(cause.failing)
        except Exception as exc:  # a bug in one rule must not cost the run its report
            log.exception("diagnosis rule %s failed", name)
            findings.append(_rule_failed(name, exc))
    findings.sort(key=lambda f: SEVERITY_ORDER[f.severity])
    return findings


def broken_promises(result: MatrixResult, findings: list[Finding]) -> list[str]:
    """What the diagnosis promises of every run, checked on every run while asserts are on
    (the test suite, a plain `python`): every cited cell exists, and a healthy matrix (every
    cell ok, or every failure declared) raises no warning or error."""
    columns = by_target(result)
    problems = [
        f"{f.rule} cites {e.source} x {e.target}, not a cell of this run"
        for f in findings
        for e in f.evidence
        if not any(c.source == e.source for c in columns.get(e.target, []))
    ]
    alarms = [f for f in findings if f.severity != "info"]
    if alarms and all(c.status == "ok" or c.met is True for c in result.cells):
        problems += [f"{f.rule} is a {f.severity} in a healthy matrix: {f.title}" for f in alarms]
    return problems


def _rule_failed(name: str, exc: Exception) -> Finding:
    return Finding(
        rule=name,
        severity="info",
        title=f"The diagnosis rule {name} failed",
        detail=f"{type(exc).__name__}: {exc}. The other rules ran; the cells are unaffected.",
        next_step="Report this with the report.json attached.",
    )


__all__ = ["RULES", "Rule", "diagnose"]
