"""Rule "container-network": a container cannot reach a target that lives on a Docker network
it is not attached to ("airflow-worker is not attached to network minikube").

Container sources (docker) report, in their row's `target_networks` fact, which Docker network
holds each target address (by the networks' IPAM subnets) or each container name (Docker's
embedded DNS answers a container's name only on networks the asker shares), and whether the
container is attached to it. A failing cell whose target sits on such a network, from a row
that reaches nothing on that network, is explained by the missing attachment: the story's
Phase 1 check ("is the Airflow container on the minikube network?"), done from the facts.

It runs before "source-down": for a container that fails everything because it is on the
wrong network, this is the sharper sentence of the two.
"""

from __future__ import annotations

from ..facts import TargetNetworkFact
from ..results import CellResult, MatrixResult, SourceInfo, TargetInfo
from ..status import FAILED
from .cause import Cause, cause
from .cells import by_source, by_target, hops, index
from .facts import container_name, row_facts

RULE = "container-network"


def _keys(cell: CellResult, target: TargetInfo | None) -> list[str]:
    """What to look the cell's target up by: the addresses it tried, then its host."""
    keys = [h.address for h in hops(cell)]
    if target is not None:
        keys += target.addresses or []
        keys += [target.host] if target.host else []
    return list(dict.fromkeys(keys))


def _entry(
    cell: CellResult, target: TargetInfo | None, networks: dict[str, TargetNetworkFact]
) -> tuple[str, TargetNetworkFact] | None:
    for key in _keys(cell, target):
        entry = networks.get(key)
        if entry is not None and entry.get("network"):
            return key, entry
    return None


def container_network(result: MatrixResult) -> list[Cause]:
    """One cause per container row and Docker network it lacks for its failing targets."""
    rows = by_source(result)
    columns = by_target(result)
    targets = index(result).targets
    found = []
    for info in result.sources:
        networks = row_facts(info).get("target_networks")
        if not networks:
            continue
        cells = rows.get(info.name, [])
        # Networks this row does reach (some cell to them works): not the cause there.
        reached = set()
        for cell in cells:
            hit = _entry(cell, targets.get(cell.target), networks) if cell.status == "ok" else None
            if hit is not None:
                reached.add(hit[1]["network"])
        missing: dict[str, list[tuple[CellResult, str, TargetNetworkFact]]] = {}
        for cell in cells:
            if cell.status not in FAILED:
                continue
            located = _entry(cell, targets.get(cell.target), networks)
            if located is None:
                continue
            key, entry = located
            network = str(entry["network"])
            if entry.get("attached") is False and network not in reached:
                missing.setdefault(network, []).append((cell, key, entry))
        for network, items in missing.items():
            found.append(_cause(info, network, items, columns))
    return found


def _cause(
    info: SourceInfo,
    network: str,
    items: list[tuple[CellResult, str, TargetNetworkFact]],
    columns: dict[str, list[CellResult]],
) -> Cause:
    row, container = info.name, container_name(info)
    failed = [cell for cell, _key, _entry in items]
    working: list[CellResult] = []
    for cell in failed:
        for other in columns.get(cell.target, []):
            if other.status == "ok" and other.source != row and other not in working:
                working.append(other)
    facts = row_facts(info)
    return cause(
        RULE,
        row,
        failed,
        working,
        facts={
            "row": row,
            "container": container,
            "network": network,
            "attached_networks": sorted(facts.get("networks", {})),
            "targets": [c.target for c in failed],
            "addresses": {key: entry for _cell, key, entry in items},
        },
        items=items,
        network_mode=facts.get("network_mode") or "",
    )
