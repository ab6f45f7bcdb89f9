"""The server's side of an http target served by Docker (`evidence: {container_logs: [...]}`):
after the run the named containers' logs are read through the real Docker engine of
tests/dockerlab and each cell gets the lines carrying its User-Agent marker, or "no request
seen". pe-api's access log prints each request's User-Agent (as nginx's combined format does);
the probes run inside the lab's containers, so nothing leaves the engine's namespace."""

from __future__ import annotations

import json
import re

import pytest

from probe_engine import MatrixResult
from probe_engine.reports.html_report import render_html
from probe_engine.reports.markdown_report import render_markdown
from tests.conftest import cell, run_text
from tests.dockerlab import Lab

pytestmark = pytest.mark.docker

MATRIX = """
version: 1
defaults: {timeout: 2s}
sources:
  scheduler: {kind: docker, container: pe-scheduler, host: "${DOCKER_URL}"}
  worker:    {kind: docker, container: pe-worker, host: "${DOCKER_URL}"}
targets:
  health:
    kind: http
    url: "http://${API}:8000/health"
    evidence: {container_logs: [pe-api], docker_host: "${DOCKER_URL}"}
  unknown:
    kind: http
    url: "http://${API}:8000/health"
    evidence: {container_logs: [pe-no-such-container], docker_host: "${DOCKER_URL}"}
  plain: {kind: http, url: "http://${API}:8000/health"}
"""


@pytest.fixture(scope="module")
def result(docker_lab: Lab) -> MatrixResult:
    return run_text(MATRIX, {"DOCKER_URL": docker_lab.url, "API": docker_lab.api_ip})


def test_the_request_that_arrived_shows_its_access_line(result: MatrixResult) -> None:
    reached = cell(result, "scheduler", "health")
    assert reached.status == "ok"
    log = reached.server_log
    assert log is not None and log.containers == ["pe-api"] and log.pods == []
    assert log.matched == 1 and log.marker == f"run={result.run_id} cell=0"
    [seen] = log.lines
    assert seen["container"] == "pe-api"
    stamp, access = seen["line"].split(" ", 1)  # Docker's timestamp, then pe-api's line
    assert stamp.endswith("Z")
    assert re.match(r'10\.202\.0\.11 - "GET /health HTTP/1\.1" 200 "probe-engine/', access)
    assert access.endswith(f'{log.marker}"')
    assert log.summary == f"the request reached container pe-api (its log: {seen['line']})"


def test_a_request_that_never_arrived_is_not_in_the_log(result: MatrixResult) -> None:
    lost = cell(result, "worker", "health")  # pe-default: its gateway drops everything
    assert lost.status == "timeout"
    assert lost.server_log is not None and lost.server_log.matched == 0
    assert lost.server_log.summary == "no request seen in the logs of container pe-api"


def test_a_container_that_cannot_be_read_is_named_with_the_daemons_reason(
    result: MatrixResult,
) -> None:
    unread = cell(result, "scheduler", "unknown").server_log
    assert unread is not None and unread.matched == 0
    assert unread.summary == "the logs of container pe-no-such-container could not be read"
    assert unread.errors is not None
    reason = unread.errors["pe-no-such-container"]
    assert "answered 404" in reason and "pe-no-such-container" in reason, reason
    assert cell(result, "scheduler", "plain").server_log is None


def test_the_reports_show_it(result: MatrixResult) -> None:
    markdown = render_markdown(result).decode()
    assert "## The server's side" in markdown
    assert "no request seen in the logs of container pe-api" in markdown
    html = render_html(result).decode()
    details = html.split('id="cells-data">', 1)[1].split("</script>", 1)[0]
    shown = json.loads(details)["scheduler\u0000health"]["server_log"]
    assert shown["containers"] == ["pe-api"] and shown["lines"][0]["container"] == "pe-api"
