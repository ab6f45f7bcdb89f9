"""The stand-in apiserver speaks Kubernetes well enough for kubernetes-asyncio, used unmodified.

REST reads come back as typed objects, errors as ApiException with the real Status, exec streams
a real process through the kubelet's channel protocol and port-forward relays real TCP.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.stream import WsApiClient

from probe_engine.targets.portforward import (
    ForwardOutcome,
    Framing,
    LocalConnection,
    relay,
    serve_local,
)
from tests.kubelab import apiserver as kl
from tests.kubelab.fixtures import HttpBackend, populate_service

pytestmark = [pytest.mark.kubernetes, pytest.mark.anyio]

V4 = "v4.channel.k8s.io"
V4_BASE64 = "v4.base64.channel.k8s.io"
V5 = "v5.channel.k8s.io"


# =============================================================================================
# Client-side port-forward framing on kubernetes-asyncio's WebSocket.
# kubernetes-asyncio 36.x has no port-forward helper: the engine frames it itself.
# =============================================================================================


# The engine's own client-side framing (probe_engine.targets.portforward) drives the server.
PortForwardOutcome = ForwardOutcome
relay_portforward = relay


@contextlib.asynccontextmanager
async def local_port_forward(
    core: Any, pod: str, namespace: str, port: int, *, protocol: str = V4
) -> AsyncIterator[tuple[int, list[PortForwardOutcome]]]:
    """Expose ``pod:port`` on 127.0.0.1:<ephemeral>, one WebSocket per accepted connection."""
    outcomes: list[PortForwardOutcome] = []
    framing = Framing(port, base64_frames="base64" in protocol)

    async def handle(local: LocalConnection) -> None:
        try:
            ws_cm = await core.connect_get_namespaced_pod_portforward(
                pod,
                namespace,
                ports=str(port),
                _preload_content=False,
                _headers={"sec-websocket-protocol": protocol},
            )
            async with ws_cm as ws:
                outcomes.append(await relay_portforward(ws, local, framing))
        except aiohttp.WSServerHandshakeError as exc:
            outcomes.append(PortForwardOutcome(error=f"upgrade refused: HTTP {exc.status}"))

    async with anyio.create_task_group() as group:
        local_port = await group.start(serve_local, handle)
        yield local_port, outcomes
        group.cancel_scope.cancel()


# =============================================================================================
# Client-side exec framing (for the tests; the engine's pod source reads frames the same way)
# =============================================================================================


@dataclass
class ExecOutcome:
    stdout: bytes = b""
    stderr: bytes = b""
    status: dict[str, Any] | None = None  # the channel-3 Status object
    frames: list[tuple[int, int]] = field(default_factory=list)  # (channel, payload length)
    close_code: int | None = None

    @property
    def exit_code(self) -> int | None:
        if self.status is None:
            return None
        return WsApiClient.parse_error_data(json.dumps(self.status))


async def exec_session(
    ws: ClientWebSocketResponse,
    stdin_chunks: Iterable[bytes] = (),
    *,
    close_stdin: bool = False,
    base64_frames: bool = False,
) -> ExecOutcome:
    """Send stdin (then, on v5, the close-stdin signal [255, 0]) and read every frame."""
    for chunk in stdin_chunks:
        if base64_frames:
            await ws.send_str("0" + base64.b64encode(chunk).decode())
        else:
            await ws.send_bytes(b"\x00" + chunk)
    if close_stdin:
        await ws.send_bytes(bytes((255, 0)))
    return await read_exec_frames(ws)


@contextlib.asynccontextmanager
async def exec_ws(
    ws_api: WsApiClient,
    pod: str,
    command: list[str],
    container: str | None = None,
    *,
    stdin: bool = False,
    stdout: bool = True,
    stderr: bool = True,
    protocol: str | None = None,
) -> AsyncIterator[ClientWebSocketResponse]:
    """An exec WebSocket in namespace default, opened as kubernetes-asyncio opens it
    (_preload_content=False keeps the status channel; `protocol` replaces its v4 subprotocol)."""
    options: dict[str, Any] = {"container": container} if container else {}
    if protocol is not None:
        options["_headers"] = {"sec-websocket-protocol": protocol}
    manager = await ws_core(ws_api).connect_get_namespaced_pod_exec(
        pod,
        "default",
        command=command,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        tty=False,
        _preload_content=False,
        **options,
    )
    async with manager as ws:
        yield ws


async def read_exec_frames(ws: ClientWebSocketResponse) -> ExecOutcome:
    out = ExecOutcome()
    async for msg in ws:
        if msg.type is WSMsgType.BINARY:
            frame: bytes = msg.data
        elif msg.type is WSMsgType.TEXT:
            frame = bytes((ord(msg.data[0]) - ord("0"),)) + base64.b64decode(msg.data[1:])
        else:
            break
        channel, payload = frame[0], frame[1:]
        out.frames.append((channel, len(payload)))
        if channel == 1:
            out.stdout += payload
        elif channel == 2:
            out.stderr += payload
        elif channel == 3:
            out.status = json.loads(payload)
    out.close_code = ws.close_code
    return out


# =============================================================================================
# Helpers
# =============================================================================================


def ws_core(ws_api: WsApiClient) -> Any:
    """CoreV1Api on the WebSocket client, typed Any on purpose: kubernetes-asyncio's shipped
    stubs say connect_* return ``Awaitable[str]`` (true only with _preload_content=True; with
    False they return aiohttp's ws_connect context manager), type ``command: str`` and
    ``ports: int``, and omit ``_headers``, which the implementation accepts."""
    return client.CoreV1Api(ws_api)


async def load(kubeconfig: Path, context: str = "minikube") -> Configuration:
    """A fresh Configuration (not the process-wide default) from the kubeconfig."""
    cfg = Configuration()
    await config.load_kube_config(
        config_file=str(kubeconfig), context=context, client_configuration=cfg
    )
    return cfg


async def http_get(host: str, port: int, path: str) -> tuple[int, bytes]:
    """A minimal HTTP/1.1 GET with Connection: close, read to EOF."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    return status, body


def expected_bytes(size: int) -> bytes:
    pattern = b"0123456789abcdef" * 4096
    return (pattern * (size // len(pattern) + 1))[:size]


def status_of(exc: ApiException) -> dict[str, Any]:
    assert exc.body is not None
    body: dict[str, Any] = json.loads(exc.body)
    return body


@pytest.fixture
def story(kube_store: kl.Store, http_backend: HttpBackend) -> dict[str, object]:
    """health-predict-api-service: 3 nodes, 10 ready + 2 not-ready pods; every pod's port 8000
    is the loopback HTTP backend for port-forward."""
    runtime = kl.PodRuntime(forward_ports={8000: http_backend.port})
    return populate_service(kube_store, nodes=3, ready=10, not_ready=2, runtime=runtime)


# =============================================================================================
# REST
# =============================================================================================


async def test_a_service_reads_as_a_typed_object_with_clusterip_and_nodeport(
    kubeconfig: Path, story: dict[str, object]
) -> None:
    cfg = await load(kubeconfig)
    async with ApiClient(cfg) as api:
        svc = await client.CoreV1Api(api).read_namespaced_service(
            "health-predict-api-service", "default"
        )
    assert isinstance(svc, client.V1Service)
    assert svc.kind == "Service"
    assert svc.spec.type == "NodePort"
    assert svc.spec.cluster_ip.startswith("10.96.")
    assert svc.spec.selector == {"app": "health-predict-api-service"}
    (port,) = svc.spec.ports
    assert (port.name, port.port, port.target_port, port.node_port, port.protocol) == (
        "http",
        80,
        8000,
        30080,
        "TCP",
    )


async def test_lists_have_the_real_shape(
    kube_apiserver: kl.ApiServer, story: dict[str, object]
) -> None:
    headers = {"Authorization": "Bearer kubelab-token"}
    async with aiohttp.ClientSession() as session:
        url = kube_apiserver.url + "/api/v1/namespaces/default/services"
        async with session.get(url, headers=headers) as resp:
            listing = await resp.json()
        async with session.get(url + "/health-predict-api-service", headers=headers) as resp:
            one = await resp.json()
    assert listing["kind"] == "ServiceList"
    assert listing["apiVersion"] == "v1"
    assert int(listing["metadata"]["resourceVersion"]) > 0
    assert "kind" not in listing["items"][0]
    assert "apiVersion" not in listing["items"][0]
    assert (one["kind"], one["apiVersion"]) == ("Service", "v1")
    assert one["metadata"]["uid"]


async def test_nodes_carry_addresses_and_ready_condition(
    kubeconfig: Path, story: dict[str, object], kube_store: kl.Store
) -> None:
    kube_store.put(kl.node("worker-down", "192.168.49.9", ready=False))
    cfg = await load(kubeconfig)
    async with ApiClient(cfg) as api:
        nodes = await client.CoreV1Api(api).list_node()
    assert isinstance(nodes, client.V1NodeList)
    by_name = {n.metadata.name: n for n in nodes.items}
    assert set(by_name) == {"minikube", "minikube-m02", "minikube-m03", "worker-down"}
    addresses = {(a.type, a.address) for a in by_name["minikube"].status.addresses}
    assert {("InternalIP", "192.168.49.2"), ("ExternalIP", "203.0.113.10")} <= addresses
    ready = {
        name: next(c.status for c in n.status.conditions if c.type == "Ready")
        for name, n in by_name.items()
    }
    assert ready["minikube"] == "True"
    assert ready["worker-down"] == "False"


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=api", {"api-0", "api-1", "api-canary"}),
        ("app==api,track!=canary", {"api-0", "api-1"}),
        ("app in (api, worker),track notin (canary)", {"api-0", "api-1", "worker-0"}),
        ("track", {"api-canary"}),
        ("app,!track", {"api-0", "api-1", "worker-0"}),
    ],
)
async def test_pods_filter_by_label_selector(
    kubeconfig: Path, kube_store: kl.Store, selector: str, expected: set[str]
) -> None:
    kube_store.put(kl.pod("api-0", labels={"app": "api"}))
    kube_store.put(kl.pod("api-1", labels={"app": "api"}))
    kube_store.put(kl.pod("api-canary", labels={"app": "api", "track": "canary"}))
    kube_store.put(kl.pod("worker-0", labels={"app": "worker"}))
    cfg = await load(kubeconfig)
    async with ApiClient(cfg) as api:
        pods = await client.CoreV1Api(api).list_namespaced_pod("default", label_selector=selector)
    assert isinstance(pods, client.V1PodList)
    assert {p.metadata.name for p in pods.items} == expected


async def test_pods_filter_by_phase_and_read_by_name(
    kubeconfig: Path, kube_store: kl.Store
) -> None:
    kube_store.put(kl.pod("running", labels={"app": "a"}))
    kube_store.put(kl.pod("pending", labels={"app": "a"}, phase="Pending"))
    kube_store.put(kl.pod("elsewhere", "other", labels={"app": "a"}))
    cfg = await load(kubeconfig)
    async with ApiClient(cfg) as api:
        core = client.CoreV1Api(api)
        running = await core.list_namespaced_pod(
            "default", label_selector="app=a", field_selector="status.phase=Running"
        )
        one = await core.read_namespaced_pod("running", "default")
        everywhere = await core.list_pod_for_all_namespaces(label_selector="app=a")
    assert [p.metadata.name for p in running.items] == ["running"]
    assert one.status.pod_ip == "10.244.0.10"
    assert one.spec.containers[0].name == "main"
    assert {p.metadata.namespace for p in everywhere.items} == {"default", "other"}


async def test_endpointslices_and_endpoints_separate_ready_from_not_ready(
    kubeconfig: Path, story: dict[str, object]
) -> None:
    cfg = await load(kubeconfig)
    async with ApiClient(cfg) as api:
        slices = await client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(
            "default", label_selector="kubernetes.io/service-name=health-predict-api-service"
        )
        eps = await client.CoreV1Api(api).read_namespaced_endpoints(
            "health-predict-api-service", "default"
        )
    assert isinstance(slices, client.V1EndpointSliceList)
    (es,) = slices.items
    assert es.address_type == "IPv4"
    ready = [e.addresses[0] for e in es.endpoints if e.conditions.ready]
    not_ready = [e.addresses[0] for e in es.endpoints if not e.conditions.ready]
    assert (len(ready), len(not_ready)) == (10, 2)
    assert [(p.name, p.port, p.protocol) for p in es.ports] == [("http", 8000, "TCP")]
    assert es.endpoints[0].target_ref.kind == "Pod"
    (subset,) = eps.subsets
    assert len(subset.addresses) == 10
    assert len(subset.not_ready_addresses) == 2
    assert subset.ports[0].port == 8000


async def test_named_target_port_resolves_through_container_ports(kube_store: kl.Store) -> None:
    populate_service(kube_store, "named", target_port="http", ready=2)
    (es,) = kube_store.list(
        "EndpointSlice", "default", label_selector="kubernetes.io/service-name=named"
    )
    assert es["ports"] == [{"name": "http", "port": 8000, "protocol": "TCP"}]


async def test_network_policies_come_back_typed(kubeconfig: Path, story: dict[str, object]) -> None:
    cfg = await load(kubeconfig)
    async with ApiClient(cfg) as api:
        policies = await client.NetworkingV1Api(api).list_namespaced_network_policy("default")
    (np,) = policies.items
    assert isinstance(np, client.V1NetworkPolicy)
    assert np.spec.pod_selector.match_labels == {"app": "health-predict-api-service"}
    assert np.spec.policy_types == ["Ingress"]
    assert np.spec.ingress[0].ports[0].port == 8000
    assert np.spec.ingress[0]._from[0].pod_selector.match_labels == {"app": "airflow-worker"}


async def test_unknown_service_is_404_notfound(kubeconfig: Path) -> None:
    cfg = await load(kubeconfig)
    async with ApiClient(cfg) as api:
        with pytest.raises(ApiException) as info:
            await client.CoreV1Api(api).read_namespaced_service("nope", "default")
    assert info.value.status == 404
    body = status_of(info.value)
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "NotFound", 404)
    assert body["message"] == 'services "nope" not found'


