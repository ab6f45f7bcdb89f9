"""`probe-engine cleanup`: remove what runs that were killed (SIGKILL, a lost machine) left.

A run deletes its own probe pods and sidecars, on Ctrl-C and SIGTERM too; only a run that had
no chance to (killed outright) leaves any. They are found by label, never by name:
probe pods by `app.kubernetes.io/managed-by=probe-engine,app.kubernetes.io/component=probe-pod`
(and `probe-engine.io/run=ID` with --run), Docker sidecars by `org.probe-engine.sidecar`.
Ephemeral containers cannot be removed: those probe-engine added are listed, not touched.
Each line says what was (or, with --dry-run, would be) removed; failures are lines too.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .compat import UTC
from .kube import KubeClient, explain

POD_SELECTOR = "app.kubernetes.io/managed-by=probe-engine,app.kubernetes.io/component=probe-pod"
EPHEMERAL_PREFIX = "probe-engine-debug-"
SIDECAR_LABEL = "org.probe-engine.sidecar"
RUN_LABEL = "org.probe-engine.run"


@dataclass(frozen=True)
class CleanupOptions:
    namespace: str | None = None  # None: the context's; ignored with all_namespaces
    all_namespaces: bool = False
    run: str | None = None
    older_than: float | None = None  # seconds
    dry_run: bool = False


@dataclass
class Outcome:
    lines: list[str] = field(default_factory=list)
    removed: int = 0
    failed: int = 0


def _age(created: str | None, now: float) -> float | None:
    if not created:
        return None
    with contextlib.suppress(ValueError):
        stamp = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        return now - stamp.timestamp()
    return None


def _old_enough(age: float | None, options: CleanupOptions) -> bool:
    return options.older_than is None or (age is not None and age >= options.older_than)


async def cleanup_pods(kube: KubeClient, options: CleanupOptions, outcome: Outcome) -> None:
    """Delete leftover probe pods; list the ephemeral containers probe-engine added."""
    selector = POD_SELECTOR + (f",probe-engine.io/run={options.run}" if options.run else "")
    namespace = options.namespace or kube.namespace
    where = "every namespace" if options.all_namespaces else f"namespace {namespace}"
    try:
        if options.all_namespaces:
            data = await kube.get(kube.core.list_pod_for_all_namespaces, label_selector=selector)
        else:
            data = await kube.get(kube.core.list_namespaced_pod, namespace, label_selector=selector)
    except Exception as exc:
        outcome.failed += 1
        outcome.lines.append(explain(exc, kube, f"listing probe pods in {where}"))
        return
    now = time.time()
    verb = "would delete" if options.dry_run else "deleted"
    found = 0
    for pod in data.get("items") or []:
        meta = pod.get("metadata") or {}
        age = _age(meta.get("creationTimestamp"), now)
        if not _old_enough(age, options):
            continue
        found += 1
        name, ns = str(meta.get("name")), str(meta.get("namespace"))
        labels = meta.get("labels") or {}
        node = (meta.get("annotations") or {}).get("probe-engine.io/node", "?")
        what = (
            f"probe pod {ns}/{name} (run {labels.get('probe-engine.io/run', '?')}, node {node}, "
            f"{(pod.get('status') or {}).get('phase', '?')}"
            + (f", {age / 60:.0f} min old)" if age is not None else ")")
        )
        if options.dry_run:
            outcome.lines.append(f"{verb} {what}")
            continue
        try:
            await kube.get(kube.core.delete_namespaced_pod, name, ns, grace_period_seconds=0)
        except Exception as exc:
            outcome.failed += 1
            outcome.lines.append(explain(exc, kube, f"deleting {what}"))
            continue
        outcome.removed += 1
        outcome.lines.append(f"{verb} {what}")
    if not found:
        outcome.lines.append(f"no probe pod left in {where}")
    with contextlib.suppress(Exception):  # only a note: ephemeral containers cannot go anyway
        if options.all_namespaces:
            every = await kube.get(kube.core.list_pod_for_all_namespaces)
        else:
            every = await kube.get(kube.core.list_namespaced_pod, namespace)
        outcome.lines.extend(ephemeral_lines(list(every.get("items") or [])))


def ephemeral_lines(pods: list[Mapping[str, Any]]) -> list[str]:
    """The ephemeral containers probe-engine added to these pods (they stay: say so)."""
    lines = []
    for pod in pods:
        names = [
            str(c.get("name"))
            for c in (pod.get("spec") or {}).get("ephemeralContainers") or []
            if str(c.get("name", "")).startswith(EPHEMERAL_PREFIX)
        ]
        if names:
            meta = pod.get("metadata") or {}
            lines.append(
                f"pod {meta.get('namespace')}/{meta.get('name')} keeps ephemeral container(s) "
                f"{', '.join(names)}: ephemeral containers cannot be removed; they go with the pod"
            )
    return lines


async def cleanup_sidecars(client: Any, options: CleanupOptions, outcome: Outcome) -> None:
    """Remove leftover Docker sidecars (by label), `client` an aiodocker.Docker."""
    from .sources.docker_exec import api_errors

    labels = [SIDECAR_LABEL] + ([f"{RUN_LABEL}={options.run}"] if options.run else [])
    try:
        found = await client.containers.list(all=True, filters={"label": labels})
    except api_errors() as exc:
        outcome.failed += 1
        outcome.lines.append(f"listing sidecar containers failed: {exc}")
        return
    now = time.time()
    verb = "would remove" if options.dry_run else "removed"
    count = 0
    for container in found:
        created = _field(container, "Created")
        age = now - float(created) if isinstance(created, (int, float)) else None
        if not _old_enough(age, options):
            continue
        count += 1
        names = _field(container, "Names") or [container.id]
        name = str(names[0]).lstrip("/")
        what = f"sidecar container {name}"
        if options.dry_run:
            outcome.lines.append(f"{verb} {what}")
            continue
        try:
            await container.delete(force=True, v=True)
        except api_errors() as exc:
            outcome.failed += 1
            outcome.lines.append(f"removing {what} failed: {exc}")
            continue
        outcome.removed += 1
        outcome.lines.append(f"{verb} {what}")
    if not count:
        outcome.lines.append("no sidecar container left")


def _field(container: Any, key: str) -> Any:
    """A field of a container's summary (aiodocker's containers have `in` and [], no get)."""
    return container[key] if key in container else None  # noqa: SIM401
