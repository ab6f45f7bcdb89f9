"""Where a probe runs from: a row cut short, a container off the target's network, a
source that could not probe at all."""

from __future__ import annotations

from ...results import CellResult, MatrixResult
from ..cause import Cause
from ..cells import first_failure
from ..differences import Difference
from ..grammar import capitalised, ended, listing, plural, verb
from ..phrasing import (
    CLIENT_RULES,
    meaning,
    next_step,
)
from .common import Words, outcomes, sources_of

# --- cut-short ------------------------------------------------------------------------------

DOING = {
    "dns": "resolving their names",
    "tcp": "connecting (no answer to the SYN yet)",
    "http": "waiting for the HTTP answer",
}
CUT_STEPS = {
    "dns": "The resolver did not answer in time: check the nameservers these sources use "
    "(/etc/resolv.conf), or give the run a longer --deadline.",
    "tcp": "Nothing answered the connects: a host that is down or a firewall dropping them, "
    "or a run whose --deadline is shorter than the cells' timeout.",
    "http": "These servers accepted the connection but did not answer: look at the service "
    "(a blocked worker, a full queue), or give the run a longer --deadline.",
}


def cut_short(found: Cause, result: MatrixResult) -> Words:
    phase = str(found.facts["phase"])
    cells = found.failing
    longest: CellResult = found.context["longest"]
    by = "an interrupt" if found.facts["cut_by"] == "interrupt" else "the run's deadline"
    doing = DOING.get(phase, phase)
    pairs = [f"{c.source} -> {c.target}" for c in cells]
    said = longest.message.split(": ", 1)[-1] if longest.message else phase
    return Words(
        f"{plural(len(cells), 'cell')} {verb(len(cells), 'was', 'were')} cut while {doing}: "
        f"{listing([c.target for c in cells])}",
        f"{capitalised(by)} cut {listing(pairs)} while {doing}; {longest.source} -> "
        f"{longest.target} had been at it {found.facts['longest_ms']:.0f} ms ({said}).",
        CUT_STEPS.get(phase, "Give the run a longer --deadline."),
    )


# --- container-network ----------------------------------------------------------------------


def container_network(found: Cause, result: MatrixResult) -> Words:
    facts = found.facts
    row, container, network = str(facts["row"]), str(facts["container"]), str(facts["network"])
    # A fanned-out row (SOURCE/CONTAINER) already names its container.
    named = row == container or row.endswith(f"/{container}")
    who = row if named else f"{row} (container {container})"
    attached = list(facts["attached_networks"])
    if attached:
        on = f"{who} is attached to {listing(attached)} only"
    elif found.context["network_mode"] == "none":
        on = f"{who} has no network at all (network mode none)"
    else:
        on = f"{who} is attached to no network"
    where: list[str] = []
    by_subnet: dict[str, list[str]] = {}
    for _cell, key, entry in found.context["items"]:
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
        where.insert(
            0,
            f"{listing(keys)} {verb(len(keys), 'is', 'are')} on {network}"
            + (f" ({subnet})" if subnet else ""),
        )
    fails = "; ".join(
        f"{listing(targets)}: {words}"
        for words, targets in outcomes(found.failing, lambda c: c.target).items()
    )
    detail = f"{on}; {'; '.join(where)}. From {row}: {fails}."
    if found.contrast:
        reached = sources_of([*found.contrast])
        targets = list(dict.fromkeys(c.target for c in found.contrast))
        detail += (
            f" From {listing(reached, 3)}, {listing(targets)} "
            f"{verb(len(targets), 'works', 'work')}."
        )
    return Words(
        f"{who} is not attached to network {network}",
        detail,
        f"Attach it: `docker network connect {network} {container}`; with Compose, list "
        f"{network} under the service's `networks:` (declared `external: true` at the top "
        "level) and recreate the container.",
    )


# --- source-down ----------------------------------------------------------------------------

KIND_HINTS = {
    "process": "Check that the interpreter starts with that environment (`python3 -c pass`).",
    "shell": "Install the tool there, or fix PATH in the source's env.",
    "docker": "Check that the container exists and runs (`docker ps -a`), and that it has a shell.",
    "kubernetes": "Check that the pods exist and run, and that exec is allowed (RBAC pods/exec).",
    "netns": "Check that the namespace exists (`ip netns list`) and that the run has root.",
}


def source_down(found: Cause, result: MatrixResult) -> Words:
    if found.variant == "could-not-run":
        rows = list(found.facts["rows"])
        message = str(found.facts["message"])
        return Words(
            f"{listing(rows)} could not run {verb(len(rows), 'its', 'their')} probes: {message}",
            f"All {plural(len(found.failing), 'cell')} of {listing(rows)} are source-error: "
            f"{ended(message)} Nothing is known about the network from there until the probe "
            "can run.",
            KIND_HINTS.get(str(found.facts["kind"]), "Fix what the message says, then run again."),
        )
    row = found.subject
    pairs: list[tuple[CellResult, CellResult]] = found.context["pairs"]
    goods: list[str] = found.context["goods"]
    differences: list[Difference] = found.context["differences"]
    proxied: CellResult | None = found.context["proxied"]
    causes: list[str] = []
    step = None
    if proxied is not None:
        proxy = proxied.proxy
        assert proxy is not None
        failed = first_failure(proxied)
        causes.append(
            f"every HTTP request from {row} goes through {proxy.variable}={proxy.url} "
            f"({CLIENT_RULES.get(proxy.client, proxy.client)}) and that proxy fails"
            + (f" ({failed.errno_name})" if failed and failed.errno_name else "")
        )
        if found.context["proxy_note"]:
            causes.append(found.context["proxy_note"])
        step = (
            f"Fix or unset {proxy.variable} in {proxied.source_name}'s environment, or exempt "
            "the targets in NO_PROXY."
        )
    causes += [d.text for d in differences]
    step = step or next((d.next_step for d in differences if d.next_step), None)
    failures = "; ".join(
        f"{listing(targets)}: {words}"
        for words, targets in outcomes(found.failing, lambda c: c.target).items()
    )
    reached = "; ".join(
        f"{good} reaches {listing([o.target for _, o in pairs if o.source == good])}"
        for good in goods
    )
    detail = (
        f"From {row}: {failures}. Yet {reached}: the cause lies with {row} (where or how it "
        "runs), not with the targets."
    )
    if causes:
        detail += " What differs: " + "; ".join(causes) + "."
    else:
        detail += (
            " The engine sees no difference in network namespace, routes or proxy settings "
            f"between {row} and {listing(goods)}: {meaning(found.failing[0])}."
        )
    return Words(
        f"Everything from {row} fails ({plural(len(found.failing), 'cell')}) while "
        f"{listing(goods)} {verb(len(goods), 'reaches', 'reach')} the same targets",
        detail,
        step or next_step(found.failing[0]),
    )
