"""The server's side of a kubernetes-service target (`evidence: {pod_logs: true}`): after the
run, read the logs of the Service's backend pods (ready or not) for the run's time and attach
to each http cell the lines that carry its User-Agent marker (`run=ID cell=N`), or say that no
backend logged it: the classic sign that the connection never reached the application."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import anyio

from ...agent.proxy import redact
from ...kube import KubeClient, explain
from ...model import CellRequest, Column
from ...results import CellResult, ServerLog
from ...spec import Matrix
from ...spec.targets import KubernetesServiceSpec

LIMIT_BYTES = 2 * 1024 * 1024  # read at most this much of one pod's log
LINES_PER_CELL = 3  # matching lines attached to a cell (all are counted)
LINE_CHARS = 400  # a longer line is cut
SINCE_MARGIN_S = 5  # the window starts this long before the run (clocks differ a little)
MARKER = re.compile(r"run=\S+ cell=\d+")


@dataclass
class PodLogs:
    """The logs read, by (namespace, pod): their lines, or why they could not be read."""

    lines: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    errors: dict[tuple[str, str], str] = field(default_factory=dict)


def wants_pod_logs(matrix: Matrix) -> set[str]:
    """The targets whose backend pods' logs are to be read."""
    return {
        name
        for name, spec in matrix.targets.items()
        if isinstance(spec, KubernetesServiceSpec) and spec.evidence and spec.evidence.pod_logs
    }


def backend_pods(columns: Iterable[Column]) -> dict[str, tuple[str, list[str]]]:
    """Each column's Service namespace and backend pods (facts of the resolved columns)."""
    found: dict[str, tuple[str, list[str]]] = {}
    for column in columns:
        facts = column.facts
        if facts.get("namespace") and "backend_pods" in facts:
            found[column.name] = (str(facts["namespace"]), list(facts["backend_pods"]))
    return found


async def read_logs(
    kube: KubeClient, pods: Iterable[tuple[str, str]], since_seconds: int
) -> PodLogs:
    """Each pod's log of the last `since_seconds`, with the kubelet's timestamps, bounded."""
    logs = PodLogs()

    async def read(namespace: str, name: str) -> None:
        try:
            with anyio.fail_after(kube.timeout or 10):
                response = await kube.stream(
                    kube.core.read_namespaced_pod_log,
                    name,
                    namespace,
                    since_seconds=since_seconds,
                    timestamps=True,
                    limit_bytes=LIMIT_BYTES,
                )
                try:
                    raw = await response.content.read(LIMIT_BYTES)
                finally:
                    response.release()
        except Exception as exc:
            logs.errors[(namespace, name)] = explain(exc, kube, f"reading the log of pod {name}")
            return
        logs.lines[(namespace, name)] = raw.decode("utf-8", errors="replace").splitlines()

    async with anyio.create_task_group() as group:
        for namespace, name in sorted(set(pods)):
            group.start_soon(read, namespace, name)
    return logs


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


def server_log(marker: str, namespace: str, pods: Sequence[str], logs: PodLogs) -> ServerLog:
    """What the pods logged of the request marked `marker` (followed by a non-digit: cell=1
    is not cell=12)."""
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
                    lines.append({"pod": pod, "line": redact(line)[:LINE_CHARS]})
    read = [pod for pod in pods if pod not in errors]
    if reached:
        summary = f"the request reached {_pods(reached)} (its log: {lines[0]['line']})"
    elif not pods:
        summary = "no backend pod to read: the Service's endpoints name no pod"
    elif not read:
        summary = f"the logs of {_pods(pods)} could not be read"
    else:
        summary = f"no request seen in the logs of {_pods(read)}"
        if errors:
            summary += f" ({_pods(list(errors))} could not be read)"
    return ServerLog(
        marker=marker,
        pods=list(pods),
        lines=lines,
        matched=matched,
        errors=errors or None,
        summary=summary,
    )


def _pods(names: Sequence[str]) -> str:
    return ("pod " if len(names) == 1 else "pods ") + ", ".join(names)


def since_seconds(run_seconds: float) -> int:
    """The log window: the run's length and a margin, whole seconds (the API's unit)."""
    return math.ceil(run_seconds) + SINCE_MARGIN_S


async def attach_pod_logs(
    kube: KubeClient,
    run_seconds: float,
    columns: Iterable[Column],
    markers: Mapping[tuple[str, str], str],
    results: dict[tuple[str, str], CellResult],
) -> None:
    """Add `server_log` to every http cell of `columns` (those of targets with
    evidence.pod_logs) in `results` (in place); `markers` from cell_markers."""
    pods = backend_pods(columns)
    cells = [
        (key, result, marker)
        for key, result in results.items()
        if result.target in pods
        and (marker := markers.get((result.source_name, result.target))) is not None
    ]
    if not cells:
        return
    needed = {(pods[r.target][0], pod) for _, r, _ in cells for pod in pods[r.target][1]}
    logs = await read_logs(kube, needed, since_seconds(run_seconds))
    for key, result, marker in cells:
        namespace, names = pods[result.target]
        evidence = server_log(marker, namespace, names, logs)
        results[key] = result.model_copy(update={"server_log": evidence})
