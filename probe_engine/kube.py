"""The Kubernetes API for targets and sources: which cluster, one client per run, failures in words.

kubernetes-asyncio is imported only when a matrix uses Kubernetes (it costs ~0.4 s). Objects
are read as plain JSON in their real shapes (camelCase), not as generated model classes:
cheaper, and the field names are the ones `kubectl get -o json` shows. Three traps of the
library, handled here: `load_kube_config` without `client_configuration` replaces the
process-wide default (we always pass our own); its aiohttp session has trust_env=True, so
HTTP(S)_PROXY apply to the API server (said so when a proxy fails); and the shipped stubs are
wrong for WebSocket calls (`connect_*` with `_preload_content=False` returns aiohttp's
ws_connect context manager), so API objects are typed Any.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import re
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from .agent.proxy import redact
from .spec.matrix import KubernetesSettings

__all__ = [
    "CHANNEL_PROTOCOL",
    "KubeApiError",
    "KubeClient",
    "KubeError",
    "KubeHandle",
    "KubeOverrides",
    "KubeSettings",
    "explain",
    "forbidden",
    "kube_settings",
    "needs",
    "open_client",
]

CHANNEL_PROTOCOL = "v4.channel.k8s.io"  # the kubelet's WebSocket framing (exec, port-forward)
DEFAULT_KUBECONFIG = "~/.kube/config"
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeError(Exception):
    """The Kubernetes API cannot be used (configuration, credentials, reachability): the
    message says why, for a column's or a row's error."""


class KubeApiError(Exception):
    """The API server answered with an error Status."""

    def __init__(self, status: int, body: Mapping[str, Any] | None, text: str = "") -> None:
        self.status = status
        self.body = dict(body or {})
        self.reason = str(self.body.get("reason") or "")
        self.message = str(self.body.get("message") or text.strip()[:300] or "")
        super().__init__(f"{status} {self.reason}: {self.message}")


@dataclass(frozen=True)
class KubeSettings:
    """Which cluster: from the matrix's `kubernetes:` section and --kubeconfig / --context."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None
    cluster_domain: str = "cluster.local"
    timeout: float = 10.0
    in_cluster: bool = False
    verify_ssl: bool = True


@dataclass(frozen=True)
class KubeOverrides:
    """The command line's say on which cluster (--kubeconfig, --context), or an Airflow
    connection's: `in_cluster` takes the pod's service account whatever kubeconfig exists,
    `namespace` is a default for a matrix that names none, `verify_ssl=False` skips the check
    of the API server's certificate."""

    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    namespace: str | None = None
    verify_ssl: bool = True


def kube_settings(
    section: KubernetesSettings | None, overrides: KubeOverrides | None = None
) -> KubeSettings:
    """The command line wins over the matrix file."""
    overrides = overrides or KubeOverrides()
    base = section or KubernetesSettings()
    return KubeSettings(
        kubeconfig=overrides.kubeconfig or base.kubeconfig,
        context=overrides.context or base.context,
        namespace=base.namespace or overrides.namespace,
        cluster_domain=base.cluster_domain,
        timeout=base.timeout,
        in_cluster=overrides.in_cluster,
        verify_ssl=overrides.verify_ssl,
    )


