"""Shell tools as a user runs them (curl, bash /dev/tcp, nc; busybox's nc where Python is
absent), their exit codes and words classified into the same statuses as the agent's."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest

from probe_engine.demo.fixtures import LoopbackLab
from probe_engine.model import CellRequest, Column
from probe_engine.results import CellResult
from probe_engine.sources.base import make_result
from probe_engine.sources.child import ChildChannel
from probe_engine.sources.prober import ProberSession, prober_launch

from .conftest import cell, require, run_text

MATRIX = """
defaults: {timeout: 5s}  # room for a loaded machine; the slow fixtures set 1s
sources:
  curl: {kind: shell, tool: curl, inherit_env: false, env: {PATH: "${TOOL_PATH}", HTTP_PROXY: "http://127.0.0.1:${DEAD}"}}
  curl-lower: {kind: shell, tool: curl, inherit_env: false, env: {PATH: "${TOOL_PATH}", http_proxy: "http://127.0.0.1:${DEAD}"}}
  bash: {kind: shell, tool: bash, inherit_env: false, env: {PATH: "${TOOL_PATH}"}}
  nc: {kind: shell, tool: nc, inherit_env: false, env: {PATH: "${TOOL_PATH}"}}
targets:
  api: {kind: http, url: "http://127.0.0.1:${HTTP}/health"}
  api-port: {kind: tcp, host: 127.0.0.1, port: "${HTTP}"}
  broken: {kind: http, url: "http://127.0.0.1:${HTTP}/error"}
  closed: {kind: tcp, host: 127.0.0.1, port: "${CLOSED}"}
  backlog: {kind: tcp, host: 127.0.0.1, port: "${BACKLOG}", timeout: 1s}
  resetting: {kind: http, url: "http://127.0.0.1:${RESET}/"}
  localhost: {kind: dns, name: localhost}
