"""One watch over the pods a source creates, so that waiting for fifty pods costs two requests
(a list, then a watch from its resourceVersion), not a poll per pod.

Pods are kept as the API server last described them (plain JSON, as watch events carry them);
`wait(name, test)` returns once `test(pod)` says so, or None at its timeout. A watch the
server ends is resumed from the last resourceVersion seen; one that is too old (410 Expired)
starts over with a list. A watch that keeps failing gives up and says why: waiters then get
that reason instead of waiting out their timeouts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import anyio

from ..kube import KubeApiError, KubeClient, explain
from .channel import LineSplitter

WATCH_SECONDS = 300  # asked of the server for each watch request, then resumed
RETRIES = 5  # consecutive failures before the watch gives up
RETRY_PAUSE = 0.5

Pod = Mapping[str, Any]


class PodWatch:
    """The pods matching `selector` in `namespace`, kept current by one watch. Run `run()` in
    a task for as long as the pods matter; cancel it to stop."""

    def __init__(self, kube: KubeClient, namespace: str, selector: str) -> None:
        self.kube, self.namespace, self.selector = kube, namespace, selector
        self.pods: dict[str, dict[str, Any]] = {}
        self.deleted: set[str] = set()
        self.released: set[str] = set()  # pods whose deletion their channel asked for
        self.failure: str | None = None  # why the watch gave up
        self.requests = 0  # API requests made: what a node costs, for the benchmark
        self._changed = anyio.Event()
        self._version: str | None = None
        self._ready = anyio.Event()

    async def started(self) -> None:
        """Return once the first list is in: pods created after this are never missed."""
        await self._ready.wait()

    async def run(self) -> None:
        failures = 0
        try:
            while True:
                try:
                    if self._version is None:
                        await self._list()
                    await self._watch()
                    failures = 0
                except _Expired:
                    self._version = None  # too old: list again
                except Exception as exc:  # the API's errors, aiohttp's, a broken event line
                    failures += 1
                    if failures >= RETRIES:
                        self._give_up(explain(exc, self.kube, f"watching pods in {self.namespace}"))
                        return
                    await anyio.sleep(RETRY_PAUSE * failures)
        finally:
            self._ready.set()

    def _give_up(self, why: str) -> None:
        self.failure = why
        self._ready.set()
        self._wake()

    async def _list(self) -> None:
        self.requests += 1
        data = await self.kube.get(
            self.kube.core.list_namespaced_pod, self.namespace, label_selector=self.selector
        )
        for item in data.get("items") or []:
            self.pods[item["metadata"]["name"]] = item
        self._version = str((data.get("metadata") or {}).get("resourceVersion") or "")
        self._ready.set()
        self._wake()

    async def _watch(self) -> None:
        self.requests += 1
        response = await self.kube.stream(
            self.kube.core.list_namespaced_pod,
            self.namespace,
            label_selector=self.selector,
            watch=True,
            resource_version=self._version,
            timeout_seconds=WATCH_SECONDS,
            allow_watch_bookmarks=True,
        )
        splitter = LineSplitter()
        try:
            async for chunk in response.content.iter_any():
                for line in splitter.feed(chunk):
                    self._event(line)
            for line in splitter.close():
                self._event(line)
        finally:
            response.release()

    def _event(self, line: bytes) -> None:
        if not line.strip():
            return
        event = json.loads(line)
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _Expired
            raise KubeApiError(int(obj.get("code") or 500), obj)
        meta = obj.get("metadata") or {}
        if meta.get("resourceVersion"):
            self._version = str(meta["resourceVersion"])
        if kind == "BOOKMARK":
            return
        name = str(meta.get("name"))
        if kind == "DELETED":
            self.pods.pop(name, None)
            self.deleted.add(name)
        else:
            self.pods[name] = obj
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def wait(
        self, name: str, test: Callable[[Pod | None], bool], timeout: float
    ) -> Pod | None:
        """The pod once `test(pod)` holds (pod None: deleted or not seen yet); None when the
        timeout passes first or the watch has given up (see `failure`)."""
        with anyio.move_on_after(timeout):
            while True:
                pod = self.pods.get(name)
                if test(pod):
                    return pod if pod is not None else {}
                if self.failure is not None:
                    return None
                changed = self._changed
                await changed.wait()
        return None


class _Expired(Exception):
    """The watch's resourceVersion is too old (410): list again."""


def container_state(pod: Pod | None, container: str) -> Mapping[str, Any]:
    """The state of `container` (running / waiting / terminated), or {} if not reported."""
    status = (pod or {}).get("status") or {}
    for item in list(status.get("containerStatuses") or []) + list(
        status.get("ephemeralContainerStatuses") or []
    ):
        if item.get("name") == container:
            return dict(item.get("state") or {})
    return {}


def unschedulable(pod: Pod | None) -> str | None:
    """The scheduler's reason when it cannot place the pod."""
    for condition in ((pod or {}).get("status") or {}).get("conditions") or []:
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == "Unschedulable"
        ):
            return str(condition.get("message") or "Unschedulable")
    return None
