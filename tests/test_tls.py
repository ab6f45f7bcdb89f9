"""HTTPS: a certificate the client does not trust is a tls-error; verify_tls: false gets past it."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from probe_engine.demo.fixtures import _Handler

from .conftest import cell, run_text

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def https_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(DATA / "tls-cert.pem", DATA / "tls-key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


MATRIX = """
defaults: {timeout: 2s}
sources:
  here: {kind: local, trust_env: false}
  child: {kind: process, inherit_env: false}
  curl: {kind: shell, tool: curl, inherit_env: false, env: {PATH: /usr/bin:/bin}}
targets:
  untrusted: {kind: http, url: "https://127.0.0.1:${PORT}/health"}
  unverified: {kind: http, url: "https://127.0.0.1:${PORT}/health", verify_tls: false}
"""


@pytest.mark.parametrize("source", ["here", "child", "curl"])
def test_an_untrusted_certificate_is_a_tls_error(https_port: int, source: str) -> None:
    result = run_text(MATRIX, {"PORT": str(https_port)})
    untrusted = cell(result, source, "untrusted")
    assert untrusted.status == "tls-error", untrusted.model_dump_json(indent=1)
    assert untrusted.checks[0].status == "ok"  # the TCP connect itself worked
    if source != "curl":
        assert "certificate" in (untrusted.checks[-1].message or "").lower()
    assert cell(result, source, "unverified").status == "ok"
