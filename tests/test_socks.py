"""SOCKS proxies, client by client, through a real SOCKS5 server on loopback (Debian's
microsocks): each client decides as the real one does, and where it cannot use the proxy the
cell fails as the user's code does, in its words (requests without PySocks, httpx without
socksio, urllib that knows no socks:// at all).

The real outcomes are computed live in environments built from empty; the interpreter without
the SOCKS packages is the one scripts/setup makes (.venv-nosocks: requests and httpx only).
socks4 is decided (tests/test_proxy_differential.py) but not probed: microsocks speaks SOCKS5.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from probe_engine.demo.fixtures import LoopbackLab, free_port

from .conftest import cell, require, run_text

NOSOCKS = Path(__file__).resolve().parent.parent / ".venv-nosocks" / "bin" / "python"
SCRIPTS = {
    "urllib": "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)",
    "requests": "import sys, requests; requests.get(sys.argv[1], timeout=5)",
    "httpx": "import sys, httpx; httpx.get(sys.argv[1], timeout=5)",
}


@pytest.fixture(scope="module")
def socks_port() -> Iterator[int]:
    binary = shutil.which("microsocks")
    require(binary is not None, "microsocks is not installed (Debian package microsocks)")
    assert binary is not None
    port = free_port()
    server = subprocess.Popen(
        [binary, "-i", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):  # listening within a second, or the test says so
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.01)
        else:
            pytest.fail("microsocks did not listen within a second")
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def real_outcome(python: str, client: str, url: str, env: dict[str, str]) -> str:
    """'ok', or the exception the real client raised (its type and words)."""
    if client == "curl":
        command = ["curl", "-sS", "-o", "/dev/null", "--max-time", "5", url]
    else:
        command = [python, "-c", SCRIPTS[client], url]
    run = subprocess.run(
        command,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if run.returncode == 0:
        return "ok"
    return (run.stderr.strip().splitlines() or ["failed"])[-1]


CASES = [
    # (row, client, python: "venv" | "nosocks", variable, scheme)
    ("requests-all", "requests", "venv", "ALL_PROXY", "socks5h"),
    ("requests-http", "requests", "venv", "http_proxy", "socks5"),
    ("httpx-all", "httpx", "venv", "ALL_PROXY", "socks5h"),
    ("httpx-http", "httpx", "venv", "http_proxy", "socks5"),
    ("urllib-all", "urllib", "venv", "ALL_PROXY", "socks5h"),
    ("urllib-http", "urllib", "venv", "http_proxy", "socks5h"),
    ("curl-all", "curl", "venv", "ALL_PROXY", "socks5h"),
    ("curl-http", "curl", "venv", "http_proxy", "socks5"),
    ("requests-nosocks", "requests", "nosocks", "ALL_PROXY", "socks5h"),
    ("httpx-nosocks", "httpx", "nosocks", "ALL_PROXY", "socks5h"),
]


@pytest.fixture(scope="module")
def table(socks_port: int, loopback: LoopbackLab):  # type: ignore[no-untyped-def]
    require(shutil.which("curl") is not None, "curl is not installed")
    require(NOSOCKS.exists(), f"{NOSOCKS} is missing (scripts/setup makes it)")
    url = f"http://127.0.0.1:{loopback.http_port}/health"
    rows, real = [], {}
    for row, client, python, variable, scheme in CASES:
        interpreter = sys.executable if python == "venv" else str(NOSOCKS)
        env = {variable: f"{scheme}://127.0.0.1:{socks_port}"}
        real[row] = real_outcome(interpreter, client, url, env)
        if client == "curl":
            env = {"PATH": "/usr/bin:/bin", **env}
            rows.append(f"  {row}: {{kind: shell, tool: curl, inherit_env: false, env: {env}}}")
        else:
            rows.append(
                f"  {row}: {{kind: process, inherit_env: false, http_client: {client}, "
                f"python: {interpreter}, env: {env}}}"
            )
    text = "defaults: {timeout: 5s}\nsources:\n" + "\n".join(rows)
    text += f"\ntargets:\n  api: {{kind: http, url: '{url}', expect_status: [200]}}\n"
    return real, run_text(text)


def test_the_clients_really_differ(table) -> None:  # type: ignore[no-untyped-def]
    real, _result = table
    assert real["requests-all"] == "ok" and real["curl-all"] == "ok"
    assert "Missing dependencies for SOCKS support" in real["requests-nosocks"]
    assert "socksio" in real["httpx-nosocks"]
    assert "unknown url type" in real["urllib-http"]


@pytest.mark.parametrize("row", [c[0] for c in CASES])
def test_each_cell_answers_as_the_real_client(table, row: str, socks_port: int) -> None:  # type: ignore[no-untyped-def]
    real, result = table
    found = cell(result, row, "api")
    if real[row] == "ok":
        assert found.status == "ok", (real[row], found.model_dump_json(indent=1))
        if found.proxy is not None and found.proxy.used:
            assert found.proxy.url == f"{found.proxy.url.split('://')[0]}://127.0.0.1:{socks_port}"
            tcp = [c for c in found.checks if c.name == "tcp"]
            assert tcp and all(c.role == "proxy" and c.port == socks_port for c in tcp)
        return
    # The real client raised: the cell fails as the client, in its words, not as the network.
    assert found.status == "source-error", (real[row], found.model_dump_json(indent=1))
    words = real[row].split(":", 1)[-1].strip()
    assert words and words[:40] in found.model_dump_json(), (real[row], found.checks)
