"""Rule "service-facts": what a Kubernetes Service's own facts say: no ready endpoint, a
selector matching no pod, a NetworkPolicy selecting its pods.

The facts come from TargetInfo.facts, filled by the kubernetes-service target (see facts.py
for how they are read, service_causes.py for what they mean)."""

from __future__ import annotations

from ..results import CellResult, Finding, MatrixResult, TargetInfo
from ..status import FAILED
from .cells import by_target, evidence
from .facts import is_service, service_name
from .service_causes import causes
from .severity import severity


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
