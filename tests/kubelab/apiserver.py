"""A stand-in kube-apiserver for tests: real REST shapes, real WebSocket exec and port-forward.

No real kube-apiserver can run here, so this aiohttp application speaks the subset of the
Kubernetes API that probe-engine uses, byte for byte as a cluster would, and kubernetes-asyncio
is used against it unmodified:

- REST: objects in their real JSON shapes from an in-memory :class:`Store` (a GET carries
  ``kind``/``apiVersion``, list items do not; lists are ``<Kind>List`` with
  ``metadata.resourceVersion``), label selectors (``a=b,c!=d``, ``a in (x,y)``, ``a``, ``!a``),
  a few field selectors, errors as ``v1 Status`` objects (404 NotFound, 401 Unauthorized, ...).
- WebSocket exec (``v4.channel.k8s.io``, ``v4.base64.channel.k8s.io``, ``v5.channel.k8s.io`` and
  the older unversioned ones) framed as the kubelet frames it, running a REAL process chosen by
  the pod's :class:`PodRuntime` (a local subprocess, or inside a network namespace).
- WebSocket port-forward (``v4.channel.k8s.io`` and its base64 variant; the SPDY name
  ``portforward.k8s.io`` is refused with 403 as a kubelet does) relaying to a REAL TCP address.
- Bearer-token authentication, fault injection (status codes, delays, dropped connections) and a
  request log for assertions.

Run it with ``with ApiServer() as server: ...`` (a background thread with its own event loop,
usable from sync and async tests alike) and point a kubeconfig at ``server.url``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import ctypes
import datetime as dt
import fnmatch
import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

JSON = dict[str, Any]
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
#: A custom port-forward target: called with the pod port, returns a connected stream pair.
Connector = Callable[[int], Awaitable[Connection]]

__all__ = [
    "ApiServer",
    "ExecRecord",
    "Fault",
    "LabelSelectorError",
    "PodRuntime",
    "RequestRecord",
    "Store",
    "endpoint_slice",
    "endpoints",
    "match_labels",
    "network_policy",
    "node",
    "parse_label_selector",
    "pod",
    "service",
    "slice_endpoint",
    "status_object",
]


# --------------------------------------------------------------------------------------------
# Resources known to the server
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    """One API resource: its kind, plural (the URL segment), group, version and scope."""

    kind: str
    plural: str
    group: str
    version: str
    namespaced: bool
    #: field selectors the real apiserver supports for this kind (metadata.* always works)
    fields: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


RESOURCES: dict[str, Resource] = {
    r.kind: r
    for r in (
        Resource("Namespace", "namespaces", "", "v1", False, ("status.phase",)),
        Resource("Node", "nodes", "", "v1", False, ("spec.unschedulable",)),
        Resource(
            "Pod",
            "pods",
            "",
            "v1",
            True,
            (
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.nominatedNodeName",
            ),
        ),
        Resource("Service", "services", "", "v1", True),
        Resource("Endpoints", "endpoints", "", "v1", True),
        Resource("EndpointSlice", "endpointslices", "discovery.k8s.io", "v1", True),
        Resource("NetworkPolicy", "networkpolicies", "networking.k8s.io", "v1", True),
    )
}
_BY_PATH: dict[tuple[str, str, str], Resource] = {
    (r.group, r.version, r.plural): r for r in RESOURCES.values()
}


def _copy(obj: Mapping[str, Any]) -> JSON:
    """A deep copy that also proves the object is plain JSON."""
    copied: JSON = json.loads(json.dumps(obj))
    return copied


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------
# Status objects (the body of every error the API returns)
# --------------------------------------------------------------------------------------------

_REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def status_object(
    code: int, message: str, reason: str | None = None, details: JSON | None = None
) -> JSON:
    """A ``v1 Status`` Failure object as the apiserver returns it for an error."""
    obj: JSON = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason if reason is not None else _REASONS.get(code, ""),
    }
    if details is not None:
        obj["details"] = details
    obj["code"] = code
    return obj


def _status_response(
    code: int, message: str, reason: str | None = None, details: JSON | None = None
) -> web.Response:
    headers = {"Retry-After": "1"} if code in (429, 503) else None
    return web.json_response(
        status_object(code, message, reason, details), status=code, headers=headers
    )


def _not_found(plural: str, name: str, group: str = "") -> web.Response:
    details: JSON = {"name": name, "kind": plural}
    if group:
        details["group"] = group
    what = f"{plural}.{group}" if group else plural
    return _status_response(404, f'{what} "{name}" not found', details=details)


def _bad_request(message: str) -> web.Response:
    return _status_response(400, message)


# --------------------------------------------------------------------------------------------
# Label and field selectors
# --------------------------------------------------------------------------------------------


class LabelSelectorError(ValueError):
    """A label or field selector the real apiserver would reject (400 BadRequest)."""


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector: ``key op values``."""

    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        # "!=" and "notin" match objects that lack the key, as in Kubernetes
        return not present or value not in self.values


_KEY = r"[A-Za-z0-9](?:[-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_RE_NOT = re.compile(rf"^!\s*(?P<key>{_KEY})$")
_RE_SET = re.compile(rf"^(?P<key>{_KEY})\s+(?P<op>in|notin)\s*\((?P<values>.*)\)$")
_RE_EQ = re.compile(rf"^(?P<key>{_KEY})\s*(?P<op>==|=|!=)\s*(?P<value>.*)$")
_RE_EXISTS = re.compile(rf"^(?P<key>{_KEY})$")
_RE_VALUE = re.compile(rf"^{_VALUE}$")


def _split_terms(selector: str) -> list[str]:
    terms: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    terms.append("".join(current).strip())
    return [t for t in terms if t]


def _check_value(value: str, term: str) -> str:
    if len(value) > 63 or not _RE_VALUE.match(value):
        raise LabelSelectorError(f"unable to parse requirement: invalid label value: {value!r}")
    return value


def parse_label_selector(selector: str) -> list[Requirement]:
    """Parse ``a=b,c!=d,e in (x,y),f notin (z),g,!h`` as the apiserver does."""
    reqs: list[Requirement] = []
    for term in _split_terms(selector):
        if m := _RE_NOT.match(term):
            reqs.append(Requirement(m["key"], "!"))
        elif m := _RE_SET.match(term):
            values = tuple(_check_value(v.strip(), term) for v in m["values"].split(","))
            reqs.append(Requirement(m["key"], m["op"], values))
        elif m := _RE_EQ.match(term):
            op = "=" if m["op"] == "==" else m["op"]
            reqs.append(Requirement(m["key"], op, (_check_value(m["value"].strip(), term),)))
        elif m := _RE_EXISTS.match(term):
            reqs.append(Requirement(m["key"], "exists"))
        else:
            raise LabelSelectorError(f"unable to parse requirement: found '{term}', expected: key")
    return reqs


