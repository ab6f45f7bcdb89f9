"""Every source answers as its own client: requests, httpx and urllib decide (and send) for
themselves where they are importable, curl says what curl did, and a place without the library
says its rules are emulated.

The story of issue 11: http_proxy names a dead proxy and NO_PROXY=.0.0.1. requests, urllib and
httpx match the suffix on the host string and go direct; curl matches addresses only as
addresses (CIDR), so it goes through the dead proxy; and the NO_PROXY entry is never reported
as curl's proxy.
"""

from __future__ import annotations

import shutil
import sys

import httpx
import pytest
import requests

from probe_engine.demo.fixtures import LoopbackLab

from .conftest import cell, require, run_text

MATRIX = """
defaults: {timeout: 5s}
sources:
  requests: {kind: process, inherit_env: false, http_client: requests, env: &env {http_proxy: "${DEAD}", NO_PROXY: ".0.0.1"}}
  httpx:    {kind: process, inherit_env: false, http_client: httpx, env: *env}
  urllib:   {kind: process, inherit_env: false, http_client: urllib, env: *env}
  curl:     {kind: shell, tool: curl, inherit_env: false, env: {PATH: /usr/bin:/bin, http_proxy: "${DEAD}", NO_PROXY: ".0.0.1"}}
  httpx-v6: {kind: process, inherit_env: false, http_client: httpx, env: {http_proxy: "${DEAD}", NO_PROXY: "[::1]"}}
  requests-v6: {kind: process, inherit_env: false, http_client: requests, env: {http_proxy: "${DEAD}", NO_PROXY: "[::1]"}}
targets:
  api: {kind: http, url: "http://127.0.0.1:${HTTP}/health", expect_status: [200]}
"""


@pytest.fixture(scope="module")
def result(loopback: LoopbackLab):  # type: ignore[no-untyped-def]
    require(shutil.which("curl") is not None, "curl is not installed")
    dead = f"http://127.0.0.1:{loopback.dead_proxy_port}"
    return run_text(MATRIX, {"DEAD": dead, "HTTP": str(loopback.http_port)})


@pytest.mark.parametrize(
    ("source", "library"),
    [("requests", f"requests {requests.__version__}"), ("httpx", f"httpx {httpx.__version__}")],
)
def test_a_python_client_decides_and_sends_for_itself(result, source: str, library: str) -> None:  # type: ignore[no-untyped-def]
    found = cell(result, source, "api")
    assert found.status == "ok", found.model_dump_json(indent=1)
    assert found.proxy is not None
    assert (found.proxy.used, found.proxy.rules) == (False, library)
    assert found.proxy.no_proxy_match == ".0.0.1"
    assert found.checks[-1].client == library  # the request went out through that library


def test_urllib_decides_and_sends_for_itself(result) -> None:  # type: ignore[no-untyped-def]
    found = cell(result, "urllib", "api")
    assert found.status == "ok", found.model_dump_json(indent=1)
    assert found.proxy is not None and found.proxy.used is False
    version = ".".join(str(v) for v in sys.version_info[:3])
    assert found.proxy.rules == f"urllib Python {version}"
    assert found.checks[-1].client == f"urllib Python {version}"


def test_curl_goes_through_the_dead_proxy_and_says_which(result, loopback: LoopbackLab) -> None:  # type: ignore[no-untyped-def]
    found = cell(result, "curl", "api")
    assert found.status == "proxy-error", found.model_dump_json(indent=1)
    assert found.proxy is not None
    assert found.proxy.used is True
    assert (found.proxy.variable, found.proxy.url) == (
        "http_proxy",
        f"http://127.0.0.1:{loopback.dead_proxy_port}",
    )
    assert found.proxy.rules is not None and found.proxy.rules.startswith("curl 7.")


def test_httpx_refuses_an_environment_it_cannot_parse_as_the_users_code_does(result) -> None:  # type: ignore[no-untyped-def]
    found = cell(result, "httpx-v6", "api")
    assert found.status == "source-error"
    assert found.proxy is not None and found.proxy.error is not None
    assert found.proxy.error.startswith("InvalidURL: Invalid port")
    # requests reads the same entry without complaint, and goes direct for 127.0.0.1? No: the
    # entry is not 127.0.0.1, so requests goes through the dead proxy.
    other = cell(result, "requests-v6", "api")
    assert other.status == "proxy-error"


def test_curl_reading_no_proxy_is_not_curl_using_a_proxy(loopback: LoopbackLab) -> None:
    require(shutil.which("curl") is not None, "curl is not installed")
    text = """
sources:
  curl: {kind: shell, tool: curl, inherit_env: false, env: {PATH: /usr/bin:/bin, http_proxy: "${DEAD}", no_proxy: "127.0.0.1"}}
targets:
  api: {kind: http, url: "http://127.0.0.1:${HTTP}/health"}
"""
    dead = f"http://127.0.0.1:{loopback.dead_proxy_port}"
    found = cell(run_text(text, {"DEAD": dead, "HTTP": str(loopback.http_port)}), "curl", "api")
    assert found.status == "ok"
    assert found.proxy is not None
    assert (found.proxy.used, found.proxy.url, found.proxy.no_proxy_variable) == (
        False,
        None,
        "no_proxy",
    )


def test_a_place_without_the_library_says_its_rules_are_emulated(loopback: LoopbackLab) -> None:
    python = "/root/.pyenv/versions/3.8.18/bin/python3.8"
    require(shutil.which(python) is not None, "no Python 3.8 from pyenv on this machine")
    text = """
sources:
  old: {kind: process, python: "${PY}", inherit_env: false, http_client: requests, env: {http_proxy: "${DEAD}", NO_PROXY: ".0.0.1"}}
targets:
  api: {kind: http, url: "http://127.0.0.1:${HTTP}/health"}
"""
    dead = f"http://127.0.0.1:{loopback.dead_proxy_port}"
    found = cell(
        run_text(text, {"PY": python, "DEAD": dead, "HTTP": str(loopback.http_port)}), "old", "api"
    )
    assert found.status == "ok", found.model_dump_json(indent=1)
    assert found.proxy is not None
    assert (found.proxy.rules, found.proxy.no_proxy_match) == (
        "requests rules (emulated)",
        ".0.0.1",
    )
    assert found.checks[-1].client == "http.client (requests rules (emulated))"