@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_missing_or_wrong_token_is_401(
    kube_apiserver: kl.ApiServer, tmp_path: Path, token: str | None
) -> None:
    kc = kube_apiserver.write_kubeconfig(tmp_path / "kc", token=token)
    cfg = await load(kc)
    async with ApiClient(cfg) as api:
        with pytest.raises(ApiException) as info:
            await client.CoreV1Api(api).list_node()
    assert info.value.status == 401
    assert status_of(info.value)["reason"] == "Unauthorized"


async def test_bad_label_selector_is_400(kubeconfig: Path) -> None:
    cfg = await load(kubeconfig)
    async with ApiClient(cfg) as api:
        with pytest.raises(ApiException) as info:
            await client.CoreV1Api(api).list_namespaced_pod("default", label_selector="a=(b")
    assert info.value.status == 400
    assert status_of(info.value)["reason"] == "BadRequest"


@pytest.mark.parametrize(("code", "reason"), [(403, "Forbidden"), (500, "InternalError")])
async def test_injected_status_faults(
    kube_apiserver: kl.ApiServer, kubeconfig: Path, code: int, reason: str
) -> None:
    fault = kube_apiserver.inject("/api/v1/nodes", status=code, times=1)
    cfg = await load(kubeconfig)
    async with ApiClient(cfg) as api:
        core = client.CoreV1Api(api)
        with pytest.raises(ApiException) as info:
            await core.list_node()
        await core.list_node()  # times=1: the next call succeeds
    assert info.value.status == code
    assert status_of(info.value)["reason"] == reason
    assert fault.hits == 1


