"""Ephemeral containers: a place with Python inside a pod that has none (distroless images).

`kubectl debug` adds one the same way: a strategic-merge PATCH of the pod's
`ephemeralcontainers` subresource, the new container targeting the app container (same
process namespace view where the runtime supports it) and, as every container of a pod, in the
pod's network namespace: probes from it see the network exactly as the app does. It idles
(`sleep`) and the agent runs in it through pod exec, as in any container.

Ephemeral containers cannot be removed or restarted: one added stays in the pod's spec until
the pod is deleted. So one is reused: a container named `probe-engine-debug-N` with the same
image and target that still runs is taken as it is; a new one is added only when none runs
(then with the next N). Its sleeping process costs the pod nearly nothing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from functools import partial
from typing import Any

import anyio

from ..kube import KubeClient, explain
from ..spec.sources import DebugSpec
from .channel import ChannelError
from .pod_exec import PodExecChannel
from .remote import Place

PREFIX = "probe-engine-debug-"
IDLE = ["sleep", "2147483647"]  # ~68 years: it ends with the pod
POLL = 0.25
STUCK = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerError")


def ours(pod: Mapping[str, Any], image: str, target: str | None) -> tuple[str | None, int]:
    """A running ephemeral container this tool added with `image` and `target`, if any; and
    the next free index for a new one."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    states = {
        s.get("name"): s.get("state") or {} for s in status.get("ephemeralContainerStatuses") or []
    }
    used = 0
    for container in spec.get("ephemeralContainers") or []:
        name = str(container.get("name") or "")
        match = re.fullmatch(re.escape(PREFIX) + r"(\d+)", name)
        if match is None:
            continue
        used = max(used, int(match.group(1)))
        same = container.get("image") == image and container.get("targetContainerName") == target
        if same and "running" in states.get(name, {}):
            return name, used + 1
    return None, used + 1


def _state(pod: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    for item in (pod.get("status") or {}).get("ephemeralContainerStatuses") or []:
        if item.get("name") == name:
            return dict(item.get("state") or {})
    return {}


async def ephemeral_place(
    kube: KubeClient,
    pod: Mapping[str, Any],
    target: str | None,
    debug: DebugSpec,
    facts: Mapping[str, Any],
) -> Place:
    """The place of an ephemeral container (`debug.image`) in `pod` (reused, or added and
    waited for); ChannelError with the API's reason when there can be none."""
    image, start_timeout = debug.image, debug.start_timeout
    name, namespace = str(pod["metadata"]["name"]), str(pod["metadata"]["namespace"])
    where = f"pod {namespace}/{name}"
    begun = time.monotonic()
    found, index = ours(pod, image, target)
    reused = found is not None
    container = found or f"{PREFIX}{index}"
    if not reused:
        body: dict[str, Any] = {"name": container, "image": image, "command": IDLE}
        if target:
            body["targetContainerName"] = target
        try:
            await kube.get(
                kube.core.patch_namespaced_pod_ephemeralcontainers,
                name,
                namespace,
                {"spec": {"ephemeralContainers": [body]}},
            )
        except Exception as exc:
            doing = f"adding an ephemeral container to {where}"
            raise ChannelError(explain(exc, kube, doing)) from exc
        await _wait_running(kube, name, namespace, container, start_timeout)
    place_facts = {
        **facts,
        "debug_container": container,
        "debug_image": image,
        "debug_reused": reused,
        "debug_ms": round((time.monotonic() - begun) * 1000.0, 1),
    }
    channel = partial(PodExecChannel, kube, name, namespace, container)
    return Place(channel, place_facts, short_commands=True)


async def _wait_running(
    kube: KubeClient, name: str, namespace: str, container: str, timeout: float
) -> None:
    where = f"ephemeral container {container} of pod {namespace}/{name}"
    state: Mapping[str, Any] = {}
    with anyio.move_on_after(timeout):
        while True:
            try:
                pod = await kube.get(kube.core.read_namespaced_pod, name, namespace)
            except Exception as exc:
                raise ChannelError(explain(exc, kube, f"waiting for the {where}")) from exc
            state = _state(pod, container)
            if "running" in state:
                return
            waiting = state.get("waiting") or {}
            if waiting.get("reason") in STUCK:
                words = waiting.get("message") or ""
                raise ChannelError(
                    f"the {where} cannot start: {waiting['reason']}"
                    + (f": {words}" if words else "")
                )
            if "terminated" in state:
                ended = state["terminated"]
                raise ChannelError(
                    f"the {where} ended ({ended.get('reason')}, exit code {ended.get('exitCode')})"
                    + (f": {ended['message']}" if ended.get("message") else "")
                    + " (its image needs `sleep` to idle in, and python3 or sh to probe with)"
                )
            await anyio.sleep(POLL)
    reason = (state.get("waiting") or {}).get("reason") or "not started"
    raise ChannelError(f"the {where} did not start within {timeout:g} s ({reason})")
