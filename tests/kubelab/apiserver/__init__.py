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
- Pods created through the API, as a scheduler and a kubelet would handle them: admission (Pod
  Security, quota), binding (affinity, cordons, taints), real processes in a network namespace
  wired to the node, logs (follow), status, graceful deletion, ephemeral containers; watches.
- Bearer-token authentication, fault injection (status codes, delays, dropped connections) and a
  request log for assertions.

Run it with ``with ApiServer() as server: ...`` (a background thread with its own event loop,
usable from sync and async tests alike) and point a kubeconfig at ``server.url``.

One module per concern: resources (kinds, Status errors), selectors, objects (builders), store,
runtime (where a pod runs), records (faults, the request and exec logs), frames (WebSocket
channels), server (lifecycle, auth, faults), routes (the table of every route), a module per
kind of route: rest, watch, writes, pods, logs, ephemeral, execs, portforward; and behind them
admission, scheduler and kubelet. A new route is a handler and a row in routes.py.
"""

from __future__ import annotations

from .objects import endpoint_slice, endpoints, network_policy, node, pod, service, slice_endpoint
from .records import ExecRecord, Fault, RequestRecord
from .resources import status_object
from .runtime import PodRuntime
from .selectors import LabelSelectorError, match_labels, parse_label_selector
from .server import ApiServer
from .store import Store

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
