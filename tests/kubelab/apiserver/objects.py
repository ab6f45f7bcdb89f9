"""Object builders in their real JSON shapes (the Store fills uid, resourceVersion, timestamps)."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from .resources import JSON, timestamp


def meta(name: str, namespace: str | None, labels: Mapping[str, str] | None) -> JSON:
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
        "metadata": meta(name, namespace, labels),
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
    taints: Sequence[Mapping[str, str]] = (),
) -> JSON:
    """A ``v1 Node`` with InternalIP (and optionally ExternalIP) addresses and a Ready condition;
    ``unschedulable`` is a cordoned node, ``taints`` are ``{key, value, effect}``."""
    now = timestamp()
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
        taints = [*taints, {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]
    if taints:
        spec["taints"] = [dict(t) for t in taints]
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": meta(
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
    now = timestamp()
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
        "metadata": meta(name, namespace, labels),
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
        "metadata": meta(
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
        "metadata": meta(service_name, namespace, None),
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
        "metadata": meta(name, namespace, None),
        "spec": spec,
    }