async def test_delay_and_cut_connection_faults_surface_as_aiohttp_errors(
    kube_apiserver: kl.ApiServer, kubeconfig: Path
) -> None:
    kube_apiserver.inject("/api/v1/namespaces/*/services/slow", delay=2.0)
    kube_apiserver.inject("/api/v1/namespaces/*/services/cut", abort=True)
    cfg = await load(kubeconfig)
    async with ApiClient(cfg) as api:
        core = client.CoreV1Api(api)
        # Raised at all: the server would have answered after its 2 s delay.
        with pytest.raises(asyncio.TimeoutError):
            await core.read_namespaced_service("slow", "default", _request_timeout=0.3)
        # A dropped API connection is not an ApiException: aiohttp's own error comes through.
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await core.read_namespaced_service("cut", "default")


async def test_tls_with_ca_from_kubeconfig(
    kube_tls_apiserver: kl.ApiServer, tmp_path: Path
) -> None:
    kube_tls_apiserver.store.put(kl.node("minikube", "192.168.49.2"))
    kc = kube_tls_apiserver.write_kubeconfig(tmp_path / "kc")
    assert kube_tls_apiserver.url.startswith("https://127.0.0.1:")
    cfg = await load(kc)
    async with ApiClient(cfg) as api:
        nodes = await client.CoreV1Api(api).list_node()
    assert [n.metadata.name for n in nodes.items] == ["minikube"]


