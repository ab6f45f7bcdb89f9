"""The http check: one request, sent by the source's own client, through the proxy it chose.

Runs on the runner's worker threads. requests, httpx and urllib send their own requests where
the place has them (agent/clients.py says which); elsewhere http.client does, with the proxy
and CA trust that client would have. All record the same fields, so cells from different
sources stay comparable; https cells also get the CA source and certificate facts (tls.py).
Standard library only at import time; Python 3.8 compatible.
"""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Mapping, Sequence
from urllib.parse import unquote, urlsplit

from .address import hostport
from .bind import Bind, BindError, bound_connector, describe, socket_options, source_address
from .classify import classify_exception, errno_name
from .clients import HttpClient, Trust
from .plans import Plan
from .proxy import proxy_address, redact
from .records import Check, TlsFacts
from .tls import decode, fetch_certificate, peer_certificate, verify_error

BODY_LIMIT = 1 << 20  # a health check body is small; never buffer more than this
PROXY_FAILURE_CODES = (407, 502, 503, 504)
FACTS_MARGIN = 0.2  # seconds left for the answer to reach the runner before the deadline


def status_matches(code: int, expect: Sequence[int] | None) -> bool:
    if expect:
        return code in expect
    return 200 <= code < 400


def _target_url(url: str, address: str | None) -> str:
    """The URL with its host replaced by an address already chosen (Kubernetes endpoints)."""
    if not address:
        return url
    parts = urlsplit(url)
    bracketed = f"[{address}]" if ":" in address else address
    netloc = bracketed if parts.port is None else hostport(address, parts.port)
    return parts._replace(netloc=netloc).geturl()


def _failure(record: Check, exc: BaseException, via_proxy: bool) -> None:
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, str):
        # urllib refused the request itself ("unknown url type: socks5h"): nothing was sent,
        # so the network said nothing; the user's code fails the same way.
        record.update(
            {"status": "source-error", "message": f"urllib cannot send it: URLError: {exc}"}
        )
        return
    status, number, message = classify_exception(exc)
    if not isinstance(exc, OSError):
        message = f"{type(exc).__name__}: {message}"  # ReadTimeout vs ConnectTimeout
    if via_proxy and (status in ("refused", "unreachable") or "ProxyError" in type(exc).__name__):
        status = "proxy-error"
    record.update(
        {
            "status": status,
            "errno": number,
            "errno_name": errno_name(number),
            "message": redact(message),
        }
    )


def _judge(
    record: Check, code: int, reason: str, expect: Sequence[int] | None, via_proxy: bool
) -> None:
    record["http_status"] = code
    if status_matches(code, expect):
        record.update({"status": "ok", "message": f"HTTP {code} {reason}"})
    elif via_proxy and code in PROXY_FAILURE_CODES:
        record.update(
            {
                "status": "proxy-error",
                "message": f"the proxy answered HTTP {code} {reason}: "
                "it could not or would not reach the target",
            }
        )
    else:
        wanted = ", ".join(str(c) for c in expect) if expect else "2xx or 3xx"
        record.update(
            {"status": "http-error", "message": f"HTTP {code} {reason} (expected {wanted})"}
        )


@dataclass
class Exchange:
    """One request's parameters, and what the sender saw besides the status."""

    url: str  # the URL requested (its host replaced by `address` when one is given)
    method: str
    headers: Mapping[str, str]
    proxy: str | None
    trust: Trust
    timeout: float
    verify: bool = True
    host: str = ""  # the URL's own host (the certificate's name)
    address: str | None = None  # the address connected to instead of resolving `host`
    certificate: bytes | None = None
    bind: Bind = None  # the chosen source address or interface

    def socket_of(self, response: Any) -> Any:
        """The socket under an http.client response (requests and urllib hide it there)."""
        try:
            return response.fp.raw._sock
        except AttributeError:
            return None

    def note_socket(self, record: Check, sock: Any) -> None:
        try:
            peer = sock.getpeername() if sock is not None else None
        except Exception:  # a fact, never a reason to fail the cell
            peer = None
        record["peer"] = f"{peer[0]}:{peer[1]}" if peer else None
        self.certificate = peer_certificate(sock)


