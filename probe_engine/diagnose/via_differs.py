"""Rule "via-differs": one source, several ways to one Kubernetes Service (columns of one
target whose TargetInfo.via is cluster-ip, node-port, dns, endpoints or port-forward), and
not all of them work. What each difference implies:

- port-forward works, the rest fails: the pod is healthy; the path is the problem.
- endpoints work, node-port is refused: the node does not forward that nodePort (kube-proxy),
  or the probed port is the targetPort, not the nodePort.
- cluster-ip fails from a source outside the cluster network: ClusterIPs are virtual, only
  pods and nodes (or hosts routing the service CIDR to a node) reach them.
- dns fails to resolve: the source's resolver is not the cluster DNS; dns-short fails while
  dns works: the short name only resolves from pods of the Service's namespace (search list).
- endpoints refused while port-forward works: the app listens on the pod's loopback only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..results import CellResult, MatrixResult, TargetInfo
from ..status import FAILED
from .cause import Cause, cause
from .cells import by_target, index
from .facts import service_name

RULE = "via-differs"

# Closest to the pod first: the order in which a reader narrows the problem down.
VIA_ORDER = ("port-forward", "endpoints", "cluster-ip", "dns", "dns-short", "node-port")


@dataclass
class Row:
    """One row's outcome per via for one Service."""

    ok: dict[str, list[CellResult]] = field(default_factory=dict)
    failing: dict[str, list[CellResult]] = field(default_factory=dict)


def order(via: str) -> int:
    return VIA_ORDER.index(via) if via in VIA_ORDER else len(VIA_ORDER)


def via_differs(result: MatrixResult) -> list[Cause]:
    """One cause per Service and outcome pattern (rows with the same pattern together)."""
    columns: dict[str, list[TargetInfo]] = {}
    for info in index(result).via:
        columns.setdefault(info.target_name, []).append(info)
    cells_by_column = by_target(result)
    found = []
    for target_name, infos in columns.items():
        if len({i.via for i in infos}) < 2:
            continue
        via_of = {i.name: str(i.via) for i in infos}
        rows: dict[str, Row] = {}
        for info in infos:
            for cell in cells_by_column.get(info.name, []):
                row = rows.setdefault(cell.source, Row())
                if cell.status == "ok":
                    row.ok.setdefault(via_of[cell.target], []).append(cell)
                elif cell.status in FAILED:
                    row.failing.setdefault(via_of[cell.target], []).append(cell)
        patterns: dict[tuple[Any, ...], list[str]] = {}
        for name, row in rows.items():
            if not row.ok or not row.failing:
                continue
            signature = (
                tuple(sorted(row.ok)),
                tuple(sorted((v, cells[0].status) for v, cells in row.failing.items())),
            )
            patterns.setdefault(signature, []).append(name)
        by_via = {str(i.via): i for i in infos}
        probed = [n for n, r in rows.items() if r.ok or r.failing]
        for names in patterns.values():
            found.append(_cause(target_name, by_via, names, rows, probed))
    return found


def _cause(
    target_name: str,
    by_via: Mapping[str, TargetInfo],
    names: list[str],
    rows: Mapping[str, Row],
    probed: list[str],
) -> Cause:
    row = rows[names[0]]
    ok = sorted(row.ok, key=order)
    failing = sorted(row.failing, key=order)
    info = next(iter(by_via.values()))
    return cause(
        RULE,
        target_name,
        [c for n in names for v in failing for c in rows[n].failing[v]],
        [c for n in names for v in ok for c in rows[n].ok[v]],
        facts={
            "service": service_name(info),
            "sources": names,
            "ok": ok,
            "failing": {v: row.failing[v][0].status for v in failing},
            "endpoints": {v: by_via[v].endpoint for v in by_via},
        },
        by_via=by_via,
        row=row,
        probed=probed,
    )