def match_labels(selector: str | Sequence[Requirement], labels: Mapping[str, str] | None) -> bool:
    """True when ``labels`` satisfy the selector (a string or parsed requirements)."""
    reqs = parse_label_selector(selector) if isinstance(selector, str) else selector
    return all(r.matches(labels or {}) for r in reqs)


def _parse_field_selector(selector: str, resource: Resource) -> list[tuple[str, str, str]]:
    terms: list[tuple[str, str, str]] = []
    allowed = {"metadata.name", "metadata.namespace", *resource.fields}
    for term in _split_terms(selector):
        m = re.match(r"^([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*)$", term)
        if not m:
            raise LabelSelectorError(f"invalid selector: '{selector}'; can't understand '{term}'")
        key, op, value = m.group(1), m.group(2), m.group(3).strip()
        if key not in allowed:
            raise LabelSelectorError(
                f'field label "{key}" not supported for {resource.kind.lower()}s'
                if resource.kind != "Endpoints"
                else f'field label "{key}" not supported for endpoints'
            )
        terms.append((key, "!=" if op == "!=" else "=", value))
    return terms


def _field_value(obj: JSON, path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def _match_fields(obj: JSON, terms: Sequence[tuple[str, str, str]]) -> bool:
    for key, op, value in terms:
        actual = _field_value(obj, key)
        if (actual == value) != (op == "="):
            return False
    return True


# --------------------------------------------------------------------------------------------
# Object builders (real JSON shapes; the Store fills uid, resourceVersion, timestamps)
# --------------------------------------------------------------------------------------------


def _meta(name: str, namespace: str | None, labels: Mapping[str, str] | None) -> JSON:
    meta: JSON = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = dict(labels)
    return meta


def service(
    name: str,
    namespace: str = "default",
    *,
    selector: Mapping[str, str] | None = None,
    ports: Sequence[Mapping[str, Any]] = ({"port": 80},),
    type: str = "ClusterIP",
    cluster_ip: str | None = None,
    labels: Mapping[str, str] | None = None,
    external_ips: Sequence[str] = (),
) -> JSON:
    """A ``v1 Service``. ``ports`` are real ServicePort dicts (``name``, ``port``, ``targetPort``
    (number or name), ``nodePort``, ``protocol``); missing fields are defaulted by the Store as the
    apiserver does: ``protocol: TCP``, ``targetPort = port``, a clusterIP from 10.96.0.0/12 and a
    nodePort from 30000-32767 for NodePort/LoadBalancer Services."""
    spec: JSON = {"type": type, "ports": [dict(p) for p in ports]}
    if selector is not None:
        spec["selector"] = dict(selector)
    if cluster_ip is not None:
        spec["clusterIP"] = cluster_ip
    if external_ips:
        spec["externalIPs"] = list(external_ips)
    return {
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": _meta(name, namespace, labels),
        "spec": spec,
        "status": {"loadBalancer": {}},
    }


def node(
    name: str,
    internal_ip: str,
    *,
    external_ip: str | None = None,
    ready: bool = True,
    labels: Mapping[str, str] | None = None,
    unschedulable: bool = False,
    pod_cidr: str | None = None,
) -> JSON:
    """A ``v1 Node`` with InternalIP (and optionally ExternalIP) addresses and a Ready condition."""
    now = _now()
    addresses = [{"type": "InternalIP", "address": internal_ip}]
    if external_ip is not None:
        addresses.append({"type": "ExternalIP", "address": external_ip})
    addresses.append({"type": "Hostname", "address": name})
    spec: JSON = {}
    if pod_cidr is not None:
        spec["podCIDR"] = pod_cidr
        spec["podCIDRs"] = [pod_cidr]
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": _meta(
            name,
            None,
            {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                **(labels or {}),
            },
        ),
        "spec": spec,
        "status": {
            "addresses": addresses,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "reason": "KubeletReady" if ready else "KubeletNotReady",
                    "message": "kubelet is posting ready status"
                    if ready
                    else "container runtime network not ready",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": str(uuid.uuid5(uuid.NAMESPACE_DNS, name + ".boot")),
                "containerRuntimeVersion": "docker://27.4.1",
                "kernelVersion": os.uname().release,
                "kubeProxyVersion": "v1.32.0",
                "kubeletVersion": "v1.32.0",
                "machineID": uuid.uuid5(uuid.NAMESPACE_DNS, name).hex,
                "operatingSystem": "linux",
                "osImage": "Ubuntu 22.04.5 LTS",
                "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_DNS, name + ".system")),
            },
        },
    }


def pod(
    name: str,
    namespace: str = "default",
    *,
    labels: Mapping[str, str] | None = None,
    pod_ip: str | None = "10.244.0.10",
    node_name: str = "minikube",
    host_ip: str | None = "192.168.49.2",
    phase: str = "Running",
    ready: bool = True,
    containers: Sequence[str | Mapping[str, Any]] = ("main",),
    env: Mapping[str, str] | None = None,
    ports: Sequence[Mapping[str, Any]] = (),
) -> JSON:
    """A ``v1 Pod``. ``containers`` are names or full Container dicts; ``env`` and ``ports``
    (ContainerPort dicts, e.g. ``{"name": "http", "containerPort": 8000}``) go to the first
    container. The env of a pod's containers is the env an exec into it sees."""
    specs: list[JSON] = []
    for i, c in enumerate(containers):
        spec_c: JSON = {"name": c, "image": "python:3.11-slim"} if isinstance(c, str) else dict(c)
        spec_c.setdefault("image", "python:3.11-slim")
        spec_c.setdefault("imagePullPolicy", "IfNotPresent")
        if i == 0 and env:
            spec_c.setdefault("env", [{"name": k, "value": v} for k, v in env.items()])
        if i == 0 and ports:
            spec_c.setdefault("ports", [{"protocol": "TCP", **p} for p in ports])
        specs.append(spec_c)
    now = _now()
    running = phase == "Running"
    is_ready = running and ready
    cond = "True" if is_ready else "False"
    status: JSON = {
        "phase": phase,
        "conditions": [
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "Ready", "status": cond, "lastTransitionTime": now},
            {"type": "ContainersReady", "status": cond, "lastTransitionTime": now},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
        ],
        "qosClass": "BestEffort",
        "startTime": now,
        "containerStatuses": [
            {
                "name": c["name"],
                "image": c["image"],
                "imageID": "docker-pullable://" + c["image"],
                "containerID": "docker://"
                + hashlib.sha256(f"{name}/{c['name']}".encode()).hexdigest(),
                "ready": is_ready,
                "restartCount": 0,
                "started": running,
                "state": {"running": {"startedAt": now}}
                if running
                else {"waiting": {"reason": "ContainerCreating"}},
            }
            for c in specs
        ],
    }
    if host_ip is not None:
        status["hostIP"] = host_ip
        status["hostIPs"] = [{"ip": host_ip}]
    if pod_ip is not None and phase in ("Running", "Succeeded", "Failed"):
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": _meta(name, namespace, labels),
        "spec": {
            "containers": specs,
            "nodeName": node_name,
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "serviceAccountName": "default",
            "dnsPolicy": "ClusterFirst",
            "terminationGracePeriodSeconds": 30,
        },
        "status": status,
    }


