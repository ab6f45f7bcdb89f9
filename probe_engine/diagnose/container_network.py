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
from ..results import CellResult, Finding, MatrixResult, SourceInfo, TargetInfo
from ..status import FAILED
from .cells import by_source, by_target, evidence, hops
from .facts import container_name, row_facts
from .phrasing import failure_words, listing
from .severity import severity

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


def container_network(result: MatrixResult) -> list[Finding]:
    """One finding per container row and Docker network it lacks for its failing targets."""
    rows = by_source(result)
    columns = by_target(result)
    targets = {t.name: t for t in result.targets}
    findings = []
    for info in result.sources:
        networks = row_facts(info).get("target_networks")
        if not networks:
            continue
        cells = rows.get(info.name, [])
        # Networks this row does reach (some cell to them works): not the cause there.
        reached = set()
        for cell in cells:
            found = (
                _entry(cell, targets.get(cell.target), networks) if cell.status == "ok" else None
            )
            if found is not None:
                reached.add(found[1]["network"])
        missing: dict[str, list[tuple[CellResult, str, TargetNetworkFact]]] = {}
        for cell in cells:
            if cell.status not in FAILED:
                continue
            found = _entry(cell, targets.get(cell.target), networks)
            if found is None:
                continue
            key, entry = found
            network = str(entry["network"])
            if entry.get("attached") is False and network not in reached:
                missing.setdefault(network, []).append((cell, key, entry))
        for network, items in missing.items():
            findings.append(_finding(result, info, network, items, columns))
    return findings


def _finding(
    result: MatrixResult,
    info: SourceInfo,
    network: str,
    items: list[tuple[CellResult, str, TargetNetworkFact]],
    columns: dict[str, list[CellResult]],
) -> Finding:
    row, container = info.name, container_name(info)
    failed = [cell for cell, _key, _entry in items]
    # A fanned-out row (SOURCE/CONTAINER) already names its container.
    named = row == container or row.endswith(f"/{container}")
    who = row if named else f"{row} (container {container})"
    facts = row_facts(info)
    attached = sorted(facts.get("networks", {}))
    mode = facts.get("network_mode") or ""
    if attached:
        on = f"{who} is attached to {listing(attached)} only"
    elif mode == "none":
        on = f"{who} has no network at all (network mode none)"
    else:
        on = f"{who} is attached to no network"
    where: list[str] = []
    by_subnet: dict[str, list[str]] = {}
    for _cell, key, entry in items:
        if entry.get("how") == "name":
            text = (
                f"the name {key} belongs to container {entry.get('container') or key} "
                f"({entry.get('address')}) on {network}, and Docker's embedded DNS answers it "
                "only on networks both containers share"
            )
            if text not in where:
                where.append(text)
        elif key not in by_subnet.setdefault(str(entry.get("subnet") or ""), []):
            by_subnet[str(entry.get("subnet") or "")].append(key)
    for subnet, keys in by_subnet.items():
        verb = "is" if len(keys) == 1 else "are"
        where.insert(0, f"{listing(keys)} {verb} on {network}" + (f" ({subnet})" if subnet else ""))
    outcomes: dict[str, list[str]] = {}
    for cell in failed:
        outcomes.setdefault(failure_words(cell), []).append(cell.target)
    fails = "; ".join(f"{listing(targets)}: {words}" for words, targets in outcomes.items())
    working: list[CellResult] = []
    for cell in failed:
        for other in columns.get(cell.target, []):
            if other.status == "ok" and other.source != row and other not in working:
                working.append(other)
    detail = f"{on}; {'; '.join(where)}. From {row}: {fails}."
    if working:
        good = listing([c.source for c in working], 3)
        reached = list(dict.fromkeys(c.target for c in working))
        detail += f" From {good}, {listing(reached)} {'works' if len(reached) == 1 else 'work'}."
    return Finding(
        rule=RULE,
        severity=severity(failed, contradiction=bool(working)),
        title=f"{who} is not attached to network {network}",
        detail=detail,
        evidence=evidence(failed + working),
        next_step=(
            f"Attach it: `docker network connect {network} {container}`; with Compose, list "
            f"{network} under the service's `networks:` (declared `external: true` at the top "
            "level) and recreate the container."
        ),
        facts={
            "row": row,
            "container": container,
            "network": network,
            "attached_networks": attached,
            "targets": [c.target for c in failed],
            "addresses": {key: entry for _cell, key, entry in items},
        },
    )
