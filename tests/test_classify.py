"""The status table: every errno, getaddrinfo code and curl exit code the README documents."""

from __future__ import annotations

import errno
import re
import socket
import ssl
import typing
from pathlib import Path

import pytest

from probe_engine.agent import classify
from probe_engine.status import Status


def test_the_readme_documents_every_status_in_order() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme.split("### Statuses and the errno behind each", 1)[1].split("###", 1)[0]
    documented = tuple(re.findall(r"^\| `([a-z-]+)` \|", table, flags=re.MULTILINE))
    assert documented == typing.get_args(Status) == classify.STATUSES


@pytest.mark.parametrize(
    ("number", "status"),
    [
        (errno.ECONNREFUSED, "refused"),
        (errno.ETIMEDOUT, "timeout"),
        (errno.EAGAIN, "timeout"),
        (errno.EHOSTUNREACH, "unreachable"),
        (errno.ENETUNREACH, "unreachable"),
        (errno.EACCES, "unreachable"),
        (errno.EPERM, "unreachable"),
        (errno.ECONNRESET, "reset"),
        (errno.EPIPE, "reset"),
        (socket.EAI_NONAME, "dns-error"),
        (socket.EAI_AGAIN, "dns-error"),
    ],
)
def test_errno_table(number: int, status: str) -> None:
    assert classify.status_for_errno(number) == status


def test_getaddrinfo_codes_have_names_and_reasons() -> None:
    assert classify.errno_name(socket.EAI_NONAME) == "EAI_NONAME"
    assert classify.errno_name(socket.EAI_AGAIN) == "EAI_AGAIN"
    assert classify.GAI_REASON["EAI_NONAME"] == "nxdomain"
    assert classify.GAI_REASON["EAI_AGAIN"] == "no-answer"


@pytest.mark.parametrize(
    ("code", "message", "status", "number"),
    [
        (6, "curl: (6) Could not resolve host: api", "dns-error", None),
        (5, "curl: (5) Could not resolve proxy: proxy", "proxy-error", None),
        (
            7,
            "* connect to 127.0.0.1 port 1 failed: Connection refused",
            "refused",
            errno.ECONNREFUSED,
        ),
        (
            7,
            "* connect to 10.0.0.1 port 80 failed: No route to host",
            "unreachable",
            errno.EHOSTUNREACH,
        ),
        (
            7,
            "* connect to 10.0.0.1 port 80 failed: Network is unreachable",
            "unreachable",
            errno.ENETUNREACH,
        ),
        (28, "curl: (28) Connection timed out after 1001 milliseconds", "timeout", None),
        (35, "curl: (35) OpenSSL SSL_connect: SSL_ERROR_SYSCALL", "tls-error", None),
        (60, "curl: (60) SSL certificate problem", "tls-error", None),
        (52, "curl: (52) Empty reply from server", "reset", None),
        (56, "curl: (56) Recv failure: Connection reset by peer", "reset", errno.ECONNRESET),
        (22, "curl: (22) The requested URL returned error: 500", "http-error", None),
        (0, "", "ok", None),
        (2, "curl: (2) Failed initialization", "source-error", None),
        (3, "curl: (3) URL using bad/illegal format or missing URL", "source-error", None),
        (
            4,
            "curl: (4) A requested feature, protocol or option was not found",
            "source-error",
            None,
        ),
        (43, "curl: (43) A libcurl function was given a bad argument", "source-error", None),
        (
            48,
            "curl: option --http3: the installed libcurl does not support this",
            "source-error",
            None,
        ),
    ],
)
def test_curl_exit_codes(code: int, message: str, status: str, number: int | None) -> None:
    assert classify.classify_curl(code, message) == (status, number)


def test_the_errno_is_found_under_wrappers_and_exception_groups() -> None:
    inner = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    wrapped = OSError("All connection attempts failed")
    wrapped.__cause__ = ExceptionGroup("attempts", [TimeoutError("x"), inner])
    status, number, message = classify.classify_exception(wrapped)
    assert (status, number) == ("refused", errno.ECONNREFUSED)
    assert message == "Connection refused"


def test_a_python_socket_timeout_is_a_timeout_without_errno() -> None:
    assert classify.classify_exception(TimeoutError("timed out"))[:2] == ("timeout", None)


def test_ssl_errors_are_tls_errors() -> None:
    assert classify.classify_exception(ssl.SSLCertVerificationError("bad cert"))[0] == "tls-error"


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("nc: can't connect to remote host (127.0.0.1): Connection refused", errno.ECONNREFUSED),
        ("bash: connect: No route to host", errno.EHOSTUNREACH),
        (
            "wget: can't connect to remote host (10.0.0.1): Network is unreachable",
            errno.ENETUNREACH,
        ),
        ("Connecting to 10.0.0.1:80... failed: Connection timed out.", errno.ETIMEDOUT),
        ("all good", None),
    ],
)
def test_errno_is_recovered_from_tool_messages(text: str, number: int | None) -> None:
    assert classify.errno_from_message(text) == number
