"""Findings name a client and a failure once, in plain words, on real runs.

- A client the agent emulates (the library is absent where it runs: here a Python started
  with -I -S, which sees no site-packages) is "requests' proxy rules, emulated", and
  http.client sending for it is "http.client, with requests' proxy rules emulated": never
  the agent's raw labels nested ("http.client (requests rules (emulated))") nor "requests
  proxy rules".
- source-differs gives each way of failing its own meaning: a refused port and an HTTP
  timeout are two sentences, not the first cell's meaning stretched over both.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from probe_engine.demo.fixtures import LoopbackLab
from probe_engine.diagnose.differences import compare
from probe_engine.diagnose.phrasing import client_words, rules_words
from probe_engine.results import Finding, MatrixResult

from .conftest import cell, run_text


def _bare_python(folder: Path) -> str:
    """An interpreter without site-packages: requests and httpx are absent there."""
    path = folder / "python-bare"
    path.write_text(f'#!/bin/sh\nexec {sys.executable} -I -S "$@"\n')
    path.chmod(0o755)
    return str(path)


def _only(result: MatrixResult, rule: str) -> Finding:
    [found] = [f for f in result.findings if f.rule == rule]
    return found


def test_an_emulated_client_is_named_once_in_plain_words(
    loopback: LoopbackLab, tmp_path: Path
) -> None:
    bare = _bare_python(tmp_path)
    web = f"http://127.0.0.1:{loopback.http_port}"
    result = run_text(
        yaml.safe_dump(
            {
                "version": 1,
                "defaults": {"timeout": "5s"},
                "sources": {
                    "here": {"kind": "process", "inherit_env": False},
                    "bare": {"kind": "process", "python": bare, "inherit_env": False},
                    "bare-proxied": {
                        "kind": "process",
                        "python": bare,
                        "inherit_env": False,
                        "env": {"HTTP_PROXY": f"http://127.0.0.1:{loopback.dead_proxy_port}"},
                    },
                },
                "targets": {
                    "api": {"kind": "http", "url": f"{web}/health"},
                    "api-ready": {"kind": "http", "url": f"{web}/health/ready"},
                },
            }
        )
    )
    sent = cell(result, "bare", "api")
    assert sent.status == "ok"
    assert [c.client for c in sent.checks if c.name == "http"] == [
        "http.client (requests rules (emulated))"  # the agent's label, kept in report.json
    ]
    # The row stopped at its dead proxy: who decided to use it, as the detail says it.
    down = _only(result, "source-down")
    assert down.title.startswith("Everything from bare-proxied fails (2 cells)")
    assert "bare-proxied probes with the Python agent (requests' proxy rules, emulated)" in (
        down.detail
    )
    assert "rules (emulated)" not in down.detail
    assert "requests proxy rules" not in down.detail
    # The request sent by http.client for the absent library, beside requests itself.
    pairs = [(sent, cell(result, "here", "api"))]
    [tools] = [d for d in compare(None, None, pairs, "bare", "here") if "tools" in d.facts]
    assert tools.text.startswith(
        "bare probes with the Python agent (http.client, with requests' proxy rules "
        "emulated), here with the Python agent (requests "
    )
    assert "((" not in tools.text and "))" not in tools.text


def test_clients_are_worded_with_one_level_of_brackets() -> None:
    assert client_words("http.client (requests rules (emulated))") == (
        "http.client, with requests' proxy rules emulated"
    )
    assert client_words("http.client (httpx rules (emulated))") == (
        "http.client, with httpx's proxy rules emulated"
    )
    assert client_words("requests 2.34.2") == "requests 2.34.2"
    assert rules_words("urllib rules (emulated)") == "urllib's proxy rules, emulated"
    assert rules_words("httpx 0.28.1") == "httpx 0.28.1"


def test_source_differs_gives_each_way_of_failing_its_own_meaning(
    loopback: LoopbackLab,
) -> None:
    """`relay` goes through a proxy (the lab's web server, answering 404 for any other URL)
    and reaches what `here` finds closed (refused) and silent (an HTTP timeout)."""
    proxy = {"HTTP_PROXY": f"http://127.0.0.1:{loopback.http_port}"}
    any_answer = [200, 404]
    result = run_text(
        yaml.safe_dump(
            {
                "version": 1,
                "defaults": {"timeout": "5s"},
                "sources": {
                    "here": {"kind": "local"},
                    "relay": {"kind": "process", "inherit_env": False, "env": proxy},
                },
                "targets": {
                    "web": {
                        "kind": "http",
                        "url": f"http://127.0.0.1:{loopback.http_port}/health",
                        "expect_status": any_answer,
                    },
                    "closed": {
                        "kind": "http",
                        "url": f"http://127.0.0.1:{loopback.closed_port}/",
                        "expect_status": any_answer,
                    },
                    "silent": {
                        "kind": "http",
                        "url": f"http://127.0.0.1:{loopback.hanging.port}/",
                        "expect_status": any_answer,
                        "timeout": "1s",
                    },
                },
            }
        )
    )
    assert [cell(result, "here", t).status for t in ("web", "closed", "silent")] == [
        "ok",
        "refused",
        "timeout",
    ]
    assert all(cell(result, "relay", t).status == "ok" for t in ("web", "closed", "silent"))
    found = _only(result, "source-differs")
    assert found.title == "here fails where relay succeeds: closed and silent"
    closed, silent = f"127.0.0.1:{loopback.closed_port}", f"127.0.0.1:{loopback.hanging.port}"
    assert found.detail.startswith(
        f"From here: closed: refused (ECONNREFUSED) ({closed} answered ECONNREFUSED: the host "
        "is reachable but nothing listens on that port (or a firewall rejects with "
        f"tcp-reset)); silent: timeout (the TCP connection to {silent} opened but no HTTP "
        "answer came in time: the server accepts and hangs). From relay the same targets work."
    ), found.detail
