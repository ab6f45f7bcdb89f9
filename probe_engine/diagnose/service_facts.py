"""Rule "service-facts": what a Kubernetes Service's own facts say: no ready endpoint, a
selector matching no pod, a NetworkPolicy selecting its pods.

The facts come from TargetInfo.facts, filled by the kubernetes-service target (see facts.py
for how they are read, service_causes.py for what they mean)."""

from __future__ import annotations

from ..results import CellResult, MatrixResult, TargetInfo
from ..status import FAILED
from .cause import Cause, cause
from .cells import by_target, index
from .facts import service_name
from .service_causes import causes

RULE = "service-facts"


def service_facts(result: MatrixResult) -> list[Cause]:
    """One cause per Service whose facts point at a problem (no ready endpoint, a selector
    matching nothing, a NetworkPolicy selecting its pods), citing its cells."""
    cells_by_column = by_target(result)
    by_service: dict[str, list[TargetInfo]] = {}
    for info in index(result).services():
        by_service.setdefault(info.target_name, []).append(info)
    found = []
    for target_name, infos in by_service.items():
        service = causes(infos[0])
        if not service:
            continue
        cells: list[CellResult] = [c for i in infos for c in cells_by_column.get(i.name, [])]
        failing = [c for c in cells if c.status in FAILED]
        ok = [c for c in cells if c.status == "ok"]
        if service[0].rank >= 5:
            failing = []  # worth knowing, explains no failure: cite what works, never an alarm
        found.append(
            cause(
                RULE,
                target_name,
                failing,
                ok if failing else (ok or cells),
                facts={"service": service_name(infos[0]), "causes": [c.facts for c in service]},
                service=service,
                cells=len(cells),
            )
        )
    return found