def _with_httpx(httpx: Any, record: Check, ex: Exchange) -> tuple[int, str]:
    """The exchange through httpx: fills `record` (peer, bytes, timings), returns the status."""
    timings: dict[str, float] = {}
    started = time.monotonic()
    marks: dict[str, float] = {}

    def trace(event: str, info: Mapping[str, Any]) -> None:
        marks[event] = time.monotonic()

    verify = ex.trust.context if ex.trust.context is not None else ex.trust.verify
    if ex.bind:  # httpcore binds the socket: its transport takes the choice
        transport = httpx.HTTPTransport(
            verify=verify,
            proxy=ex.proxy,
            local_address=(source_address(ex.bind) or ("", 0))[0] or None,
            socket_options=socket_options(ex.bind) or None,
        )
        client = httpx.Client(transport=transport, trust_env=False, timeout=ex.timeout)
    else:
        client = httpx.Client(proxy=ex.proxy, verify=verify, trust_env=False, timeout=ex.timeout)
    try:
        with client.stream(
            ex.method, ex.url, headers=dict(ex.headers), extensions={"trace": trace}
        ) as response:
            # Ask for the peer before reading: an HTTP/1.0 server closes the socket at the end.
            stream = response.extensions.get("network_stream")
            try:
                peer = stream.get_extra_info("server_addr") if stream is not None else None
                tls = stream.get_extra_info("ssl_object") if stream is not None else None
            except OSError:  # reset already (ENOTCONN): reading the body says how
                peer = tls = None
            record["peer"] = f"{peer[0]}:{peer[1]}" if peer else None
            ex.certificate = peer_certificate(tls)
            body = 0
            for chunk in response.iter_raw():
                body += len(chunk)
                if body >= BODY_LIMIT:
                    break
            record["bytes"] = body
            code, reason = response.status_code, response.reason_phrase
    finally:
        client.close()
    ended = time.monotonic()
    for phase, start, end in (
        ("connect", "connection.connect_tcp.started", "connection.connect_tcp.complete"),
        ("tls", "connection.start_tls.started", "connection.start_tls.complete"),
        ("send", "http11.send_request_headers.started", "http11.send_request_body.complete"),
        ("wait", "http11.send_request_body.complete", "http11.receive_response_headers.complete"),
    ):
        if start in marks and end in marks:
            timings[phase] = round((marks[end] - marks[start]) * 1000.0, 3)
    if "http11.receive_response_headers.complete" in marks:
        timings["receive"] = round(
            (ended - marks["http11.receive_response_headers.complete"]) * 1000.0, 3
        )
    timings["total"] = round((ended - started) * 1000.0, 3)
    record["timings"] = timings
    return code, reason


def _with_requests(requests: Any, record: Check, ex: Exchange) -> tuple[int, str]:
    """The exchange through requests, with the proxy and CA it chose from the environment
    (already decided: this session reads nothing more from it)."""
    started = time.monotonic()
    session = requests.Session()
    session.trust_env = False
    if ex.bind:
        adapter = _bound_adapter(requests, ex.bind)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
    proxies = {"http": ex.proxy, "https": ex.proxy} if ex.proxy else None
    try:
        response = session.request(
            ex.method,
            ex.url,
            headers=dict(ex.headers),
            proxies=proxies,
            verify=ex.trust.verify,
            timeout=ex.timeout,
            stream=True,
            allow_redirects=False,
        )
        answered = time.monotonic()
        try:
            ex.note_socket(record, ex.socket_of(getattr(response.raw, "_fp", None)))
            body = 0
            for chunk in response.raw.stream(1 << 16, decode_content=False):
                body += len(chunk)
                if body >= BODY_LIMIT:
                    break
            record["bytes"] = body
            code, reason = response.status_code, response.reason or ""
        finally:
            response.close()
    finally:
        session.close()
    _timings(record, started, answered)
    return code, reason


def _bound_adapter(requests: Any, bind: Bind) -> Any:
    """A requests adapter whose urllib3 pools (direct and through a proxy) bind their
    sockets as `bind` says: urllib3's own source_address and socket_options."""
    base = requests.adapters.HTTPAdapter
    extra: dict[str, Any] = {}
    if source_address(bind):
        extra["source_address"] = source_address(bind)
    if socket_options(bind):
        # Given options replace urllib3's defaults (HTTPConnection.default_socket_options,
        # TCP_NODELAY): keep them.
        nodelay = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        extra["socket_options"] = [nodelay, *socket_options(bind)]

    class BoundAdapter(base):  # type: ignore[misc, valid-type]
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **{**kwargs, **extra})

        def proxy_manager_for(self, proxy: Any, **kwargs: Any) -> Any:
            return super().proxy_manager_for(proxy, **{**kwargs, **extra})

    return BoundAdapter()