async def test_kubernetes_asyncio_honours_proxy_environment(
    kubeconfig: Path, story: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its aiohttp session has trust_env=True: HTTP(S)_PROXY apply to the API server too."""
    dead = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    dead_port = dead.sockets[0].getsockname()[1]
    dead.close()
    await dead.wait_closed()
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{dead_port}")
    cfg = await load(kubeconfig)
    async with ApiClient(cfg) as api:
        with pytest.raises(aiohttp.ClientProxyConnectionError):
            await client.CoreV1Api(api).list_node()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with ApiClient(cfg) as api:
        assert len((await client.CoreV1Api(api).list_node()).items) == 3


# =============================================================================================
# Exec
# =============================================================================================


@pytest.fixture
def exec_pod(kube_store: kl.Store) -> str:
    kube_store.put(
        kl.pod(
            "airflow-worker-0",
            labels={"app": "airflow-worker"},
            containers=["worker", "sidecar"],
            env={"HTTP_PROXY": "http://proxy:3128"},
        )
    )
    return "airflow-worker-0"


async def test_exec_streams_stdin_and_output_both_ways(kubeconfig: Path, exec_pod: str) -> None:
    script = (
        "import sys\n"
        "print('ready', flush=True)\n"
        "data = sys.stdin.buffer.read(int(sys.stdin.buffer.readline()))\n"
        "sys.stderr.write('got %d\\n' % len(data)); sys.stderr.flush()\n"
        "sys.stdout.buffer.write(data[::-1])\n"
    )
    cfg = await load(kubeconfig)
    async with (
        WsApiClient(cfg) as ws_api,
        exec_ws(ws_api, exec_pod, ["python3", "-c", script], "worker", stdin=True) as ws,
    ):
        first = await ws.receive()
        assert first.data == b"\x01"  # the kubelet's empty opening frame on stdout
        ready = await ws.receive()
        assert ready.data == b"\x01ready\n"  # streamed before any stdin was sent
        payload = os.urandom(300_000)
        chunks = [str(len(payload)).encode() + b"\n"] + [
            payload[i : i + 65536] for i in range(0, len(payload), 65536)
        ]
        out = await exec_session(ws, chunks)
    assert out.stdout == payload[::-1]
    assert out.stderr == b"got 300000\n"
    assert out.status == {"metadata": {}, "status": "Success"}
    assert out.exit_code == 0
    assert out.frames[-1][0] == 3
    assert out.close_code == 1000


async def test_non_zero_exit_comes_through_the_status_channel(
    kube_apiserver: kl.ApiServer, kubeconfig: Path, exec_pod: str
) -> None:
    cfg = await load(kubeconfig)
    async with (
        WsApiClient(cfg) as ws_api,
        exec_ws(ws_api, exec_pod, ["sh", "-c", "echo out; echo err >&2; exit 3"], "worker") as ws,
    ):
        out = await read_exec_frames(ws)
    assert (out.stdout, out.stderr) == (b"out\n", b"err\n")
    assert out.status is not None
    assert out.status["status"] == "Failure"
    assert out.status["reason"] == "NonZeroExitCode"
    assert out.status["details"] == {"causes": [{"reason": "ExitCode", "message": "3"}]}
    assert out.exit_code == 3
    assert kube_apiserver.execs[-1].exit_code == 3


async def test_preload_content_returns_output_but_drops_the_status(
    kubeconfig: Path, exec_pod: str
) -> None:
    cfg = await load(kubeconfig)
    async with WsApiClient(cfg) as ws_api:
        text = await ws_core(ws_api).connect_get_namespaced_pod_exec(
            exec_pod,
            "default",
            container="worker",
            command=["sh", "-c", "echo out; echo err >&2; exit 3"],
            stdin=False,
            stdout=True,
            stderr=True,
            tty=False,
        )
    # stdout and stderr merged, the exit code lost
    assert sorted(text.splitlines()) == ["err", "out"]


async def test_v5_client_closes_stdin(kubeconfig: Path, exec_pod: str) -> None:
    cfg = await load(kubeconfig)
    async with (
        WsApiClient(cfg) as ws_api,
        exec_ws(ws_api, exec_pod, ["cat"], "worker", stdin=True, protocol=V5) as ws,
    ):
        out = await exec_session(ws, [b"hello ", b"world"], close_stdin=True)
    assert out.stdout == b"hello world"
    assert out.exit_code == 0


async def test_base64_variant_and_pod_env(kubeconfig: Path, exec_pod: str) -> None:
    cfg = await load(kubeconfig)
    async with (
        WsApiClient(cfg) as ws_api,
        exec_ws(
            ws_api,
            exec_pod,
            ["sh", "-c", 'read line; echo "$line $HTTP_PROXY $HOSTNAME"'],
            "worker",
            stdin=True,
            protocol=V4_BASE64,
        ) as ws,
    ):
        out = await exec_session(ws, [b"hi\n"], base64_frames=True)
    assert out.stdout == b"hi http://proxy:3128 airflow-worker-0\n"
    assert out.exit_code == 0


async def test_first_frame_goes_to_the_lowest_writable_channel(
    kubeconfig: Path, exec_pod: str
) -> None:
    cfg = await load(kubeconfig)
    async with (
        WsApiClient(cfg) as ws_api,
        exec_ws(ws_api, exec_pod, ["sh", "-c", "echo x >&2"], "worker", stdout=False) as ws,
    ):
        out = await read_exec_frames(ws)
    assert out.frames[0] == (2, 0)
    assert out.stderr == b"x\n"


async def test_exec_errors(kube_apiserver: kl.ApiServer, kubeconfig: Path, exec_pod: str) -> None:
    cfg = await load(kubeconfig)
    async with WsApiClient(cfg) as ws_api:

        async def attempt(pod: str, container: str | None, command: list[str]) -> ExecOutcome:
            async with exec_ws(ws_api, pod, command, container) as ws:
                return await read_exec_frames(ws)

        # Refused upgrades are aiohttp errors, not ApiException; the Status body is not read.
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await attempt("no-such-pod", "worker", ["true"])
        assert info.value.status == 404
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await attempt(exec_pod, "no-such-container", ["true"])
        assert info.value.status == 400
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await attempt(exec_pod, None, ["true"])  # two containers: must name one
        assert info.value.status == 400
        # A missing executable is an InternalError Status on channel 3, without an exit code.
        out = await attempt(exec_pod, "worker", ["no-such-binary"])
    assert out.status is not None
    assert (out.status["reason"], out.status["code"]) == ("InternalError", 500)
    assert "executable file not found in $PATH" in out.status["message"]
    with pytest.raises(ValueError, match="invalid literal for int"):
        _ = out.exit_code  # parse_error_data expects causes[0].message to be a number
    statuses = [r.status for r in kube_apiserver.requests_to("*/exec")]
    assert statuses == [404, 400, 400, 101]


async def test_dropped_exec_websocket_has_no_status_frame(
    kube_apiserver: kl.ApiServer, kubeconfig: Path, exec_pod: str
) -> None:
    kube_apiserver.inject("*/pods/*/exec", drop_after_bytes=100_000)
    cfg = await load(kubeconfig)
    async with (
        WsApiClient(cfg) as ws_api,
        exec_ws(
            ws_api,
            exec_pod,
            ["python3", "-c", "import sys; sys.stdout.write('x' * 1_000_000)"],
            "worker",
        ) as ws,
    ):
        out = await read_exec_frames(ws)
    assert 100_000 <= len(out.stdout) < 1_000_000
    assert out.status is None
    assert out.close_code == 1006  # ABNORMAL_CLOSURE: no close frame
    assert kube_apiserver.execs[-1].dropped


async def test_client_going_away_kills_the_exec_process(
    kube_apiserver: kl.ApiServer, kubeconfig: Path, exec_pod: str
) -> None:
    cfg = await load(kubeconfig)
    async with (
        WsApiClient(cfg) as ws_api,
        exec_ws(
            ws_api, exec_pod, ["sh", "-c", "echo $$; exec sleep 30"], "worker", stdin=True
        ) as ws,
    ):
        assert (await ws.receive()).data == b"\x01"
        pid = int((await ws.receive()).data[1:])
    for _ in range(100):
        if kube_apiserver.execs[-1].client_closed and not Path(f"/proc/{pid}").exists():
            break
        await asyncio.sleep(0.02)
    assert kube_apiserver.execs[-1].client_closed
    assert not Path(f"/proc/{pid}").exists()


async def test_exec_fan_out_over_20_pods(kube_apiserver: kl.ApiServer, kubeconfig: Path) -> None:
    for i in range(20):
        kube_apiserver.store.put(kl.pod(f"w-{i}", labels={"app": "w"}))
    cfg = await load(kubeconfig)
    async with ApiClient(cfg) as api, WsApiClient(cfg) as ws_api:
        pods = await client.CoreV1Api(api).list_namespaced_pod("default", label_selector="app=w")

        async def one(name: str) -> ExecOutcome:
            async with exec_ws(
                ws_api, name, ["python3", "-c", "import socket; print(socket.gethostname())"]
            ) as ws:
                return await read_exec_frames(ws)

        started = time.perf_counter()
        results = await asyncio.gather(*(one(p.metadata.name) for p in pods.items))
        elapsed = time.perf_counter() - started
    assert all(r.exit_code == 0 for r in results)
    assert len(kube_apiserver.execs) == 20
    print(f"\nexec fan-out: 20 pods, one python3 exec each: {elapsed * 1000:.0f} ms")


# =============================================================================================
# Port-forward
# =============================================================================================


async def test_port_forward_relays_http_to_a_real_server(
    kube_apiserver: kl.ApiServer, kubeconfig: Path, story: dict[str, object]
) -> None:
    cfg = await load(kubeconfig)
    async with WsApiClient(cfg) as ws_api:
        core = ws_core(ws_api)
        async with local_port_forward(core, "health-predict-api-service-0", "default", 8000) as (
            port,
            outcomes,
        ):
            status, body = await http_get("127.0.0.1", port, "/health")
            for _ in range(50):
                if outcomes:
                    break
                await asyncio.sleep(0.02)
    assert (status, body) == (200, b"ok\n")
    (outcome,) = outcomes
    assert outcome.started
    assert outcome.error is None
    assert outcome.close_code == 1000
    (req,) = kube_apiserver.requests_to("*/portforward")
    assert req.param("ports") == ["8000"]
    assert req.status == 101


@pytest.mark.parametrize("protocol", [V4, V4_BASE64])
async def test_port_forward_10mb_body_and_throughput(
    kubeconfig: Path, story: dict[str, object], http_backend: HttpBackend, protocol: str
) -> None:
    size = 10 * 1024 * 1024
    started = time.perf_counter()
    status, direct = await http_get(http_backend.host, http_backend.port, f"/bytes/{size}")
    direct_s = time.perf_counter() - started
    assert (status, len(direct)) == (200, size)
    cfg = await load(kubeconfig)
    async with WsApiClient(cfg) as ws_api:
        core = ws_core(ws_api)
        async with local_port_forward(
            core, "health-predict-api-service-3", "default", 8000, protocol=protocol
        ) as (port, _):
            started = time.perf_counter()
            status, body = await http_get("127.0.0.1", port, f"/bytes/{size}")
            forwarded_s = time.perf_counter() - started
    assert status == 200
    assert len(body) == size
    assert hashlib.sha256(body).digest() == hashlib.sha256(expected_bytes(size)).digest()
    mib = size / 1024 / 1024
    print(
        f"\n10 MiB over {protocol}: port-forward {forwarded_s * 1000:.0f} ms "
        f"({mib / forwarded_s:.0f} MiB/s), direct {direct_s * 1000:.0f} ms "
        f"({mib / direct_s:.0f} MiB/s), ratio {forwarded_s / direct_s:.1f}x"
    )


async def test_port_forward_refused_port_reports_on_the_error_channel(
    kube_store: kl.Store, kubeconfig: Path
) -> None:
    closed = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    closed_port = closed.sockets[0].getsockname()[1]
    closed.close()
    await closed.wait_closed()
    kube_store.put(kl.pod("api-0"), runtime=kl.PodRuntime(forward_ports={8000: closed_port}))
    cfg = await load(kubeconfig)
    async with WsApiClient(cfg) as ws_api:
        ws_cm = await ws_core(ws_api).connect_get_namespaced_pod_portforward(
            "api-0", "default", ports="8000", _preload_content=False
        )
        async with ws_cm as ws:
            frames = [bytes(m.data) async for m in ws]
    # both port prefixes, then the error text on channel 1, then the server closes
    assert frames[:2] == [b"\x00\x40\x1f", b"\x01\x40\x1f"]
    assert frames[2][0] == 1
    message = frames[2][1:].decode()
    assert message.startswith("error forwarding port 8000 to pod ")
    assert "connect: connection refused" in message
    assert len(frames) == 3


async def test_port_forward_two_ports_on_one_websocket(
    kube_store: kl.Store, kubeconfig: Path, http_backend: HttpBackend
) -> None:
    kube_store.put(
        kl.pod("api-0"),
        runtime=kl.PodRuntime(forward_ports={8000: http_backend.port, 9000: http_backend.port}),
    )
    request = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    cfg = await load(kubeconfig)
    async with WsApiClient(cfg) as ws_api:
        ws_cm = await ws_core(ws_api).connect_get_namespaced_pod_portforward(
            "api-0", "default", ports="8000,9000", _preload_content=False
        )
        async with ws_cm as ws:
            await ws.send_bytes(b"\x02" + request)  # port index 1: data channel 2
            seen: dict[int, bytes] = {}
            async for msg in ws:
                seen[msg.data[0]] = seen.get(msg.data[0], b"") + msg.data[1:]
                if b"ok\n" in seen.get(2, b""):
                    await ws.send_bytes(b"\x00" + request)
                if b"ok\n" in seen.get(0, b"") and b"ok\n" in seen.get(2, b""):
                    break
    assert seen[1] == (8000).to_bytes(2, "little")
    assert seen[3] == (9000).to_bytes(2, "little")
    assert seen[0].startswith((8000).to_bytes(2, "little") + b"HTTP/1.1 200")
    assert seen[2].startswith((9000).to_bytes(2, "little") + b"HTTP/1.1 200")


async def test_port_forward_refuses_the_spdy_protocol_name(
    kubeconfig: Path, story: dict[str, object]
) -> None:
    cfg = await load(kubeconfig)
    async with WsApiClient(cfg) as ws_api:
        ws_cm = await ws_core(ws_api).connect_get_namespaced_pod_portforward(
            "health-predict-api-service-0",
            "default",
            ports="8000",
            _preload_content=False,
            _headers={"sec-websocket-protocol": "portforward.k8s.io"},
        )
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            async with ws_cm:
                pass
    assert info.value.status == 403


async def test_port_forward_to_unknown_pod_is_404(kubeconfig: Path) -> None:
    cfg = await load(kubeconfig)
    async with WsApiClient(cfg) as ws_api:
        ws_cm = await ws_core(ws_api).connect_get_namespaced_pod_portforward(
            "ghost", "default", ports="8000", _preload_content=False
        )
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            async with ws_cm:
                pass
    assert info.value.status == 404


async def test_dropped_port_forward_truncates_the_body(
    kube_apiserver: kl.ApiServer, kubeconfig: Path, story: dict[str, object]
) -> None:
    kube_apiserver.inject("*/portforward", drop_after_bytes=1_000_000)
    cfg = await load(kubeconfig)
    async with WsApiClient(cfg) as ws_api:
        core = ws_core(ws_api)
        async with local_port_forward(core, "health-predict-api-service-0", "default", 8000) as (
            port,
            outcomes,
        ):
            # The engine's relay resets the local connection when the tunnel drops, so a
            # client sees an error rather than a body that merely ends early.
            with pytest.raises(ConnectionResetError):
                await http_get("127.0.0.1", port, f"/bytes/{10 * 1024 * 1024}")
            for _ in range(50):
                if outcomes:
                    break
                await asyncio.sleep(0.02)
    (outcome,) = outcomes
    assert 0 < outcome.bytes_from_pod < 10 * 1024 * 1024
    assert outcome.close_code == 1006
    assert outcome.error == "the WebSocket through the API server dropped (no close frame)"


# =============================================================================================
# A pod that is a real network namespace (root)
# =============================================================================================


@pytest.fixture
def netns_http(lab_netns: str) -> Iterator[str]:
    """An HTTP server on 127.0.0.1:8000 inside the namespace, answering ``netns-ok``."""
    script = (
        "import http.server, sys\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200); self.send_header('Content-Length', '9')\n"
        "        self.send_header('Connection', 'close'); self.end_headers()\n"
        "        self.wfile.write(b'netns-ok\\n')\n"
        "    def log_message(self, *a): pass\n"
        "s = http.server.HTTPServer(('127.0.0.1', 8000), H)\n"
        "print('ready', flush=True)\n"
        "s.serve_forever()\n"
    )
    proc = subprocess.Popen(
        ["ip", "netns", "exec", lab_netns, sys.executable, "-c", script],
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        yield lab_netns
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.root
async def test_exec_runs_inside_the_pods_network_namespace(
    kube_store: kl.Store, kubeconfig: Path, lab_netns: str
) -> None:
    kube_store.put(kl.pod("netpod"), runtime=kl.PodRuntime(netns=lab_netns))
    cfg = await load(kubeconfig)
    async with (
        WsApiClient(cfg) as ws_api,
        exec_ws(
            ws_api,
            "netpod",
            ["python3", "-c", "import os; print(os.stat('/proc/self/ns/net').st_ino)"],
        ) as ws,
    ):
        out = await read_exec_frames(ws)
    assert out.exit_code == 0
    assert int(out.stdout) == os.stat(f"/var/run/netns/{lab_netns}").st_ino
    assert int(out.stdout) != os.stat("/proc/self/ns/net").st_ino


@pytest.mark.root
async def test_port_forward_connects_to_localhost_inside_the_pods_namespace(
    kube_store: kl.Store, kubeconfig: Path, netns_http: str
) -> None:
    kube_store.put(kl.pod("netpod"), runtime=kl.PodRuntime(netns=netns_http))
    cfg = await load(kubeconfig)
    async with WsApiClient(cfg) as ws_api:
        core = ws_core(ws_api)
        async with local_port_forward(core, "netpod", "default", 8000) as (port, _):
            status, body = await http_get("127.0.0.1", port, "/")
        async with local_port_forward(core, "netpod", "default", 8001) as (port, outcomes):
            with pytest.raises(ConnectionResetError):  # the kubelet's error: a reset here
                await http_get("127.0.0.1", port, "/")
            for _ in range(50):
                if outcomes:
                    break
                await asyncio.sleep(0.02)
    assert (status, body) == (200, b"netns-ok\n")
    (outcome,) = outcomes
    assert outcome.error is not None
    assert f'network namespace "/var/run/netns/{netns_http}"' in outcome.error
    assert outcome.error.endswith(
        "connect: connection refused IPv6 dial tcp6: address localhost: no suitable address"  # stripped
    )
