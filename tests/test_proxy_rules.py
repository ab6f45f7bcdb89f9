"""The proxy model (probe_engine.agent.proxy) against the real clients it describes.

A recording proxy on loopback tells whether httpx, requests and curl really went through it;
the model must predict the same for every environment below.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from probe_engine.agent.proxy import decide, proxy_environment, redact
from probe_engine.demo.fixtures import LoopbackLab

from .conftest import require


class RecordingProxy:
    """Answers every request itself with 200 and "via-proxy", and counts them."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.requests: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = conn.recv(4096).decode(errors="replace")
                self.requests.append(data.split("\r\n", 1)[0])
                conn.sendall(
                    b"HTTP/1.0 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nvia-proxy"
                )


@pytest.fixture(scope="module")
def proxy() -> Iterator[RecordingProxy]:
    recorder = RecordingProxy()
    yield recorder
    recorder.sock.close()


CLIENT_SCRIPTS = {
    "httpx": "import httpx,sys; r=httpx.get(sys.argv[1], timeout=3); print(r.text[:9])",
    "requests": "import requests,sys; r=requests.get(sys.argv[1], timeout=3); print(r.text[:9])",
}


def went_through_proxy(client: str, url: str, env: dict[str, str]) -> bool:
    base = {"PATH": "/usr/bin:/bin"}
    if client == "curl":
        run = subprocess.run(
            ["curl", "-sS", "--max-time", "3", url],
            env=base | env,
            capture_output=True,
            text=True,
            check=False,
        )
    else:
        run = subprocess.run(
            [sys.executable, "-c", CLIENT_SCRIPTS[client], url],
            env=base | env,
            capture_output=True,
            text=True,
            check=False,
        )
    assert run.returncode == 0, run.stderr
    return run.stdout.strip().startswith("via-proxy")


def environments(proxy_url: str) -> list[dict[str, str]]:
    return [
        {"HTTP_PROXY": proxy_url},
        {"http_proxy": proxy_url},
        {"ALL_PROXY": proxy_url},
        {"HTTP_PROXY": proxy_url, "NO_PROXY": "127.0.0.1"},
        {"http_proxy": proxy_url, "no_proxy": "127.0.0.0/8"},
        {"HTTP_PROXY": proxy_url, "NO_PROXY": "127.0.0.0/8"},
        {"http_proxy": proxy_url, "NO_PROXY": "localhost,*.cluster.local"},
        {"http_proxy": proxy_url, "no_proxy": "*"},
        {"http_proxy": proxy_url, "NO_PROXY": "10.0.0.0/8,192.168.49.2"},
    ]


@pytest.mark.parametrize("client", ["httpx", "requests", "curl"])
@pytest.mark.parametrize("case", range(9))
def test_the_model_predicts_what_each_client_really_does(
    client: str, case: int, proxy: RecordingProxy, loopback: LoopbackLab
) -> None:
    if client == "curl":
        require(shutil.which("curl") is not None, "curl is not installed")
    env = environments(f"http://127.0.0.1:{proxy.port}")[case]
    url = f"http://127.0.0.1:{loopback.http_port}/health"
    predicted, _url = decide(url, env, client)
    assert went_through_proxy(client, url, env) is predicted["used"], json.dumps(predicted)


def test_curl_ignores_upper_case_http_proxy_and_says_so() -> None:
    record, url = decide("http://10.0.0.1/", {"HTTP_PROXY": "http://p:3128"}, "curl")
    assert url is None
    assert record == {
        "client": "curl",
        "used": False,
        "rules": "curl rules (emulated)",
        "ignored": ["HTTP_PROXY"],
    }


def test_httpx_does_not_understand_cidr_in_no_proxy_but_requests_does() -> None:
    env = {"HTTP_PROXY": "http://p:3128", "NO_PROXY": "10.96.0.0/12"}
    assert decide("http://10.96.0.10/", env, "httpx")[0]["used"] is True
    assert decide("http://10.96.0.10/", env, "requests")[0] == {
        "client": "requests",
        "used": False,
        "rules": "requests rules (emulated)",
        "no_proxy_variable": "NO_PROXY",
        "no_proxy_match": "10.96.0.0/12",
    }


def test_lower_case_wins_over_upper_case_for_python_clients() -> None:
    env = {"HTTP_PROXY": "http://upper:1", "http_proxy": "http://lower:2"}
    record, url = decide("http://api/", env, "requests")
    assert (record["variable"], url) == ("http_proxy", "http://lower:2")


def test_passwords_never_leave_the_model() -> None:
    env = {"https_proxy": "http://alice:s3cr3t@proxy:3128", "NO_PROXY": "x"}
    record, url = decide("https://api/", env, "curl")
    assert url == "http://alice:s3cr3t@proxy:3128"  # only for the request itself
    assert "s3cr3t" not in json.dumps(record)
    assert "s3cr3t" not in json.dumps(proxy_environment(env))
    assert (
        redact("proxy http://u:p@h:1 and https://v:q@k")
        == "proxy http://u:***@h:1 and https://v:***@k"
    )


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig x", "Authorization: Bearer *** x"),
        ("proxy-authorization=Basic dXNlcjpwYXNz", "proxy-authorization=Basic ***"),
        ('{"authorization": "Bearer abcdefghijkl"}', '{"authorization": "Bearer ***"}'),
        ("sent basic dXNlcjpwYXNzd29yZA== to it", "sent basic *** to it"),
        ("Authorization: tok3n-value", "Authorization: ***"),
    ],
)
def test_credentials_a_server_log_prints_are_hidden(text: str, hidden: str) -> None:
    assert redact(text) == hidden


@pytest.mark.parametrize(
    "prose",
    [
        "Basic authentication required",
        "authorization failed for user bob",
        'WWW-Authenticate: Bearer realm="api"',
        "a Bearer token",
    ],
)
def test_prose_about_credentials_is_left_alone(prose: str) -> None:
    assert redact(prose) == prose
