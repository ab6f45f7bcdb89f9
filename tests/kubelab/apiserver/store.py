"""The in-memory store: objects by (kind, namespace, name), defaults as the apiserver fills them."""

from __future__ import annotations

import collections
import itertools
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .objects import endpoint_slice, endpoints, slice_endpoint
from .resources import JSON, RESOURCES, copy_json, timestamp
from .runtime import PodRuntime
from .selectors import match_fields, match_labels, parse_field_selector, parse_label_selector

HISTORY = 4096  # change events kept for watches that resume from a resourceVersion


@dataclass(frozen=True)
class Change:
    """One change, as a watch reports it: ADDED, MODIFIED or DELETED, with the object as it
    was then (its resourceVersion the change's)."""

    type: str
    kind: str
    namespace: str
    object: JSON

    @property
    def resource_version(self) -> int:
        return int(self.object["metadata"]["resourceVersion"])


Listener = Callable[[Change], None]


class TooOld(Exception):
    """A watch asked to resume from a resourceVersion the history no longer holds (410)."""


class Store:
    """Objects by (kind, namespace, name), as plain dicts in their real JSON shapes.

    Thread-safe: tests mutate it from their own thread while the server reads it from its loop.
    ``put`` defaults fields as the apiserver would (uid, resourceVersion, creationTimestamp,
    Service clusterIP/nodePort/targetPort/protocol) and auto-creates the namespace. Every change
    is kept in a bounded history and told to listeners (watches), under the store's lock, in
    resourceVersion order.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._objects: dict[tuple[str, str, str], JSON] = {}
        self._runtimes: dict[tuple[str, str], PodRuntime] = {}
        self._history: collections.deque[Change] = collections.deque(maxlen=HISTORY)
        self._listeners: list[Listener] = []
        self._rv = 1000
        self._ips = itertools.count(1)
        self._node_ports = itertools.count(30000)
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.put(self._namespace(ns))

    @staticmethod
    def _namespace(name: str) -> JSON:
        return {
            "kind": "Namespace",
            "apiVersion": "v1",
            "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }

    @staticmethod
    def _key(kind: str, name: str, namespace: str | None) -> tuple[str, str, str]:
        res = RESOURCES[kind]
        return (kind, (namespace or "default") if res.namespaced else "", name)

    @property
    def resource_version(self) -> str:
        with self._lock:
            return str(self._rv)

    def put(self, obj: Mapping[str, Any], runtime: PodRuntime | None = None) -> JSON:
        """Create or replace an object (``kind`` selects the resource); returns the stored copy.
        For a Pod, ``runtime`` says where exec and port-forward really go."""
        stored: JSON = copy_json(obj)
        kind = stored.get("kind", "")
        if kind not in RESOURCES:
            raise ValueError(f"kubelab does not serve kind {kind!r}")
        res = RESOURCES[kind]
        stored["apiVersion"] = res.api_version
        meta = stored.setdefault("metadata", {})
        if res.namespaced:
            meta.setdefault("namespace", "default")
        else:
            meta.pop("namespace", None)
        key = self._key(kind, meta["name"], meta.get("namespace"))
        with self._lock:
            if res.namespaced and ("Namespace", "", meta["namespace"]) not in self._objects:
                self.put(self._namespace(meta["namespace"]))
            old = self._objects.get(key)
            self._rv += 1
            meta.setdefault("uid", old["metadata"]["uid"] if old else str(uuid.uuid4()))
            meta.setdefault(
                "creationTimestamp", old["metadata"]["creationTimestamp"] if old else timestamp()
            )
            meta["resourceVersion"] = str(self._rv)
            if kind == "Service":
                self._default_service(stored, old)
            self._objects[key] = stored
            if runtime is not None:
                self._runtimes[(key[1], key[2])] = runtime
            self._changed("MODIFIED" if old else "ADDED", key, stored)
            return copy_json(stored)

    def _changed(self, type_: str, key: tuple[str, str, str], obj: JSON) -> None:
        change = Change(type_, key[0], key[1], copy_json(obj))
        self._history.append(change)
        for listener in list(self._listeners):
            listener(change)

    def watch(
        self, kind: str, listener: Listener, since: int | None
    ) -> tuple[list[Change], Callable[[], None]]:
        """Listen to every change from now on, and say what the watch starts from: with
        ``since``, the changes after that resourceVersion (TooOld if the history no longer
        holds them: 410); without, every current object of ``kind`` as ADDED (a watch with no
        resourceVersion starts at "most recent"). Returns those and a function that stops
        listening. Snapshot and subscription are atomic: nothing is missed or seen twice."""
        with self._lock:
            if since is None:
                past = [
                    Change("ADDED", kind, key[1], copy_json(obj))
                    for key, obj in sorted(self._objects.items())
                    if key[0] == kind
                ]
            else:
                if self._history and since < self._history[0].resource_version - 1:
                    raise TooOld(since)
                past = [c for c in self._history if c.resource_version > since and c.kind == kind]
            self._listeners.append(listener)

        def stop() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return past, stop

    def _default_service(self, svc: JSON, old: JSON | None) -> None:
        spec = svc.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        if "clusterIP" not in spec:
            if old and "clusterIP" in old.get("spec", {}):
                spec["clusterIP"] = old["spec"]["clusterIP"]
            else:
                n = next(self._ips)
                spec["clusterIP"] = f"10.96.{n // 250}.{n % 250 + 2}"
        if spec["clusterIP"] != "None":
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        if spec["type"] in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        for p in spec.get("ports", []):
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p["port"])
            if spec["type"] in ("NodePort", "LoadBalancer") and "nodePort" not in p:
                p["nodePort"] = next(self._node_ports)

    def update(
        self, kind: str, name: str, namespace: str | None, mutate: Callable[[JSON], None]
    ) -> JSON | None:
        """Change an object in place under the lock (a read-modify-write no other change can
        interleave with, as the apiserver's optimistic concurrency ensures); None if it is
        gone. Returns the stored copy."""
        key = self._key(kind, name, namespace)
        with self._lock:
            current = self._objects.get(key)
            if current is None:
                return None
            changed = copy_json(current)
            mutate(changed)
            self._rv += 1
            changed["metadata"]["resourceVersion"] = str(self._rv)
            self._objects[key] = changed
            self._changed("MODIFIED", key, changed)
            return copy_json(changed)

    def get(self, kind: str, name: str, namespace: str | None = "default") -> JSON | None:
        """A copy of one object, or None."""
        with self._lock:
            obj = self._objects.get(self._key(kind, name, namespace))
            return copy_json(obj) if obj is not None else None

    def delete(self, kind: str, name: str, namespace: str | None = "default") -> bool:
        """Remove an object; True when it existed."""
        key = self._key(kind, name, namespace)
        with self._lock:
            if kind == "Pod":
                self._runtimes.pop((key[1], key[2]), None)
            gone = self._objects.pop(key, None)
            if gone is not None:
                self._rv += 1
                gone["metadata"]["resourceVersion"] = str(self._rv)
                self._changed("DELETED", key, gone)
            return gone is not None

    def list(
        self,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[JSON]:
        """Copies of the matching objects, sorted by namespace and name (as etcd returns them).
        Raises LabelSelectorError for a bad selector."""
        res = RESOURCES[kind]
        reqs = parse_label_selector(label_selector) if label_selector else []
        fields = parse_field_selector(field_selector, res) if field_selector else []
        with self._lock:
            items = [
                obj
                for (k, ns, _), obj in sorted(self._objects.items())
                if k == kind and (namespace is None or not res.namespaced or ns == namespace)
            ]
            return [
                copy_json(o)
                for o in items
                if match_labels(reqs, o["metadata"].get("labels")) and match_fields(o, fields)
            ]

    def set_runtime(self, namespace: str, name: str, runtime: PodRuntime) -> None:
        """Say where pod ``namespace/name`` really runs (exec and port-forward targets)."""
        with self._lock:
            self._runtimes[(namespace, name)] = runtime

    def runtime(self, namespace: str, name: str) -> PodRuntime:
        """The pod's runtime; a default one (local subprocess, 127.0.0.1) when none was set."""
        with self._lock:
            return self._runtimes.get((namespace, name)) or PodRuntime()

    def sync_endpoints(self, service_name: str, namespace: str = "default") -> tuple[JSON, JSON]:
        """Do what the endpoint controllers do: compute the Service's EndpointSlice and Endpoints
        from the pods its selector matches (ready from the pod's Ready condition, named
        targetPorts resolved through the containers' ports) and store them."""
        svc = self.get("Service", service_name, namespace)
        if svc is None:
            raise KeyError(f"no Service {namespace}/{service_name}")
        selector = svc["spec"].get("selector") or {}
        pods = [
            p
            for p in self.list("Pod", namespace)
            if selector
            and all(p["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())
            and p.get("status", {}).get("podIP")
            and p["status"].get("phase") not in ("Succeeded", "Failed")
        ]
        slice_eps: list[JSON] = []
        ready_addrs: list[JSON] = []
        not_ready_addrs: list[JSON] = []
        for p in pods:
            is_ready = any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in p["status"].get("conditions", [])
            )
            ref = {
                "kind": "Pod",
                "name": p["metadata"]["name"],
                "namespace": namespace,
                "uid": p["metadata"]["uid"],
            }
            slice_eps.append(
                slice_endpoint(
                    p["status"]["podIP"],
                    ready=is_ready,
                    pod_name=p["metadata"]["name"],
                    namespace=namespace,
                    node_name=p["spec"].get("nodeName"),
                    pod_uid=p["metadata"]["uid"],
                )
            )
            addr: JSON = {"ip": p["status"]["podIP"], "targetRef": ref}
            if p["spec"].get("nodeName"):
                addr["nodeName"] = p["spec"]["nodeName"]
            (ready_addrs if is_ready else not_ready_addrs).append(addr)
        ports: list[JSON] = []
        for sp in svc["spec"].get("ports", []):
            target = sp.get("targetPort", sp["port"])
            if isinstance(target, str):
                resolved = next(
                    (
                        cp["containerPort"]
                        for p in pods
                        for c in p["spec"].get("containers", [])
                        for cp in c.get("ports", [])
                        if cp.get("name") == target
                    ),
                    None,
                )
                if resolved is None:
                    continue
                target = resolved
            port: JSON = {"name": sp.get("name", ""), "port": target, "protocol": sp["protocol"]}
            ports.append(port)
        es = self.put(endpoint_slice(service_name, namespace, endpoints=slice_eps, ports=ports))
        ep_ports = [{k: v for k, v in p.items() if v != "" or k != "name"} for p in ports]
        ep = self.put(
            endpoints(
                service_name,
                namespace,
                ready=ready_addrs,
                not_ready=not_ready_addrs,
                ports=ep_ports,
            )
        )
        return es, ep

    def clear(self) -> None:
        """Forget every object and runtime (the default namespaces come back)."""
        with self._lock:
            self._objects.clear()
            self._runtimes.clear()
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.put(self._namespace(ns))