class KubeClient:
    """One cluster's REST and WebSocket clients, shared by every target and source of a run."""

    def __init__(
        self,
        configuration: Any,
        settings: KubeSettings,
        origin: str,
        context_name: str | None,
        context_namespace: str | None,
    ) -> None:
        from kubernetes_asyncio import client

        self.settings = settings
        self.configuration = configuration
        self.origin = origin  # "kubeconfig PATH" or "in-cluster service account"
        self.context_name = context_name
        self.server = str(configuration.host)
        self.namespace = settings.namespace or context_namespace or "default"
        self.timeout = settings.timeout
        self.api = client.ApiClient(configuration)
        self.core: Any = client.CoreV1Api(self.api)
        self.discovery: Any = client.DiscoveryV1Api(self.api)
        self.networking: Any = client.NetworkingV1Api(self.api)
        # Made on first use (exec, port-forward): each client builds its own SSL context,
        # tens of milliseconds that a run reading Services only should not pay.
        self._ws: Any = None
        self._ws_core: Any = None

    @property
    def ws_core(self) -> Any:
        """CoreV1Api over the WebSocket client: its connect_* return ws_connect managers."""
        if self._ws_core is None:
            from kubernetes_asyncio import client
            from kubernetes_asyncio.stream import WsApiClient

            self._ws = WsApiClient(self.configuration)
            self._ws_core = client.CoreV1Api(self._ws)
        return self._ws_core

    def describe(self) -> dict[str, Any]:
        return {"api_server": self.server, "context": self.context_name, "config": self.origin}

    async def get(self, call: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """One GET through a generated API method, as plain JSON; KubeApiError for an error
        Status. Network failures come through as aiohttp's (or asyncio's timeout) exceptions."""
        response = await call(
            *args, _preload_content=False, _request_timeout=self.timeout, **kwargs
        )
        try:
            raw = await response.read()
        finally:
            response.release()
        text = raw.decode("utf-8", errors="replace")
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            data = None
        if not 200 <= response.status < 300:
            raise KubeApiError(response.status, data if isinstance(data, dict) else None, text)
        if not isinstance(data, dict):
            raise KubeApiError(response.status, None, f"not a JSON object: {text[:200]}")
        return data

    async def stream(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        """A response to read as it comes (a watch, a log with follow): aiohttp's response,
        its connection bounded in time but not its reading; KubeApiError for an error Status.
        The caller releases it."""
        import aiohttp

        timeout = aiohttp.ClientTimeout(connect=self.timeout, sock_connect=self.timeout)
        response = await call(*args, _preload_content=False, _request_timeout=timeout, **kwargs)
        if not 200 <= response.status < 300:
            try:
                raw = await response.read()
            finally:
                response.release()
            text = raw.decode("utf-8", errors="replace")
            try:
                data = json.loads(text) if text else None
            except ValueError:
                data = None
            raise KubeApiError(response.status, data if isinstance(data, dict) else None, text)
        return response

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            if self._ws is not None:
                await self._ws.close()
            await self.api.close()


def _existing_kubeconfigs(paths: str) -> tuple[list[str], list[str]]:
    found: list[str] = []
    missing: list[str] = []
    for path in paths.split(os.pathsep):
        if path:
            expanded = os.path.expanduser(path)
            (found if os.path.isfile(expanded) else missing).append(expanded)
    return found, missing


async def open_client(
    settings: KubeSettings, environ: Mapping[str, str] | None = None
) -> KubeClient:
    """A client for the cluster `settings` name. Raises KubeError with the reason."""
    from .extras import MissingExtra, require

    try:
        require("kubernetes", "Kubernetes access (kubernetes sources, kubernetes-service targets)")
    except MissingExtra as exc:
        raise KubeError(str(exc)) from None
    from kubernetes_asyncio import client, config
    from kubernetes_asyncio.config.config_exception import ConfigException

    environ = os.environ if environ is None else environ
    configuration = client.Configuration()
    if not settings.verify_ssl:
        configuration.verify_ssl = False
    if settings.in_cluster:
        return _in_cluster(configuration, settings, environ)
    paths = settings.kubeconfig or environ.get("KUBECONFIG")
    where = "--kubeconfig/kubernetes.kubeconfig" if settings.kubeconfig else "$KUBECONFIG"
    if not paths and os.path.isfile(os.path.expanduser(DEFAULT_KUBECONFIG)):
        paths, where = DEFAULT_KUBECONFIG, DEFAULT_KUBECONFIG
    if paths:
        found, missing = _existing_kubeconfigs(paths)
        if not found:
            raise KubeError(f"no kubeconfig file at {', '.join(missing)} (from {where})")
        try:
            loader = await config.load_kube_config(
                config_file=os.pathsep.join(found),
                context=settings.context,
                client_configuration=configuration,
                persist_config=False,  # never write token refreshes into the user's file
            )
        except ConfigException as exc:
            raise KubeError(_config_problem(str(exc), settings.context, found)) from None
        except (OSError, ValueError) as exc:
            raise KubeError(f"cannot load kubeconfig {', '.join(found)}: {exc}") from None
        except Exception as exc:
            # Not YAML, or YAML that is not a kubeconfig (a list, a bare word): the library
            # fails with whatever its parser or its dict walk raises. That is the column's or
            # the row's error, not the run's.
            raise KubeError(
                f"cannot load kubeconfig {', '.join(found)}: not a kubeconfig "
                f"({type(exc).__name__}: {exc})"
            ) from None
        if not settings.verify_ssl:  # the kubeconfig's own setting is overruled
            configuration.verify_ssl = False
        current = loader.current_context or {}
        context = current.get("context") or {}
        return KubeClient(
            configuration,
            settings,
            f"kubeconfig {', '.join(found)}",
            current.get("name"),
            context.get("namespace") if isinstance(context, Mapping) else None,
        )
    if environ.get("KUBERNETES_SERVICE_HOST"):
        if settings.context:
            raise KubeError(
                f"context {settings.context!r} was asked for, but there is no kubeconfig "
                "(only the in-cluster service account)"
            )
        return _in_cluster(configuration, settings, environ)
    raise KubeError(
        "no Kubernetes configuration: give --kubeconfig (or kubernetes.kubeconfig, or "
        f"$KUBECONFIG); {DEFAULT_KUBECONFIG} does not exist and this is not a pod "
        "(KUBERNETES_SERVICE_HOST is not set)"
    )


def _in_cluster(
    configuration: Any, settings: KubeSettings, environ: Mapping[str, str]
) -> KubeClient:
    """The pod's service account (KUBERNETES_SERVICE_HOST and the mounted token)."""
    from kubernetes_asyncio import config
    from kubernetes_asyncio.config.config_exception import ConfigException

    if not environ.get("KUBERNETES_SERVICE_HOST"):
        raise KubeError(
            "the in-cluster service account was asked for, but this is not a pod "
            "(KUBERNETES_SERVICE_HOST is not set)"
        )
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except ConfigException as exc:
        raise KubeError(f"in-cluster configuration: {exc}") from None
    if not settings.verify_ssl:
        configuration.verify_ssl = False
    try:
        namespace: str | None = (SERVICE_ACCOUNT / "namespace").read_text().strip()
    except OSError:
        namespace = None
    return KubeClient(configuration, settings, "in-cluster service account", None, namespace)


def _config_problem(message: str, context: str | None, files: list[str]) -> str:
    if context and ("context" in message.lower() or "expected key" in message.lower()):
        return f"kubeconfig {', '.join(files)} has no usable context {context!r} ({message})"
    return f"kubeconfig {', '.join(files)}: {message}"


class KubeHandle:
    """The run's Kubernetes client: opened on first use (targets and sources share it) and
    closed with the run's resources. A failure to open it is remembered, so every column and
    row tells the same reason."""

    def __init__(
        self,
        section: KubernetesSettings | None,
        overrides: KubeOverrides,
        resources: AsyncExitStack,
    ) -> None:
        self.section = section
        self.overrides = overrides
        self.resources = resources
        self._client: KubeClient | None = None
        self._failure: str | None = None
        self._lock: anyio.Lock | None = None

    async def client(self) -> KubeClient:
        """The client, or KubeError with why there is none."""
        if self._lock is None:  # made on first use: no await since the check, so no race
            self._lock = anyio.Lock()
        async with self._lock:
            if self._client is not None:
                return self._client
            if self._failure is not None:
                raise KubeError(self._failure)
            try:
                made = await open_client(kube_settings(self.section, self.overrides))
            except KubeError as exc:
                self._failure = str(exc)
                raise
            self.resources.push_async_callback(made.aclose)
            self._client = made
            return made


# --- failures in words ----------------------------------------------------------------------


def _errno_text(number: int | None) -> str:
    if not number:
        return ""
    name = errno.errorcode.get(number, str(number))
    return f"{name} ({os.strerror(number).lower()})"


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError under aiohttp's wrappers (`os_error`, __cause__, __context__)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        inner = getattr(current, "os_error", None)
        if isinstance(inner, OSError) and inner.errno:
            return inner
        if isinstance(current, OSError) and current.errno:
            return current
        current = current.__cause__ or current.__context__
    return None


def explain(exc: BaseException, kube: KubeClient | None, doing: str) -> str:
    """What went wrong while `doing` (e.g. "reading Service default/api"), for a user."""
    import aiohttp

    server = kube.server if kube else "the API server"
    context = f" (context {kube.context_name})" if kube and kube.context_name else ""
    if isinstance(exc, KubeApiError):
        if exc.status == 401:
            return (
                f"{doing}: the API server {server} refused the credentials (401 Unauthorized): "
                f"the kubeconfig's token or certificate{context} is wrong or expired"
            )
        if exc.status == 403:
            return f"{doing}: {forbidden(exc.message)}"
        detail = f"{exc.status} {exc.reason}".strip()
        return f"{doing}: the API server answered {detail}" + (
            f": {exc.message}" if exc.message else ""
        )
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        lacking = _upgrade_needs(exc)
        if lacking is not None:
            return f"{doing}: {lacking}"
        return (
            f"{doing}: the API server refused the WebSocket upgrade: {_upgrade_refusal(exc.status)}"
        )
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        error = _os_error(exc)
        what = _errno_text(error.errno if error else None) or str(exc)
        return (
            f"{doing}: the proxy for {server} cannot be reached: {what}"
            " (kubernetes-asyncio sends API requests through HTTP(S)_PROXY unless NO_PROXY "
            "names the API server)"
        )
    if isinstance(exc, (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError)):
        return f"{doing}: TLS with the API server {server} failed: {exc}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        error = _os_error(exc)
        what = _errno_text(error.errno if error else None) or str(exc)
        return f"{doing}: the API server {server} is unreachable: {what}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return f"{doing}: the API server {server} closed the connection without answering"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        seconds = kube.timeout if kube else None
        within = f" within {seconds:g}s" if seconds else ""
        return f"{doing}: no answer from the API server {server}{within}"
    return redact(f"{doing}: {type(exc).__name__}: {exc}")


_RBAC_REFUSAL = re.compile(
    r'cannot (?P<verb>\S+) resource "(?P<resource>[^"]+)" in API group "(?P<group>[^"]*)"'
    r'(?: in the namespace "(?P<namespace>[^"]+)"| (?P<cluster>at the cluster scope))'
)


def forbidden(message: str) -> str:
    """A 403 in a user's words: which verb on which resource is missing, and where (from the
    RBAC authorizer's message), then the API server's own words. An admission refusal (Pod
    Security, a quota) is also a 403: its words say why."""
    found = _RBAC_REFUSAL.search(message or "")
    if found is None:
        return f"forbidden (403): {message or 'RBAC denies it'}"
    return f"{needs(found['verb'], found['resource'], found['group'], found['namespace'])} " + (
        f"(403 Forbidden: {message})"
    )


def needs(verb: str, resource: str, group: str = "", namespace: str | None = None) -> str:
    """'needs create on pods/exec in namespace default' (RBAC's terms)."""
    what = f"{resource}.{group}" if group else resource
    where = f"in namespace {namespace}" if namespace else "cluster-wide"
    return f"needs {verb} on {what} {where}"


_UPGRADED = re.compile(
    r"/namespaces/(?P<namespace>[^/]+)/pods/[^/]+/(?P<sub>exec|portforward|attach)$"
)


def _upgrade_needs(exc: Any) -> str | None:
    """A 403 on an exec or port-forward upgrade: the verb it lacks, from the request's path
    (the refusal's body, which names it, is not read by the WebSocket client)."""
    url = getattr(getattr(exc, "request_info", None), "url", None)
    found = _UPGRADED.search(url.path) if exc.status == 403 and url is not None else None
    if found is None:
        return None
    return (
        f"{needs('create', 'pods/' + found['sub'], '', found['namespace'])} (the API server "
        "refused the WebSocket upgrade: 403 Forbidden; before Kubernetes 1.30 the verb is get)"
    )


def _upgrade_refusal(status: int) -> str:
    meaning = {
        400: "the request is invalid (the pod is not running, or the container must be named)",
        401: "the credentials were refused",
        403: "forbidden (RBAC: create on pods/exec or pods/portforward), or the subprotocol "
        "is not supported",
        404: "no such pod",
        500: "the API server or the kubelet failed",
        503: "the kubelet is unavailable",
    }.get(status, "")
    return f"HTTP {status}" + (f" ({meaning})" if meaning else "")