def slice_endpoint(
    ip: str,
    *,
    ready: bool = True,
    serving: bool | None = None,
    terminating: bool = False,
    pod_name: str | None = None,
    namespace: str = "default",
    node_name: str | None = None,
    pod_uid: str | None = None,
) -> JSON:
    """One entry of ``EndpointSlice.endpoints``."""
    ep: JSON = {
        "addresses": [ip],
        "conditions": {
            "ready": ready,
            "serving": ready if serving is None else serving,
            "terminating": terminating,
        },
    }
    if pod_name is not None:
        ref: JSON = {"kind": "Pod", "name": pod_name, "namespace": namespace}
        if pod_uid is not None:
            ref["uid"] = pod_uid
        ep["targetRef"] = ref
    if node_name is not None:
        ep["nodeName"] = node_name
    return ep


def endpoint_slice(
    service_name: str,
    namespace: str = "default",
    *,
    endpoints: Sequence[Mapping[str, Any]] = (),
    ports: Sequence[Mapping[str, Any]] = ({"name": "", "port": 80},),
    name: str | None = None,
    address_type: str = "IPv4",
) -> JSON:
    """A ``discovery.k8s.io/v1 EndpointSlice`` for a Service (label
    ``kubernetes.io/service-name``). ``endpoints`` come from :func:`slice_endpoint`; ``ports`` are
    EndpointPort dicts (``name``, ``port``, ``protocol``)."""
    suffix = hashlib.sha256(f"{namespace}/{service_name}".encode()).hexdigest()[:5]
    return {
        "kind": "EndpointSlice",
        "apiVersion": "discovery.k8s.io/v1",
        "metadata": _meta(
            name or f"{service_name}-{suffix}",
            namespace,
            {
                "kubernetes.io/service-name": service_name,
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
            },
        ),
        "addressType": address_type,
        "endpoints": [dict(e) for e in endpoints],
        "ports": [{"protocol": "TCP", **p} for p in ports],
    }


def endpoints(
    service_name: str,
    namespace: str = "default",
    *,
    ready: Sequence[Mapping[str, Any] | str] = (),
    not_ready: Sequence[Mapping[str, Any] | str] = (),
    ports: Sequence[Mapping[str, Any]] = ({"port": 80},),
) -> JSON:
    """A core ``v1 Endpoints`` object; addresses are IPs or EndpointAddress dicts."""

    def addr(a: Mapping[str, Any] | str) -> JSON:
        return {"ip": a} if isinstance(a, str) else dict(a)

    subset: JSON = {}
    if ready:
        subset["addresses"] = [addr(a) for a in ready]
    if not_ready:
        subset["notReadyAddresses"] = [addr(a) for a in not_ready]
    obj: JSON = {
        "kind": "Endpoints",
        "apiVersion": "v1",
        "metadata": _meta(service_name, namespace, None),
    }
    if subset:
        subset["ports"] = [{"protocol": "TCP", **p} for p in ports]
        obj["subsets"] = [subset]
    return obj


def network_policy(
    name: str,
    namespace: str = "default",
    *,
    pod_selector: Mapping[str, Any] | None = None,
    ingress: Sequence[Mapping[str, Any]] | None = None,
    egress: Sequence[Mapping[str, Any]] | None = None,
    policy_types: Sequence[str] | None = None,
) -> JSON:
    """A ``networking.k8s.io/v1 NetworkPolicy``. ``pod_selector`` is a LabelSelector dict
    (``{"matchLabels": {...}}``) or a plain label dict (taken as matchLabels); ``ingress``/
    ``egress`` rules are in their real shapes. policyTypes default as the apiserver does."""
    if pod_selector is None:
        selector: JSON = {}
    elif "matchLabels" in pod_selector or "matchExpressions" in pod_selector:
        selector = dict(pod_selector)
    else:
        selector = {"matchLabels": dict(pod_selector)}
    spec: JSON = {"podSelector": selector}
    if ingress is not None:
        spec["ingress"] = [dict(r) for r in ingress]
    if egress is not None:
        spec["egress"] = [dict(r) for r in egress]
    if policy_types is None:
        policy_types = ["Ingress", "Egress"] if egress is not None else ["Ingress"]
    spec["policyTypes"] = list(policy_types)
    return {
        "kind": "NetworkPolicy",
        "apiVersion": "networking.k8s.io/v1",
        "metadata": _meta(name, namespace, None),
        "spec": spec,
    }


# --------------------------------------------------------------------------------------------
# Where a pod really runs
# --------------------------------------------------------------------------------------------

