"""What a server logged of a run's http requests, whoever ran it (pods: kubernetes/pod_logs.py,
Docker containers: docker_logs.py): each request's User-Agent carries `run=ID cell=N`, and a
cell is given the lines carrying its marker, or told that none did."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..agent.proxy import redact
from ..model import CellRequest
from ..results import ServerLog

LIMIT_BYTES = 2 * 1024 * 1024  # read at most this much of one pod's or container's log
LINES_PER_CELL = 3  # matching lines attached to a cell (all are counted)
LINE_CHARS = 400  # a longer line is cut
SINCE_MARGIN_S = 5  # the window starts this long before the run (clocks differ a little)
MARKER = re.compile(r"run=\S+ cell=\d+")


@dataclass
class PodLogs:
    """The logs read, by (namespace, pod) (a container's namespace is ""): their lines, or
    why they could not be read."""

    lines: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    errors: dict[tuple[str, str], str] = field(default_factory=dict)


def cell_markers(cells: Iterable[CellRequest], run_id: str) -> dict[tuple[str, str], str]:
    """`run=ID cell=N` of every http cell sending this run's marker, by (source, column): from
    the request itself, so a cell whose connection failed before any HTTP has one too."""
    found: dict[tuple[str, str], str] = {}
    for request in cells:
        plan = request.column.plan
        headers = (plan.get("headers") if plan is not None else None) or {}
        agent = next((v for k, v in headers.items() if k.lower() == "user-agent"), "")
        marker = MARKER.search(agent)
        if marker and marker.group(0).startswith(f"run={run_id} "):
            found[(request.source, request.column.name)] = marker.group(0)
    return found


def server_log(
    marker: str, namespace: str, pods: Sequence[str], logs: PodLogs, noun: str = "pod"
) -> ServerLog:
    """What the pods (or, `noun` "container", Docker's containers in namespace "") logged of
    the request marked `marker` (followed by a non-digit: cell=1 is not cell=12)."""
    pattern = re.compile(re.escape(marker) + r"(?!\d)")
    lines: list[dict[str, str]] = []
    matched = 0
    reached: list[str] = []
    errors = {pod: logs.errors[(namespace, pod)] for pod in pods if (namespace, pod) in logs.errors}
    for pod in pods:
        for line in logs.lines.get((namespace, pod), []):
            if pattern.search(line):
                matched += 1
                if pod not in reached:
                    reached.append(pod)
                if len(lines) < LINES_PER_CELL:
                    lines.append({noun: pod, "line": redact(line)[:LINE_CHARS]})
    read = [pod for pod in pods if pod not in errors]
    if reached:
        summary = f"the request reached {_named(noun, reached)} (its log: {lines[0]['line']})"
    elif not pods:
        summary = "no backend pod to read: the Service's endpoints name no pod"
    elif not read:
        summary = f"the logs of {_named(noun, pods)} could not be read"
    else:
        summary = f"no request seen in the logs of {_named(noun, read)}"
        if errors:
            summary += f" ({_named(noun, list(errors))} could not be read)"
    return ServerLog(
        marker=marker,
        pods=list(pods) if noun == "pod" else [],
        containers=list(pods) if noun != "pod" else None,
        lines=lines,
        matched=matched,
        errors=errors or None,
        summary=summary,
    )


def _named(noun: str, names: Sequence[str]) -> str:
    return (f"{noun} " if len(names) == 1 else f"{noun}s ") + ", ".join(names)


def since_seconds(run_seconds: float) -> int:
    """The log window: the run's length and a margin, whole seconds (the API's unit)."""
    return math.ceil(run_seconds) + SINCE_MARGIN_S
