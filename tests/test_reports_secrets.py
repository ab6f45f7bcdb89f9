"""No report tells a secret: a real run on loopback with a proxy password and an
Authorization header, rendered in every format, shows neither."""

from __future__ import annotations

import re

import anyio
import pytest
from rich.console import Console

import probe_engine
from probe_engine.demo.fixtures import LoopbackLab
from probe_engine.reports import REPORTERS
from probe_engine.reports.terminal import print_result
from probe_engine.results import MatrixResult
from probe_engine.spec import load_matrix_text

PASSWORD = "hunter2-pw-5150"
TOKEN = "tok-9f8e7d6c5b4a"

MATRIX = """
version: 1
defaults: {timeout: 5s}       # generous: a loaded CI machine must not turn ok into timeout
sources:
  task-python:            # requests' rules: upper-case HTTP_PROXY is honoured
    kind: process
    inherit_env: false
    env: {HTTP_PROXY: "http://alice:PASSWORD@127.0.0.1:${PE_DEMO_PROXY_PORT}"}
  task-python-bypass:     # the proxy is set, with its password, but NO_PROXY matches
    kind: process
    inherit_env: false
    env:
      HTTPS_PROXY: "http://alice:PASSWORD@127.0.0.1:${PE_DEMO_PROXY_PORT}"
      http_proxy: "http://alice:PASSWORD@127.0.0.1:${PE_DEMO_PROXY_PORT}"
      no_proxy: "127.0.0.1"
  shell-curl:             # curl's rules: lower-case http_proxy
    kind: shell
    tool: curl
    inherit_env: false
    env:
      http_proxy: "http://alice:PASSWORD@127.0.0.1:${PE_DEMO_PROXY_PORT}"
      PATH: /usr/local/bin:/usr/bin:/bin
  shell-curl-direct:
    kind: shell
    tool: curl
    inherit_env: false
    env: {PATH: /usr/local/bin:/usr/bin:/bin}
targets:
  api:
    kind: http
    url: "http://127.0.0.1:${PE_DEMO_HTTP_PORT}/health"
    headers: {Authorization: "Bearer TOKEN"}
    expect_status: [200]
  api-broken:
    kind: http
    url: "http://127.0.0.1:${PE_DEMO_HTTP_PORT}/error"
    headers: {Authorization: "Bearer TOKEN", X-Api-Key: "TOKEN"}
  api-userinfo:
    kind: http
    url: "http://bob:PASSWORD@127.0.0.1:${PE_DEMO_HTTP_PORT}/health"
expect:
  - {source: "task-python", target: "*", status: proxy-error}
  - {source: "shell-curl", target: "*", status: proxy-error}
  - {source: "*-bypass", target: "api", status: ok}
  - {source: "*-direct", target: "api", status: ok}
"""


def run(lab: LoopbackLab, text: str) -> MatrixResult:
    loaded = load_matrix_text(text, "secrets.yaml", environ=lab.variables())
    return anyio.run(probe_engine.run_matrix, loaded)


def every_report(result: MatrixResult) -> dict[str, str]:
    reports = {fmt: render(result).decode() for fmt, (render, _ext) in REPORTERS.items()}
    console = Console(record=True, width=200)
    print_result(console, result)
    reports["terminal"] = console.export_text()
    reports["model_dump"] = repr(result.model_dump())
    return reports


@pytest.fixture(scope="module")
def result(loopback: LoopbackLab) -> MatrixResult:
    return run(loopback, MATRIX.replace("PASSWORD", PASSWORD).replace("TOKEN", TOKEN))


def test_the_run_really_used_the_secrets(result: MatrixResult) -> None:
    # Otherwise the test below would pass for the wrong reason.
    cells = result.grid()
    for source in ("task-python", "shell-curl"):
        assert cells[(source, "api")].status == "proxy-error"  # the dead proxy refused
        proxy = cells[(source, "api")].proxy
        assert proxy is not None
        assert proxy.used
        assert proxy.url is not None
        assert re.fullmatch(r"http://alice:\*\*\*@127\.0\.0\.1:\d+", proxy.url)
    bypass = cells[("task-python-bypass", "api")].proxy
    assert bypass is not None
    assert not bypass.used
    assert bypass.no_proxy_match
    # The Authorization header went out on requests that reached the server.
    assert cells[("shell-curl-direct", "api")].status == "ok"
    assert cells[("task-python-bypass", "api-broken")].status == "http-error"
    assert any("alice:***@" in str(s.facts.get("proxy_env")) for s in result.sources)


@pytest.mark.parametrize("fmt", [*REPORTERS, "terminal", "model_dump"], ids=lambda f: f"format={f}")
def test_no_report_leaks_the_proxy_password_or_the_token(result: MatrixResult, fmt: str) -> None:
    text = every_report(result)[fmt]
    assert text  # rendered something
    assert PASSWORD not in text
    assert TOKEN not in text
    # Nor a recognisable piece of them (a truncated or re-encoded secret).
    assert "hunter2" not in text
    assert "9f8e7d" not in text


def test_a_password_holding_an_at_sign_is_not_leaked_either(loopback: LoopbackLab) -> None:
    secret = "p@ss-tail-8d2a"
    text = MATRIX.replace("PASSWORD", secret).replace("TOKEN", TOKEN)
    result = run(loopback, text)
    proxy = result.grid()[("task-python", "api")].proxy
    assert proxy is not None
    assert proxy.used
    for fmt, report in every_report(result).items():
        assert "ss-tail-8d2a" not in report, fmt