def _bound_classes(bind: Bind) -> tuple[Any, Any]:
    """http.client's connection classes, connecting from the chosen source (http.client
    sets its connect function per instance, in __init__)."""
    connect = bound_connector(bind)

    class Bound(http.client.HTTPConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._create_connection = connect

    class BoundTls(http.client.HTTPSConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._create_connection = connect

    return Bound, BoundTls


class _BoundHttp(urllib.request.HTTPHandler):
    def __init__(self, bind: Bind) -> None:
        super().__init__()
        self.plain = _bound_classes(bind)[0]

    def http_open(self, req: Any) -> Any:
        return self.do_open(self.plain, req)


class _BoundHttps(urllib.request.HTTPSHandler):
    def __init__(self, bind: Bind, context: Any) -> None:
        super().__init__(context=context)
        self.tls = _bound_classes(bind)[1]

    def https_open(self, req: Any) -> Any:
        return self.do_open(self.tls, req, context=self._context)  # type: ignore[attr-defined]


class _KeepRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx is the answer, as for the other clients: not followed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _with_urllib(record: Check, ex: Exchange) -> tuple[int, str]:
    """The exchange through urllib.request, as urlopen makes it, with the proxy it chose."""
    started = time.monotonic()
    scheme = urlsplit(ex.url).scheme.lower()
    handlers: list[Any] = [urllib.request.HTTPSHandler(context=ex.trust.context)]
    if ex.bind:
        handlers = [_BoundHttp(ex.bind), _BoundHttps(ex.bind, ex.trust.context)]
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({scheme: ex.proxy} if ex.proxy else {}),
        *handlers,
        _KeepRedirects(),
    )
    request = urllib.request.Request(ex.url, headers=dict(ex.headers), method=ex.method)
    try:
        response: Any = opener.open(request, timeout=ex.timeout)
    except urllib.error.HTTPError as exc:  # a status outside 2xx is still an answer
        response = exc
    answered = time.monotonic()
    try:
        ex.note_socket(record, ex.socket_of(getattr(response, "fp", None)))
        record["bytes"] = len(response.read(BODY_LIMIT))
        code, reason = int(response.code), str(response.reason or "")
    finally:
        response.close()
    _timings(record, started, answered)
    return code, reason


def _timings(record: Check, started: float, answered: float) -> None:
    ended = time.monotonic()
    record["timings"] = {
        "headers": round((answered - started) * 1000.0, 3),
        "receive": round((ended - answered) * 1000.0, 3),
        "total": round((ended - started) * 1000.0, 3),
    }


def _with_http_client(record: Check, ex: Exchange) -> tuple[int, str]:
    """The same through http.client, where the client's library is not importable."""
    parts = urlsplit(ex.url)
    https = parts.scheme == "https"
    host, port = parts.hostname or "", parts.port or (443 if https else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    send_headers = dict(ex.headers)
    send_headers.setdefault("Host", parts.netloc.rpartition("@")[2])
    started = time.monotonic()
    context = ex.trust.context
    connection: http.client.HTTPConnection
    plain, tls = (
        _bound_classes(ex.bind)
        if ex.bind
        else (http.client.HTTPConnection, http.client.HTTPSConnection)
    )
    if ex.proxy:
        proxy_host, proxy_port, _scheme = proxy_address(ex.proxy)
        proxy_parts = urlsplit(ex.proxy if "://" in ex.proxy else "http://" + ex.proxy)
        auth = {}
        if proxy_parts.username is not None:
            token = "{}:{}".format(
                unquote(proxy_parts.username), unquote(proxy_parts.password or "")
            )
            auth["Proxy-Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
        if https:
            connection = tls(proxy_host, proxy_port, timeout=ex.timeout, context=context)
            connection.set_tunnel(host, port, headers=auth)
        else:
            connection = plain(proxy_host, proxy_port, timeout=ex.timeout)
            send_headers.update(auth)
            path = ex.url  # absolute form for a forward proxy
    elif https:
        connection = tls(host, port, timeout=ex.timeout, context=context)
    else:
        connection = plain(host, port, timeout=ex.timeout)
    try:
        connection.connect()
        connected = time.monotonic()
        ex.note_socket(record, connection.sock)
        connection.request(ex.method, path, headers=send_headers)
        sent = time.monotonic()
        response = connection.getresponse()
        answered = time.monotonic()
        record["bytes"] = len(response.read(BODY_LIMIT))
        ended = time.monotonic()
        record["timings"] = {
            "connect": round((connected - started) * 1000.0, 3),
            "send": round((sent - connected) * 1000.0, 3),
            "wait": round((answered - sent) * 1000.0, 3),
            "receive": round((ended - answered) * 1000.0, 3),
            "total": round((ended - started) * 1000.0, 3),
        }
        return response.status, response.reason
    finally:
        connection.close()


def warm_up(client: HttpClient) -> None:
    """Import the client's library, build what decides its proxies and load its CAs (a few
    tenths of a second) while DNS and TCP cells run: no HTTP cell pays for them."""
    client.prepare()


def _tls_facts(
    record: Check,
    ex: Exchange,
    client: HttpClient,
    failure: BaseException | None,
    deadline: float,
) -> TlsFacts:
    tls: TlsFacts = {"client": client.name, "ca": ex.trust.ca, "verify": ex.verify}
    if failure is not None:
        tls["verify_error"] = verify_error(failure)
    der = ex.certificate
    remaining = deadline - time.monotonic() - FACTS_MARGIN
    if der is None and record.get("status") == "tls-error" and remaining > 0.1:
        # The refused certificate, from one more handshake, only with time to spare: the
        # facts must never turn the cell's answer into a timeout. Connect and handshake each
        # get half of what is left.
        port = urlsplit(ex.url).port or 443
        der = fetch_certificate(ex.host, port, ex.address, ex.proxy, min(remaining / 2, 1.0))
    tls.update(decode(der or b""))
    return tls


def http_exchange(
    plan: Plan,
    client: HttpClient,
    proxy: str | None = None,
    address: str | None = None,
    timeout: float = 2.0,
) -> Check:
    """The request of an http `plan` (url, method, headers, expect_status, verify) through
    `proxy`, or to `address` instead of resolving the URL's host; a CheckRecord-shaped dict.
    Network failures are data, never raised.

    The cell's `tls` facts (CA source, certificate, verify error) ride along under "tls" for
    https URLs; the runner moves them to the cell."""
    url = plan.get("url", "")
    record: Check = {"name": "http", "url": redact(url), "client": client.label()}
    started = time.monotonic()
    send_headers = dict(plan.get("headers") or {})
    if address:
        send_headers.setdefault("Host", urlsplit(url).netloc.rpartition("@")[2])
    verify = plan.get("verify", True)
    ex = Exchange(
        url=_target_url(url, address),
        method=plan.get("method", "GET"),
        headers=send_headers,
        proxy=proxy,
        trust=client.trust(verify),
        timeout=timeout,
        verify=verify,
        host=urlsplit(url).hostname or "",
        address=address,
        bind=plan.get("bind"),
    )
    trust = ex.trust
    https = urlsplit(url).scheme.lower() == "https"
    failure: BaseException | None = None
    try:
        if https and trust.error:
            raise ssl.SSLError(trust.error)
        sender = client.sender()
        if sender == "requests":
            code, reason = _with_requests(client.library, record, ex)
        elif sender == "httpx":
            code, reason = _with_httpx(client.library, record, ex)
        elif sender == "urllib":
            code, reason = _with_urllib(record, ex)
        else:
            code, reason = _with_http_client(record, ex)
    except BindError as exc:  # the place lacks the chosen source: nothing was sent
        record.update(exc.record("http", address or ex.host, "", None))
        record["url"] = redact(url)
        record.pop("family", None)
    except Exception as exc:
        failure = exc
        _failure(record, exc, via_proxy=proxy is not None)
    else:
        _judge(record, code, reason, plan.get("expect_status"), via_proxy=proxy is not None)
    if https:
        record["tls"] = _tls_facts(record, ex, client, failure, started + timeout)
    if ex.bind:
        record["bind"] = describe(ex.bind)
    agent = next((v for k, v in send_headers.items() if k.lower() == "user-agent"), None)
    if agent is not None:
        record["user_agent"] = agent
    record["duration_ms"] = (time.monotonic() - started) * 1000.0
    return record
