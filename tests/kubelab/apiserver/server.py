"""The stand-in apiserver: lifecycle, authentication, fault injection and the request log;
its routes are in routes.py."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import functools
import os
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

from aiohttp import web

from .execs import kill
from .frames import is_upgrade
from .kubelet import Kubelet
from .rbac import Rbac
from .records import FAULT_KEY, RECORD_KEY, ExecRecord, Fault, RequestRecord
from .resources import bad_request, not_found, status_response
from .routes import ROUTES
from .selectors import LabelSelectorError
from .store import Store


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
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
    ``rbac`` (set it to an ``Rbac``): more tokens, each bound to Roles and ClusterRoles, whose
    requests are authorized as the apiserver does (403 in its words).
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
        self.lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.procs: set[asyncio.subprocess.Process] = set()
        self.sessions: set[asyncio.Task[Any]] = set()
        self.background: set[asyncio.Task[Any]] = set()  # the scheduler's work after a 201
        self.kubelet = Kubelet(self)
        #: RBAC for the tokens it binds (rbac.py); the admin `token` is never judged
        self.rbac: Rbac | None = None

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
            cert, key = self_signed_cert(Path(self._tmp.name))
            self.ca_pem = cert.read_bytes()
            ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_ctx.load_cert_chain(cert, key)
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=ssl_ctx)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def _shutdown(self) -> None:
        for proc in list(self.procs):
            kill(proc)
        sessions = list(self.sessions) + list(self.background)
        for task in sessions:
            task.cancel()
        if sessions:
            await asyncio.wait(sessions, timeout=5)
        await self.kubelet.shutdown()
        if self._runner is not None:
            await self._runner.cleanup()

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """A WebSocket session in progress: cancelled if the server stops meanwhile."""
        task = asyncio.current_task()
        assert task is not None
        self.sessions.add(task)
        try:
            yield
        finally:
            self.sessions.discard(task)

    # ---- test-facing helpers ---------------------------------------------------------------

    def call(self, work: Callable[[], Coroutine[Any, Any, Any]], timeout: float = 60) -> Any:
        """Run `work()` on the server's event loop (where the kubelet lives) and return its
        result, from any thread."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(work(), self._loop).result(timeout)

    def settle(self, timeout: float = 30) -> None:
        """Wait until the kubelet has started or torn down everything it was asked to, and no
        pod process runs (every pod deleted has its namespace removed)."""

        async def wait() -> None:
            async with asyncio.timeout(timeout):
                while not self.kubelet.idle() or self.background:
                    await asyncio.sleep(0.02)

        self.call(wait, timeout + 5)

    def inject(self, pattern: str, **kwargs: Any) -> Fault:
        """Add a :class:`Fault` (e.g. ``inject("/api/v1/nodes", status=500)``) and return it."""
        fault = Fault(pattern, **kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def requests_to(self, pattern: str) -> list[RequestRecord]:
        """Requests whose path matches the fnmatch ``pattern``."""
        with self.lock:
            return [r for r in self.requests if fnmatch.fnmatchcase(r.path, pattern)]

    def write_kubeconfig(self, path: str | os.PathLike[str], **kwargs: Any) -> Path:
        """Write a kubeconfig for this server (context ``minikube`` unless told otherwise)."""
        from ..kubeconfig import write_kubeconfig

        kwargs.setdefault("token", self.token)
        kwargs.setdefault("ca_pem", self.ca_pem)
        return write_kubeconfig(path, self.url, **kwargs)

    # ---- the application -------------------------------------------------------------------

    def build_app(self) -> web.Application:
        """The aiohttp application (usable on its own, e.g. with aiohttp's test server): every
        row of routes.ROUTES, each handler given this server."""
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024**2)
        for route in ROUTES:
            app.router.add_route(route.method, route.path, functools.partial(route.handler, self))
        return app

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        record = RequestRecord(
            method=request.method,
            path=request.path,
            query=tuple(request.rel_url.query.items()),
            websocket=is_upgrade(request),
            authorization=request.headers.get("Authorization"),
        )
        request[RECORD_KEY] = record
        with self.lock:
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
        given = request.headers.get("Authorization", "")
        authorized = given == f"Bearer {self.token}" or (
            self.rbac is not None and given.removeprefix("Bearer ") in self.rbac.tokens
        )
        if self.token is not None and not public and not authorized:
            return status_response(401, "Unauthorized")
        if self.rbac is not None and not public:
            refused = self.rbac.check(request)
            if refused is not None:
                return refused
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.abort:
                if request.transport is not None:
                    request.transport.abort()
                return web.Response(status=499)
            if fault.status is not None:
                return self._fault_response(request, fault)
            request[FAULT_KEY] = fault
        try:
            return await handler(request)
        except LabelSelectorError as exc:
            return bad_request(str(exc))

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
            return not_found(plural, name or "")
        else:
            message = f"kubelab injected fault ({code})"
        details = {"causes": [{"message": "kubelab injected fault"}]} if code == 500 else None
        return status_response(code, message, details=details)