"""


def environ(lab: LoopbackLab, path: str) -> dict[str, str]:
    v = lab.variables()
    return {
        "TOOL_PATH": path,
        "HTTP": v["PE_DEMO_HTTP_PORT"],
        "DEAD": v["PE_DEMO_PROXY_PORT"],
        "CLOSED": v["PE_DEMO_CLOSED_PORT"],
        "BACKLOG": v["PE_DEMO_BACKLOG_PORT"],
        "RESET": v["PE_DEMO_RESET_PORT"],
    }


@pytest.fixture(scope="module")
def result(loopback: LoopbackLab):  # type: ignore[no-untyped-def]
    for tool in ("curl", "bash", "nc"):
        require(shutil.which(tool) is not None, f"{tool} is not installed")
    return run_text(MATRIX, environ(loopback, "/usr/local/bin:/usr/bin:/bin"))


@pytest.mark.parametrize(
    ("source", "target", "status", "errno_name"),
    [
        ("curl", "api", "ok", None),
        ("curl", "api-port", "ok", None),
        ("curl", "broken", "http-error", None),
        ("curl", "closed", "refused", "ECONNREFUSED"),
        ("curl", "backlog", "timeout", None),
        ("curl", "resetting", "reset", "ECONNRESET"),
        ("curl-lower", "api", "proxy-error", "ECONNREFUSED"),
        ("bash", "api", "ok", None),
        ("bash", "closed", "refused", "ECONNREFUSED"),
        ("bash", "backlog", "timeout", None),
        ("nc", "api-port", "ok", None),
        ("nc", "api", "ok", None),
        ("nc", "closed", "refused", "ECONNREFUSED"),
        ("nc", "backlog", "timeout", None),
        ("curl", "localhost", "ok", None),
    ],
)
def test_tool_outcomes(
    result, source: str, target: str, status: str, errno_name: str | None
) -> None:  # type: ignore[no-untyped-def]
    found = cell(result, source, target)
    assert found.status == status, found.model_dump_json(indent=1)
    failed = next((c for c in found.checks if c.status != "ok"), None)
    assert (failed.errno_name if failed else None) == errno_name


def test_curl_ignores_upper_case_http_proxy_and_the_record_says_why(result) -> None:  # type: ignore[no-untyped-def]
    proxy = cell(result, "curl", "api").proxy
    assert proxy is not None
    assert (proxy.client, proxy.used, proxy.ignored) == ("curl", False, ["HTTP_PROXY"])


def test_curl_reports_the_proxy_it_used_with_lower_case_http_proxy(result) -> None:  # type: ignore[no-untyped-def]
    proxy = cell(result, "curl-lower", "api").proxy
    assert proxy is not None
    assert (proxy.used, proxy.variable) == (True, "http_proxy")


def test_each_cell_names_the_tool_that_ran(result) -> None:  # type: ignore[no-untyped-def]
    assert cell(result, "nc", "closed").tool == "nc"
    assert cell(result, "curl", "localhost").tool in ("getent", "nslookup")


def test_a_missing_tool_is_a_source_error_row(loopback: LoopbackLab, tmp_path: Path) -> None:
    result = run_text(MATRIX, environ(loopback, str(tmp_path)))
    found = cell(result, "curl", "api")
    assert found.status == "source-error"
    assert found.message == "curl is not installed here (not found on PATH)"


def test_busybox_nc_without_python_is_classified_too(loopback: LoopbackLab, tmp_path: Path) -> None:
    busybox = shutil.which("busybox")
    require(busybox is not None, "busybox is not installed (Debian: busybox-static)")
    assert busybox is not None
    for applet in (
        "sh",
        "nc",
        "sed",
        "grep",
        "tr",
        "cut",
        "head",
        "tail",
        "awk",
        "date",
        "timeout",
        "uniq",
        "sleep",
        "cat",
    ):
        os.symlink(busybox, tmp_path / applet)
    text = MATRIX.replace("kind: shell, tool: nc,", "kind: shell, tool: nc,")
    result = run_text(text, environ(loopback, str(tmp_path)))
    assert cell(result, "nc", "closed").checks[0].errno_name == "ECONNREFUSED"
    assert (
        cell(result, "nc", "closed")
        .checks[0]
        .message.startswith("nc: can't connect to remote host")
    )  # type: ignore[union-attr]
    assert cell(result, "nc", "api").status == "ok"
    assert cell(result, "nc", "api").checks[-1].http_status == 200


def _probe_with(tool: str, plan: dict[str, object]) -> CellResult:
    """Run the real shell prober with one cell whose plan the tool cannot accept (the matrix
    validation would refuse most such plans, so the cell is built here directly)."""
    require(shutil.which(tool) is not None, f"{tool} is not installed")
    column = Column("odd", "odd", str(plan["kind"]), "odd", plan)
    batch = [CellRequest(1, "tool", column, 2.0)]
    results: list[CellResult] = []
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin"}

    def report(request: CellRequest, data: Mapping[str, Any]) -> None:
        results.append(make_result("tool", "tool", request, data))

    async def main() -> bool:
        session = ProberSession(batch, report, env, lambda facts: None)
        command, payload = prober_launch(tool, 1, batch)
        async with ChildChannel(command, env) as channel:
            await channel.send(payload)
            await channel.receive(session.feed)
        return session.complete

    assert anyio.run(main)
    (result,) = results
    return result


def test_curl_refusing_a_malformed_url_is_a_source_error_in_its_own_words(
    loopback: LoopbackLab,
) -> None:
    port = loopback.variables()["PE_DEMO_HTTP_PORT"]
    found = _probe_with("curl", {"kind": "http", "url": f"http://127.0.0.1:{port}/a b"})
    assert found.status == "source-error", found.model_dump_json(indent=1)
    assert found.checks == []  # nothing was sent: no phase ran
    assert found.message is not None
    assert found.message.startswith("curl refused the probe (exit status 3): curl: (3) URL")


def test_wget_refusing_its_command_line_is_a_source_error(loopback: LoopbackLab) -> None:
    port = loopback.variables()["PE_DEMO_HTTP_PORT"]
    # A header without a colon: wget stops at its command line (exit 2), sends nothing.
    plan = {
        "kind": "http",
        "url": f"http://127.0.0.1:{port}/health",
        "headers": {"X-Ok": "1\x1fno-colon-here"},
    }
    found = _probe_with("wget", plan)
    assert found.status == "source-error", found.model_dump_json(indent=1)
    assert found.message is not None
    assert found.message.startswith("wget refused the probe (exit status 2): wget: --header")