_CLONE_NEWNET = 0x40000000
#: a container image's PATH, not this process's (a pyenv shim costs ~50 ms per python3 start)
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _socket_in_netns(netns: str, family: int) -> socket.socket:
    """A TCP socket created inside the named network namespace (``/var/run/netns/NAME``).

    setns() switches only the calling thread, so a throwaway thread does it; the socket keeps
    its namespace for life, and connect() can then run on the event loop."""
    result: list[socket.socket | BaseException] = []

    def work() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/var/run/netns/{netns}", os.O_RDONLY)
            try:
                if int(libc.setns(fd, _CLONE_NEWNET)) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, os.strerror(err), f"setns {netns}")
            finally:
                os.close(fd)
            result.append(socket.socket(family, socket.SOCK_STREAM))
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=work, name=f"kubelab-setns-{netns}", daemon=True)
    thread.start()
    thread.join()
    outcome = result[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


@dataclass
class PodRuntime:
    """Where an emulated pod really runs, kept server-side next to the pod object.

    exec: the command runs as a local subprocess, prefixed by ``ip netns exec NETNS`` when
    ``netns`` is set (the pod *is* a lab network namespace), then by ``exec_prefix``. Its
    environment is a container's (PATH ``/usr/local/sbin:...:/bin``, ``HOSTNAME``, ``HOME``),
    then the container's ``env`` from the pod spec, then ``env`` here (e.g. to change PATH).
    The process gets SIGKILL (its whole session) when the client goes away.

    port-forward: one TCP connection per WebSocket, to ``forward_host`` (default 127.0.0.1,
    inside ``netns`` when set, as a kubelet connects to localhost inside the pod's namespace),
    port ``forward_ports.get(port, port)``; or ``connector(port)`` when given.
    """

    netns: str | None = None
    exec_prefix: Sequence[str] = ()
    env: Mapping[str, str] | None = None
    cwd: str | None = None
    #: look the command up on PATH first, answering "executable file not found" like a runtime
    check_command: bool = True
    forward_host: str = "127.0.0.1"
    forward_ports: Mapping[int, int] = field(default_factory=dict)
    connector: Connector | None = None
    connect_timeout: float = 10.0

    def argv(self, command: Sequence[str]) -> list[str]:
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        return [*prefix, *self.exec_prefix, *command]

    def target(self, port: int) -> tuple[str, int]:
        return self.forward_host, self.forward_ports.get(port, port)

    async def connect(self, port: int) -> Connection:
        if self.connector is not None:
            return await self.connector(port)
        host, real_port = self.target(port)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        if self.netns is None:
            sock = socket.socket(family, socket.SOCK_STREAM)
        else:
            sock = _socket_in_netns(self.netns, family)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            loop = asyncio.get_running_loop()
            await asyncio.wait_for(loop.sock_connect(sock, (host, real_port)), self.connect_timeout)
            return await asyncio.open_connection(sock=sock)
        except BaseException:
            sock.close()
            raise


# --------------------------------------------------------------------------------------------
# The in-memory store
# --------------------------------------------------------------------------------------------


class Store:
    """Objects by (kind, namespace, name), as plain dicts in their real JSON shapes.

    Thread-safe: tests mutate it from their own thread while the server reads it from its loop.
    ``put`` defaults fields as the apiserver would (uid, resourceVersion, creationTimestamp,
    Service clusterIP/nodePort/targetPort/protocol) and auto-creates the namespace.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._objects: dict[tuple[str, str, str], JSON] = {}
        self._runtimes: dict[tuple[str, str], PodRuntime] = {}
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
        stored: JSON = _copy(obj)
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
                "creationTimestamp", old["metadata"]["creationTimestamp"] if old else _now()
            )
            meta["resourceVersion"] = str(self._rv)
            if kind == "Service":
                self._default_service(stored, old)
            self._objects[key] = stored
            if runtime is not None:
                self._runtimes[(key[1], key[2])] = runtime
            return _copy(stored)

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

    def get(self, kind: str, name: str, namespace: str | None = "default") -> JSON | None:
        """A copy of one object, or None."""
        with self._lock:
            obj = self._objects.get(self._key(kind, name, namespace))
            return _copy(obj) if obj is not None else None

    def delete(self, kind: str, name: str, namespace: str | None = "default") -> bool:
        """Remove an object; True when it existed."""
        key = self._key(kind, name, namespace)
        with self._lock:
            if kind == "Pod":
                self._runtimes.pop((key[1], key[2]), None)
            existed = self._objects.pop(key, None) is not None
            if existed:
                self._rv += 1
            return existed

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
        fields = _parse_field_selector(field_selector, res) if field_selector else []
        with self._lock:
            items = [
                obj
                for (k, ns, _), obj in sorted(self._objects.items())
                if k == kind and (namespace is None or not res.namespaced or ns == namespace)
            ]
            return [
                _copy(o)
                for o in items
                if match_labels(reqs, o["metadata"].get("labels")) and _match_fields(o, fields)
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


# --------------------------------------------------------------------------------------------
# Faults and the request log
# --------------------------------------------------------------------------------------------


@dataclass
class Fault:
    """A misbehaviour for requests whose path matches ``pattern`` (fnmatch; ``*`` spans ``/``).

    - ``status``: answer with this code and a matching Status object (before any upgrade).
    - ``delay``: sleep this long first (seconds).
    - ``abort``: REST: cut the TCP connection without answering.
    - ``drop_after_bytes``: WebSocket: abort the TCP connection (no close frame) once this many
      payload bytes were sent to the client (0: right after the first frame).
    - ``times``: fire this many times only (None: every time); ``hits`` counts firings.
    """

    pattern: str
    status: int | None = None
    delay: float = 0.0
    abort: bool = False
    drop_after_bytes: int | None = None
    message: str | None = None
    method: str | None = None
    times: int | None = None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return fnmatch.fnmatchcase(path, self.pattern)


@dataclass
class RequestRecord:
    """One request the server received (``status`` 101 for an accepted WebSocket)."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    websocket: bool
    authorization: str | None
    status: int = 0

    def param(self, name: str) -> list[str]:
        return [v for k, v in self.query if k == name]


@dataclass
class ExecRecord:
    """One exec session: what ran where, and how it ended."""

    namespace: str
    pod: str
    container: str
    command: list[str]
    argv: list[str]
    protocol: str
    exit_code: int | None = None
    client_closed: bool = False
    dropped: bool = False


_RECORD_KEY = web.RequestKey("kubelab.record", RequestRecord)
_FAULT_KEY = web.RequestKey("kubelab.fault", Fault)


# --------------------------------------------------------------------------------------------
# WebSocket channel framing (server side)
# --------------------------------------------------------------------------------------------

#: exec subprotocols the kubelet accepts; value: (base64 text frames, JSON status, close frames)
EXEC_PROTOCOLS: dict[str, tuple[bool, bool, bool]] = {
    "v5.channel.k8s.io": (False, True, True),
    "v4.channel.k8s.io": (False, True, False),
    "v4.base64.channel.k8s.io": (True, True, False),
    "v3.channel.k8s.io": (False, False, False),
    "v2.channel.k8s.io": (False, False, False),
    "channel.k8s.io": (False, False, False),
    "base64.channel.k8s.io": (True, False, False),
    "": (False, False, False),
}
PORTFORWARD_PROTOCOLS: dict[str, bool] = {
    "v4.channel.k8s.io": False,
    "v4.base64.channel.k8s.io": True,
    "": False,
}
STDIN, STDOUT, STDERR, STATUS, RESIZE = 0, 1, 2, 3, 4
CLOSE_SIGNAL = 255


class _Dropped(Exception):
    """The fault injector cut the connection."""


class _Channels:
    """Send and receive ``[channel byte] + payload`` messages (or base64 text frames)."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        *,
        base64_frames: bool,
        drop_after: int | None,
        on_drop: Callable[[], None] | None = None,
    ) -> None:
        self.on_drop = on_drop
        self.ws = ws
        self.request = request
        self.base64 = base64_frames
        self.drop_after = drop_after
        self.sent = 0
        self.dropped = False
        self._lock = asyncio.Lock()

    async def send(self, channel: int, payload: bytes, *, count: bool = True) -> None:
        async with self._lock:
            if self.dropped:
                raise _Dropped
            if self.base64:
                await self.ws.send_str(chr(ord("0") + channel) + base64.b64encode(payload).decode())
            else:
                await self.ws.send_bytes(bytes((channel,)) + payload)
            if count:
                self.sent += len(payload)
            if self.drop_after is not None and self.sent >= self.drop_after:
                self.drop()
                raise _Dropped

    def drop(self) -> None:
        self.dropped = True
        if self.on_drop is not None:
            self.on_drop()
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def receive(self) -> AsyncIterator[tuple[int, bytes]]:
        """Frames from the client until it closes; malformed frames are skipped."""
        async for msg in self.ws:
            if msg.type is WSMsgType.BINARY:
                data: bytes = msg.data
                if data:
                    yield data[0], data[1:]
            elif msg.type is WSMsgType.TEXT and self.base64:
                text: str = msg.data
                if not text:
                    continue
                with contextlib.suppress(binascii.Error, ValueError):
                    yield ord(text[0]) - ord("0"), base64.b64decode(text[1:])
            elif msg.type is WSMsgType.ERROR:
                return

    async def close(self) -> None:
        if not self.dropped:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.close()


def _offered_protocols(request: web.Request) -> list[str]:
    return [
        p.strip()
        for header in request.headers.getall("Sec-WebSocket-Protocol", [])
        for p in header.split(",")
        if p.strip()
    ]


def _negotiate(request: web.Request, supported: Iterable[str]) -> str | None:
    offered = _offered_protocols(request) or [""]
    supported = list(supported)
    return next((p for p in offered if p in supported), None)


def _refuse_protocol(request: web.Request, supported: Iterable[str]) -> web.Response:
    # What golang.org/x/net/websocket does when the kubelet's handshake rejects the protocol.
    return web.Response(
        status=403,
        text=(
            "unable to upgrade: requested protocol(s) are not supported: "
            f"{_offered_protocols(request)}; supports {[p for p in supported if p]}"
        ),
    )


def _is_upgrade(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def _flag(query: Mapping[str, str], name: str) -> bool:
    return query.get(name, "false").strip().lower() in ("true", "1", "t", "yes")


def _go_errno_text(exc: BaseException) -> str:
    """An OSError as Go's net package words it after ``connect: ``."""
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) and not getattr(exc, "errno", None):
        return "i/o timeout"
    code = getattr(exc, "errno", None)
    if isinstance(code, int) and code:
        text = os.strerror(code)
        return text[:1].lower() + text[1:]
    return str(exc) or type(exc).__name__


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


