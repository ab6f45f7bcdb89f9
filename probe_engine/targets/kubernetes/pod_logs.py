"""The server's side of a kubernetes-service target (`evidence: {pod_logs: true}`): after the
run, read the logs of the Service's backend pods (ready or not) for the run's time and attach
to each http cell the lines that carry its User-Agent marker (`run=ID cell=N`), or say that no
backend logged it: the classic sign that the connection never reached the application."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import anyio

from ...kube import KubeClient, explain
from ...model import Column
from ...results import CellResult
from ...spec import Matrix
from ...spec.targets import KubernetesServiceSpec
from ..server_logs import LIMIT_BYTES, PodLogs, server_log, since_seconds


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
