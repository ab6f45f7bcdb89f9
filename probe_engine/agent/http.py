"""The http check: one request, through the proxy the source's client would use.

Runs on the runner's worker threads. httpx is used where it is importable (this process, or a
place whose Python has it); elsewhere http.client. Both record the same fields, so cells from
different sources stay comparable. Standard library only at import time; Python 3.8 compatible.
"""

from __future__ import annotations

import base64
import http.client
import ssl
import time
from typing import Any, Mapping, Sequence
from urllib.parse import unquote, urlsplit

from .address import hostport
from .classify import classify_exception, errno_name
from .proxy import proxy_address, redact

BODY_LIMIT = 1 << 20  # a health check body is small; never buffer more than this
PROXY_FAILURE_CODES = (407, 502, 503, 504)


def status_matches(code: int, expect: Sequence[int] | None) -> bool:
    if expect:
        return code in expect
    return 200 <= code < 400


class SSLContexts:
    """One verifying and one non-verifying context per run: creating them costs milliseconds."""

    def __init__(self) -> None:
        self._contexts: dict[bool, ssl.SSLContext] = {}

    def get(self, verify: bool) -> ssl.SSLContext:
        if verify not in self._contexts:
            context = ssl.create_default_context()
            if not verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._contexts[verify] = context
        return self._contexts[verify]


def _target_url(url: str, address: str | None) -> str:
    """The URL with its host replaced by an address already chosen (Kubernetes endpoints)."""
    if not address:
        return url
    parts = urlsplit(url)
    bracketed = f"[{address}]" if ":" in address else address
    netloc = bracketed if parts.port is None else hostport(address, parts.port)
    return parts._replace(netloc=netloc).geturl()


def _failure(record: dict[str, Any], exc: BaseException, via_proxy: bool) -> None:
    status, number, message = classify_exception(exc)
    if not isinstance(exc, OSError):
        message = f"{type(exc).__name__}: {message}"  # ReadTimeout vs ConnectTimeout
    if via_proxy and (status in ("refused", "unreachable") or type(exc).__name__ == "ProxyError"):
        status = "proxy-error"
    record.update(
        status=status, errno=number, errno_name=errno_name(number), message=redact(message)
    )


def _judge(
    record: dict[str, Any], code: int, reason: str, expect: Sequence[int] | None, via_proxy: bool
) -> None:
    record["http_status"] = code
    if status_matches(code, expect):
        record.update(status="ok", message=f"HTTP {code} {reason}")
    elif via_proxy and code in PROXY_FAILURE_CODES:
        record.update(
            status="proxy-error",
            message=f"the proxy answered HTTP {code} {reason}: "
            "it could not or would not reach the target",
        )
    else:
        wanted = ", ".join(str(c) for c in expect) if expect else "2xx or 3xx"
        record.update(status="http-error", message=f"HTTP {code} {reason} (expected {wanted})")


def _with_httpx(
    httpx: Any,
    record: dict[str, Any],
    url: str,
    method: str,
    headers: Mapping[str, str],
    proxy: str | None,
    verify: ssl.SSLContext,
    timeout: float,
) -> tuple[int, str]:
    """The exchange through httpx: fills `record` (peer, bytes, timings), returns the status."""
    timings: dict[str, float] = {}
    started = time.monotonic()
    marks: dict[str, float] = {}

    def trace(event: str, info: Mapping[str, Any]) -> None:
        marks[event] = time.monotonic()

    client = httpx.Client(proxy=proxy, verify=verify, trust_env=False, timeout=timeout)
    try:
        with client.stream(
            method, url, headers=dict(headers), extensions={"trace": trace}
        ) as response:
            # Ask for the peer before reading: an HTTP/1.0 server closes the socket at the end.
            stream = response.extensions.get("network_stream")
            try:
                peer = stream.get_extra_info("server_addr") if stream is not None else None
            except OSError:  # reset already (ENOTCONN): reading the body says how
                peer = None
            record["peer"] = f"{peer[0]}:{peer[1]}" if peer else None
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


def _with_http_client(
    record: dict[str, Any],
    url: str,
    method: str,
    headers: Mapping[str, str],
    proxy: str | None,
    verify: ssl.SSLContext,
    timeout: float,
) -> tuple[int, str]:
    """The same through http.client, where httpx is not importable."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    host, port = parts.hostname or "", parts.port or (443 if https else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    send_headers = dict(headers)
    send_headers.setdefault("Host", parts.netloc.rpartition("@")[2])
    started = time.monotonic()
    connection: http.client.HTTPConnection
    if proxy:
        proxy_host, proxy_port, _scheme = proxy_address(proxy)
        proxy_parts = urlsplit(proxy if "://" in proxy else "http://" + proxy)
        auth = {}
        if proxy_parts.username is not None:
            token = "{}:{}".format(
                unquote(proxy_parts.username), unquote(proxy_parts.password or "")
            )
            auth["Proxy-Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
        if https:
            connection = http.client.HTTPSConnection(
                proxy_host, proxy_port, timeout=timeout, context=verify
            )
            connection.set_tunnel(host, port, headers=auth)
        else:
            connection = http.client.HTTPConnection(proxy_host, proxy_port, timeout=timeout)
            send_headers.update(auth)
            path = url  # absolute form for a forward proxy
    elif https:
        connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=verify)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.connect()
        connected = time.monotonic()
        peer = connection.sock.getpeername() if connection.sock else None
        record["peer"] = f"{peer[0]}:{peer[1]}" if peer else None
        connection.request(method, path, headers=send_headers)
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


def warm_up() -> dict[str, Any]:
    """Import httpx ahead of the first request (a fifth of a second) while DNS and TCP run."""
    _httpx_module()
    return {}


def _httpx_module() -> Any:
    try:
        import httpx
    except ImportError:
        return None
    # `proxy=` came in httpx 0.26: with an older httpx (an old image at the far end) every
    # request would fail with a TypeError that reads as a network failure.
    try:
        major, minor = (int(part) for part in httpx.__version__.split(".")[:2])
    except ValueError:
        return httpx
    return httpx if (major, minor) >= (0, 26) else None


def http_exchange(
    url: str,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    expect_status: Sequence[int] | None = None,
    proxy: str | None = None,
    address: str | None = None,
    verify: bool = True,
    timeout: float = 2.0,
    contexts: SSLContexts | None = None,
) -> dict[str, Any]:
    """One HTTP request; a CheckRecord-shaped dict. Network failures are data, never raised."""
    record: dict[str, Any] = {"name": "http", "url": redact(url)}
    started = time.monotonic()
    contexts = contexts or SSLContexts()
    send_headers = dict(headers or {})
    request_url = _target_url(url, address)
    if address:
        send_headers.setdefault("Host", urlsplit(url).netloc.rpartition("@")[2])
    httpx = _httpx_module()
    try:
        if httpx is not None:
            record["client"] = f"httpx {httpx.__version__}"
            code, reason = _with_httpx(
                httpx,
                record,
                request_url,
                method,
                send_headers,
                proxy,
                contexts.get(verify),
                timeout,
            )
        else:
            record["client"] = "http.client"
            code, reason = _with_http_client(
                record, request_url, method, send_headers, proxy, contexts.get(verify), timeout
            )
    except Exception as exc:
        _failure(record, exc, via_proxy=proxy is not None)
    else:
        _judge(record, code, reason, expect_status, via_proxy=proxy is not None)
    record["duration_ms"] = (time.monotonic() - started) * 1000.0
    return record