def _self_signed_cert(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "apiserver.crt", directory / "apiserver.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=kubelab",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,digitalSignature,keyCertSign",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


class ApiServer:
    """The stand-in apiserver, on 127.0.0.1:ephemeral, in a background thread.

    ``token``: when set, every API request needs ``Authorization: Bearer <token>`` (else 401);
    ``/version``, ``/healthz``, ``/livez``, ``/readyz`` stay public as on a real cluster.
    ``tls``: serve HTTPS with a self-signed certificate made at start (``ca_pem`` is its PEM).
    ``read_size``: bytes read per chunk from exec pipes and port-forward sockets, each chunk one
    WebSocket message (the kubelet copies with 32 KiB buffers).
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        token: str | None = "kubelab-token",
        tls: bool = False,
        read_size: int = 32 * 1024,
    ) -> None:
        self.store = store if store is not None else Store()
        self.token = token
        self.tls = tls
        self.read_size = read_size
        self.faults: list[Fault] = []
        self.requests: list[RequestRecord] = []
        self.execs: list[ExecRecord] = []
        self.ca_pem: bytes | None = None
        self.port = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._procs: set[asyncio.subprocess.Process] = set()
        self._sessions: set[asyncio.Task[Any]] = set()

    # ---- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http(s)://127.0.0.1:PORT``."""
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> ApiServer:
        """Start serving in a background thread; returns once the port is bound."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._shutdown())
                loop.close()

        self._thread = threading.Thread(target=run, name="kubelab-apiserver", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop serving, end WebSocket sessions and kill exec processes still running."""
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _serve(self) -> None:
        self._runner = web.AppRunner(
            self.build_app(), access_log=None, handle_signals=False, shutdown_timeout=1
        )
        await self._runner.setup()
        ssl_ctx: ssl.SSLContext | None = None
        if self.tls:
            self._tmp = tempfile.TemporaryDirectory(prefix="kubelab-")
            cert, key = _self_signed_cert(Path(self._tmp.name))
            self.ca_pem = cert.read_bytes()
            ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_ctx.load_cert_chain(cert, key)
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=ssl_ctx)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def _shutdown(self) -> None:
        for proc in list(self._procs):
            _kill(proc)
        sessions = list(self._sessions)
        for task in sessions:
            task.cancel()
        if sessions:
            await asyncio.wait(sessions, timeout=5)
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- test-facing helpers ---------------------------------------------------------------

    def inject(self, pattern: str, **kwargs: Any) -> Fault:
        """Add a :class:`Fault` (e.g. ``inject("/api/v1/nodes", status=500)``) and return it."""
        fault = Fault(pattern, **kwargs)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def requests_to(self, pattern: str) -> list[RequestRecord]:
        """Requests whose path matches the fnmatch ``pattern``."""
        with self._lock:
            return [r for r in self.requests if fnmatch.fnmatchcase(r.path, pattern)]

    def write_kubeconfig(self, path: str | os.PathLike[str], **kwargs: Any) -> Path:
        """Write a kubeconfig for this server (context ``minikube`` unless told otherwise)."""
        from .kubeconfig import write_kubeconfig

        kwargs.setdefault("token", self.token)
        kwargs.setdefault("ca_pem", self.ca_pem)
        return write_kubeconfig(path, self.url, **kwargs)

    # ---- the application -------------------------------------------------------------------

    def build_app(self) -> web.Application:
        """The aiohttp application (usable on its own, e.g. with aiohttp's test server)."""
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024**2)
        r = app.router
        for path in ("/version", "/version/"):
            r.add_get(path, self._version)
        for path in ("/healthz", "/livez", "/readyz"):
            r.add_get(path, self._health)
        r.add_get("/api", self._api_versions)
        r.add_get("/apis", self._api_groups)
        pods = "/api/v1/namespaces/{namespace}/pods/{name}"
        r.add_route("*", pods + "/exec", self._exec)
        r.add_route("*", pods + "/portforward", self._portforward)
        core_ns = "/api/v1/namespaces/{namespace}/{plural}"
        group_ns = "/apis/{group}/{version}/namespaces/{namespace}/{plural}"
        for prefix in (core_ns, group_ns):
            r.add_route("*", prefix, self._collection)
            r.add_route("*", prefix + "/{name}", self._item)
        r.add_route("*", "/api/v1/{plural}", self._collection)
        r.add_route("*", "/api/v1/{plural}/{name}", self._item)
        r.add_route("*", "/apis/{group}/{version}/{plural}", self._collection)
        r.add_route("*", "/apis/{group}/{version}/{plural}/{name}", self._item)
        return app

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        record = RequestRecord(
            method=request.method,
            path=request.path,
            query=tuple(request.rel_url.query.items()),
            websocket=_is_upgrade(request),
            authorization=request.headers.get("Authorization"),
        )
        request[_RECORD_KEY] = record
        with self._lock:
            self.requests.append(record)
            fault = next((f for f in self.faults if f.matches(request.method, request.path)), None)
            if fault is not None:
                fault.hits += 1
        response = await self._guarded(request, handler, fault)
        record.status = response.status
        return response

    async def _guarded(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        fault: Fault | None,
    ) -> web.StreamResponse:
        public = request.path.rstrip("/") in ("/version", "/healthz", "/livez", "/readyz")
        authorized = request.headers.get("Authorization", "") == f"Bearer {self.token}"
        if self.token is not None and not public and not authorized:
            return _status_response(401, "Unauthorized")
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.abort:
                if request.transport is not None:
                    request.transport.abort()
                return web.Response(status=499)
            if fault.status is not None:
                return self._fault_response(request, fault)
            request[_FAULT_KEY] = fault
        try:
            return await handler(request)
        except LabelSelectorError as exc:
            return _bad_request(str(exc))

    @staticmethod
    def _fault_response(request: web.Request, fault: Fault) -> web.Response:
        code = fault.status or 500
        info = request.match_info
        plural, name, ns = info.get("plural", "pods"), info.get("name"), info.get("namespace")
        if fault.message is not None:
            message = fault.message
        elif code == 403:
            verb = "get" if name else "list"
            resource = plural
            if request.path.endswith(("/exec", "/portforward")):
                verb, resource = "create", "pods/" + request.path.rsplit("/", 1)[1]
            what = f'{plural} "{name}"' if name else plural
            message = (
                f'{what} is forbidden: User "system:serviceaccount:default:probe-engine" cannot '
                f'{verb} resource "{resource}" in API group "{info.get("group", "")}"'
                + (f' in the namespace "{ns}"' if ns else " at the cluster scope")
            )
        elif code == 500:
            message = "Internal error occurred: kubelab injected fault"
        elif code == 404:
            return _not_found(plural, name or "")
        else:
            message = f"kubelab injected fault ({code})"
        details = {"causes": [{"message": "kubelab injected fault"}]} if code == 500 else None
        return _status_response(code, message, details=details)

    # ---- discovery and health --------------------------------------------------------------

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "major": "1",
                "minor": "32",
                "gitVersion": "v1.32.0",
                "gitCommit": "kubelab",
                "gitTreeState": "clean",
                "buildDate": "2024-12-11T17:59:15Z",
                "goVersion": "go1.23.3",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
        )

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _api_versions(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}
                ],
            }
        )

    async def _api_groups(self, request: web.Request) -> web.Response:
        groups = sorted({r.group for r in RESOURCES.values() if r.group})
        return web.json_response(
            {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [
                    {
                        "name": g,
                        "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
                        "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"},
                    }
                    for g in groups
                ],
            }
        )

    # ---- REST ------------------------------------------------------------------------------

    def _resource(self, request: web.Request) -> Resource | None:
        info = request.match_info
        return _BY_PATH.get((info.get("group", ""), info.get("version", "v1"), info["plural"]))

    @staticmethod
    def _no_resource() -> web.Response:
        return _status_response(404, "the server could not find the requested resource", details={})

    @staticmethod
    def _method_not_allowed() -> web.Response:
        return _status_response(
            405, "the server does not allow this method on the requested resource", details={}
        )

    async def _collection(self, request: web.Request) -> web.Response:
        res = self._resource(request)
        namespace = request.match_info.get("namespace")
        if res is None or (namespace is not None and not res.namespaced):
            return self._no_resource()
        if request.method != "GET":
            return self._method_not_allowed()
        query = request.rel_url.query
        if _flag(query, "watch"):
            return _bad_request("kubelab does not serve watches")
        items = self.store.list(
            res.kind, namespace, query.get("labelSelector"), query.get("fieldSelector")
        )
        meta: JSON = {"resourceVersion": self.store.resource_version}
        limit = int(query.get("limit", "0") or 0)
        offset = 0
        if query.get("continue"):
            try:
                offset = int(base64.urlsafe_b64decode(query["continue"]).decode())
            except (ValueError, binascii.Error):
                return _status_response(
                    410, "The provided continue parameter is too old", "Expired"
                )
        if limit > 0 or offset:
            end = offset + limit if limit > 0 else len(items)
            if end < len(items):
                meta["continue"] = base64.urlsafe_b64encode(str(end).encode()).decode()
                meta["remainingItemCount"] = len(items) - end
            items = items[offset:end]
        for item in items:
            item.pop("kind", None)
            item.pop("apiVersion", None)
        return web.json_response(
            {
                "kind": res.kind + "List",
                "apiVersion": res.api_version,
                "metadata": meta,
                "items": items,
            }
        )

    async def _item(self, request: web.Request) -> web.Response:
        res = self._resource(request)
        namespace = request.match_info.get("namespace")
        if res is None or res.namespaced != (namespace is not None):
            return self._no_resource()
        if request.method != "GET":
            return self._method_not_allowed()
        name = request.match_info["name"]
        obj = self.store.get(res.kind, name, namespace)
        if obj is None:
            return _not_found(res.plural, name, res.group)
        return web.json_response(obj)

    # ---- exec ------------------------------------------------------------------------------

    def _pick_container(self, pod_obj: JSON, wanted: str | None) -> tuple[JSON | None, str]:
        containers: list[JSON] = pod_obj["spec"].get("containers", [])
        name = pod_obj["metadata"]["name"]
        if wanted:
            found = next((c for c in containers if c["name"] == wanted), None)
            if found is None:
                return None, f"container {wanted} is not valid for pod {name}"
            return found, ""
        if len(containers) == 1:
            return containers[0], ""
        names = " ".join(c["name"] for c in containers)
        return None, f"a container name must be specified for pod {name}, choose one of: [{names}]"

    async def _exec(self, request: web.Request) -> web.StreamResponse:
        if request.method not in ("GET", "POST"):
            return self._method_not_allowed()
        ns, name = request.match_info["namespace"], request.match_info["name"]
        pod_obj = self.store.get("Pod", name, ns)
        if pod_obj is None:
            return _not_found("pods", name)
        query = request.rel_url.query
        command = query.getall("command", [])
        stdin, stdout, stderr, tty = (_flag(query, k) for k in ("stdin", "stdout", "stderr", "tty"))
        container, problem = self._pick_container(pod_obj, query.get("container"))
        if container is None:
            return _bad_request(problem)
        if pod_obj.get("status", {}).get("phase") in ("Succeeded", "Failed", "Pending"):
            phase = pod_obj["status"]["phase"]
            return _bad_request(
                f"cannot exec into a container in a completed pod; current phase is {phase}"
                if phase != "Pending"
                else f"pod {name} does not have a host assigned"
            )
        if not command:
            return _bad_request("you must specify at least one command for the container")
        if not (stdin or stdout or stderr):
            return _bad_request("you must specify at least 1 of stdin, stdout, stderr")
        if not _is_upgrade(request):
            return _bad_request("Upgrade request required")
        protocol = _negotiate(request, EXEC_PROTOCOLS)
        if protocol is None:
            return _refuse_protocol(request, EXEC_PROTOCOLS)
        base64_frames, json_status, _ = EXEC_PROTOCOLS[protocol]
        runtime = self.store.runtime(ns, name)
        argv = runtime.argv(command)
        record = ExecRecord(ns, name, container["name"], list(command), argv, protocol)
        with self._lock:
            self.execs.append(record)
        ws = web.WebSocketResponse(
            protocols=(protocol,) if protocol else (),
            compress=False,  # a real apiserver negotiates no permessage-deflate
            max_msg_size=64 * 1024**2,
        )
        await ws.prepare(request)
        request[_RECORD_KEY].status = 101
        fault: Fault | None = request.get(_FAULT_KEY)
        chan = _Channels(
            ws,
            request,
            base64_frames=base64_frames,
            drop_after=fault.drop_after_bytes if fault else None,
            on_drop=lambda: setattr(record, "dropped", True),
        )
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            await self._run_exec(
                chan,
                record,
                runtime,
                pod_obj,
                container,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                tty=tty,
                json_status=json_status,
            )
        except _Dropped:
            record.dropped = True
        except ConnectionError:
            record.client_closed = True
        finally:
            self._sessions.discard(task)
            await chan.close()
        return ws

    async def _run_exec(
        self,
        chan: _Channels,
        record: ExecRecord,
        runtime: PodRuntime,
        pod_obj: JSON,
        container: JSON,
        *,
        stdin: bool,
        stdout: bool,
        stderr: bool,
        tty: bool,
        json_status: bool,
    ) -> None:
        # The kubelet's first message: an empty one on the lowest writable channel.
        await chan.send(STDOUT if stdout else STDERR if stderr else STATUS, b"")
        env = {
            "PATH": _DEFAULT_PATH,
            "HOSTNAME": pod_obj["metadata"]["name"],
            "HOME": "/root",
            **{e["name"]: e.get("value", "") for e in container.get("env", []) if "name" in e},
            **(runtime.env or {}),
        }
        exe = record.command[0]
        found = (
            shutil.which(exe, path=env["PATH"])
            if "/" not in exe
            else (exe if os.access(exe, os.X_OK) else None)
        )
        if runtime.check_command and found is None:
            cause = (
                "error executing command in container: failed to exec in container: failed to "
                f'start exec "{uuid.uuid4().hex}": OCI runtime exec failed: exec failed: unable to '
                f'start container process: exec: "{exe}": executable file not found in $PATH: '
                "unknown"
            )
            await self._send_status(
                chan,
                json_status,
                status_object(
                    500,
                    "Internal error occurred: " + cause,
                    details={"causes": [{"message": cause}]},
                ),
            )
            return
        proc = await asyncio.create_subprocess_exec(
            *record.argv,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
            stderr=subprocess.STDOUT
            if tty and stdout
            else subprocess.PIPE
            if stderr
            else subprocess.DEVNULL,
            env=env,
            cwd=runtime.cwd,
            start_new_session=True,
        )
        self._procs.add(proc)

        async def pump(stream: asyncio.StreamReader | None, channel: int) -> None:
            if stream is None:
                return
            while chunk := await stream.read(self.read_size):
                await chan.send(channel, chunk)

        async def from_client() -> None:
            async for channel, payload in chan.receive():
                if channel == CLOSE_SIGNAL and payload[:1] == bytes((STDIN,)):
                    if proc.stdin is not None:  # v5: the client closed stdin
                        proc.stdin.close()
                elif channel == STDIN and proc.stdin is not None and not proc.stdin.is_closing():
                    try:
                        proc.stdin.write(payload)
                        await proc.stdin.drain()
                    except (BrokenPipeError, ConnectionResetError):
                        pass

        pumps = [
            asyncio.create_task(pump(proc.stdout, STDOUT)),
            asyncio.create_task(pump(proc.stderr, STDERR)),
        ]
        client = asyncio.create_task(from_client())
        waiter = asyncio.create_task(proc.wait())
        try:
            while not waiter.done():
                await asyncio.wait(
                    [t for t in (waiter, client, *pumps) if not t.done()],
                    return_when=asyncio.FIRST_COMPLETED,
                )
                _raise_first(pumps)
                if client.done() and not waiter.done():
                    record.client_closed = True
                    return  # the finally kills the process, as the session is gone
            # The process exited: let its output drain (a grandchild may hold the pipes open).
            await asyncio.wait(pumps, timeout=5)
            _raise_first(pumps)
            code = waiter.result()
            code = 128 - code if code < 0 else code
            record.exit_code = code
            if code == 0:
                status: JSON = {"metadata": {}, "status": "Success"}
            else:
                status = {
                    "metadata": {},
                    "status": "Failure",
                    "message": (
                        "command terminated with non-zero exit code: error executing command "
                        f"[{' '.join(record.command)}], exit code {code}"
                    ),
                    "reason": "NonZeroExitCode",
                    "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
                }
            await self._send_status(chan, json_status, status)
        finally:
            _kill(proc)
            for t in (*pumps, client):
                t.cancel()
            # Reap the process so its transport closes on this loop, not in a finalizer later.
            await asyncio.wait([waiter], timeout=5)
            waiter.cancel()
            await asyncio.gather(*pumps, client, waiter, return_exceptions=True)
            self._procs.discard(proc)

    @staticmethod
    async def _send_status(chan: _Channels, json_status: bool, status: JSON) -> None:
        if json_status:
            await chan.send(STATUS, json.dumps(status, separators=(",", ":")).encode())
        elif status.get("status") != "Success":
            await chan.send(STATUS, str(status.get("message", "")).encode())

    # ---- port-forward ----------------------------------------------------------------------

    async def _portforward(self, request: web.Request) -> web.StreamResponse:
        if request.method not in ("GET", "POST"):
            return self._method_not_allowed()
        ns, name = request.match_info["namespace"], request.match_info["name"]
        pod_obj = self.store.get("Pod", name, ns)
        if pod_obj is None:
            return _not_found("pods", name)
        query = request.rel_url.query
        ports: list[int] = []
        for raw in query.getall("ports", []) + query.getall("port", []):
            for part in raw.split(","):
                try:
                    port = int(part)
                except ValueError:
                    return _bad_request(f'unable to parse "{part}" as a port: invalid syntax')
                if not 0 < port < 65536:
                    return _bad_request(f'port "{part}" must be > 0 and < 65536')
                ports.append(port)
        if not ports:
            return _bad_request('query parameter "port" is required')
        if pod_obj.get("status", {}).get("phase") != "Running":
            return _bad_request(
                f"unable to forward port because pod is not running. Current status="
                f"{pod_obj.get('status', {}).get('phase')}"
            )
        if not _is_upgrade(request):
            return _bad_request("Upgrade request required")
        protocol = _negotiate(request, PORTFORWARD_PROTOCOLS)
        if protocol is None:
            return _refuse_protocol(request, PORTFORWARD_PROTOCOLS)
        ws = web.WebSocketResponse(
            protocols=(protocol,) if protocol else (), compress=False, max_msg_size=64 * 1024**2
        )
        await ws.prepare(request)
        request[_RECORD_KEY].status = 101
        fault: Fault | None = request.get(_FAULT_KEY)
        chan = _Channels(
            ws,
            request,
            base64_frames=PORTFORWARD_PROTOCOLS[protocol],
            drop_after=fault.drop_after_bytes if fault else None,
        )
        runtime = self.store.runtime(ns, name)
        sandbox = hashlib.sha256(pod_obj["metadata"]["uid"].encode()).hexdigest()
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            await self._run_portforward(chan, runtime, ports, sandbox)
        except (_Dropped, ConnectionError):
            pass
        finally:
            self._sessions.discard(task)
            await chan.close()
        return ws

    async def _run_portforward(
        self, chan: _Channels, runtime: PodRuntime, ports: list[int], sandbox: str
    ) -> None:
        for i, port in enumerate(ports):
            prefix = port.to_bytes(2, "little")
            await chan.send(2 * i, prefix, count=False)
            await chan.send(2 * i + 1, prefix, count=False)
        inboxes: list[asyncio.Queue[bytes]] = [asyncio.Queue(64) for _ in ports]

        async def from_client() -> None:
            async for channel, payload in chan.receive():
                # what the client sends carries no port prefix; odd channels are write-only
                if channel % 2 == 0 and channel // 2 < len(inboxes) and payload:
                    await inboxes[channel // 2].put(payload)

        async def forward(i: int, port: int) -> None:
            try:
                reader, writer = await runtime.connect(port)
            except (TimeoutError, OSError) as exc:
                host, real = runtime.target(port)
                netns = f"/var/run/netns/{runtime.netns or 'cni-' + sandbox[:8]}"
                message = (
                    f"error forwarding port {port} to pod {sandbox}, uid : failed to execute "
                    f'portforward in network namespace "{netns}": failed to connect to '
                    f'localhost:{port} inside namespace "{sandbox}", IPv4: dial tcp4 '
                    f"{host}:{real}: connect: {_go_errno_text(exc)} IPv6 dial tcp6: address "
                    "localhost: no suitable address "
                )
                await chan.send(2 * i + 1, message.encode())
                return

            async def up() -> None:
                while True:
                    data = await inboxes[i].get()
                    writer.write(data)
                    await writer.drain()

            async def down() -> None:
                while chunk := await reader.read(self.read_size):
                    await chan.send(2 * i, chunk)

            tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
            try:
                # the port is done when the pod side closes (down ends) or the client goes away
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                _raise_first(tasks, ignore=(ConnectionError,))
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                writer.close()
                with contextlib.suppress(ConnectionError, OSError):
                    await writer.wait_closed()

        client = asyncio.create_task(from_client())
        forwards = asyncio.gather(*(forward(i, p) for i, p in enumerate(ports)))
        try:
            waitables: list[asyncio.Future[Any]] = [client, forwards]
            done, _ = await asyncio.wait(waitables, return_when=asyncio.FIRST_COMPLETED)
            if forwards in done:
                forwards.result()
        finally:
            client.cancel()
            forwards.cancel()
            await asyncio.gather(client, forwards, return_exceptions=True)


def _raise_first(
    tasks: Iterable[asyncio.Task[Any]], ignore: tuple[type[BaseException], ...] = ()
) -> None:
    """Re-raise the first failure among finished tasks (but those of the ``ignore`` types)."""
    for task in tasks:
        if task.done() and not task.cancelled():
            exc = task.exception()
            if exc is not None and not isinstance(exc, ignore):
                raise exc


def _kill(proc: asyncio.subprocess.Process) -> None:
    # The whole session: `sh -c` children too. Linux keeps a PGID from reuse while it has members.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
