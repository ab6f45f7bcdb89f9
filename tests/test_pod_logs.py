"""The server's side (`evidence: {pod_logs: true}`): after the run, the Service's backend pods'
logs are read and each http cell gets the lines carrying its User-Agent marker, or "no request
seen". End to end on tests/kubelab: the pod is created through the API and its kubelet runs
tests/lab/podserver.py as a real process on 127.0.0.2, whose stdout (the access log, with the
User-Agent) is the pod's log; the probes are real HTTP requests from a local source."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from kubernetes_asyncio import client, config

from probe_engine.reports.html_report import render_html
from probe_engine.reports.markdown_report import render_markdown
from probe_engine.targets.server_logs import PodLogs, server_log
from tests.conftest import cell, run_text
from tests.kubelab import apiserver as kl
from tests.kubelab.apiserver.kubelet import NodeRuntime

pytestmark = pytest.mark.kubernetes

REPO = Path(__file__).resolve().parents[1]
POD_IP = "127.0.0.2"


def free_port(host: str) -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_listening(host: str, port: int) -> None:
    """Until the pod's server accepts (bounded: 200 tries, 10 s)."""
    for _ in range(200):
        with contextlib.closing(socket.socket()) as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {host}:{port}")


def podserver_pod(port: int) -> dict[str, Any]:
    """Pod api-0 (app=api) running tests/lab/podserver.py on POD_IP:port: its access log, with
    each request's User-Agent, is the pod's log."""
    command = [sys.executable, "-I", str(REPO / "tests/lab/podserver.py")]
    command += ["--host", POD_IP, "--port", str(port), "--pod-name", "api-0"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "api-0", "labels": {"app": "api"}},
        "spec": {"containers": [{"name": "api", "image": "python:3.12-slim", "command": command}]},
    }


async def create_running_pod(kubeconfig: Path, body: dict[str, Any]) -> None:
    configuration = client.Configuration()
    await config.load_kube_config(str(kubeconfig), client_configuration=configuration)
    async with client.ApiClient(configuration) as api:
        core = client.CoreV1Api(api)
        await core.create_namespaced_pod("default", body)
        for _ in range(200):  # bounded: 20 s
            pod = await core.read_namespaced_pod(body["metadata"]["name"], "default")
            if pod.status.phase == "Running":
                return
            await anyio.sleep(0.1)
    raise AssertionError(f"pod never ran: {pod.status}")


def test_a_cell_that_reached_the_pod_shows_its_log_line_and_one_that_did_not_says_so(
    kube_apiserver: kl.ApiServer, tmp_path: Path
) -> None:
    server, store = kube_apiserver, kube_apiserver.store
    store.put(kl.node("node-a", POD_IP))
    server.kubelet.add_node("node-a", NodeRuntime(node_ip=POD_IP))  # pods run on this machine
    port, closed = free_port(POD_IP), free_port(POD_IP)
    store.put(
        kl.service(
            "api",
            selector={"app": "api"},
            ports=[
                {"name": "http", "port": 80, "targetPort": port},
                {"name": "wrong", "port": 81, "targetPort": closed},  # nothing listens there
            ],
        )
    )
    pod = podserver_pod(port)
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    try:
        anyio.run(create_running_pod, kubeconfig, pod)
        wait_listening(POD_IP, port)
        store.sync_endpoints("api")
        target = "{kind: kubernetes-service, service: api, via: [endpoints], path: /health"
        result = run_text(
            f"kubernetes: {{kubeconfig: '{kubeconfig}', timeout: 3s}}\n"
            "defaults: {timeout: 2s}\n"
            "sources:\n  here: {kind: local}\n"
            "targets:\n"
            f"  up: {target}, port: http, evidence: {{pod_logs: true}}}}\n"
            f"  wrong: {target}, port: wrong, evidence: {{pod_logs: true}}}}\n"
            f"  plain: {target}, port: http}}\n"
        )
    finally:
        server.settle()

    facts = {t.name: t.facts for t in result.targets}
    assert facts["up/endpoints"]["backend_pods"] == ["api-0"]
    marker = f"run={result.run_id} cell="
    up, wrong = cell(result, "here", "up/endpoints"), cell(result, "here", "wrong/endpoints")
    assert up.status == "ok" and wrong.status == "refused"

    assert up.server_log is not None
    assert up.server_log.pods == ["api-0"] and up.server_log.matched == 1
    [seen] = up.server_log.lines
    assert seen["pod"] == "api-0"
    # The kubelet's timestamp, then podserver's access line with this cell's User-Agent.
    stamp, access = seen["line"].split(" ", 1)
    assert stamp.endswith("Z")
    assert re.match(r'127\.0\.0\.1:\d+ - "GET /health HTTP/1\.1" 200 "', access)  # who came
    assert access.endswith(f'{marker}0"')
    assert up.server_log.summary == f"the request reached pod api-0 (its log: {seen['line']})"

    assert wrong.server_log is not None
    assert wrong.server_log.marker == f"{marker}1" and wrong.server_log.lines == []
    assert wrong.server_log.summary == "no request seen in the logs of pod api-0"
    # Without evidence.pod_logs, nothing is read; the request still reached the pod.
    assert cell(result, "here", "plain/endpoints").server_log is None

    markdown = render_markdown(result).decode()
    assert "## The server's side" in markdown
    assert "no request seen in the logs of pod api-0" in markdown
    html = render_html(result).decode()
    details = html.split('id="cells-data">', 1)[1].split("</script>", 1)[0]
    assert json.loads(details)["here\u0000wrong/endpoints"]["server_log"]["summary"] == (
        "no request seen in the logs of pod api-0"
    )
    as_json = json.loads(result.model_dump_json())
    assert as_json["cells"][0]["server_log"]["marker"] == f"{marker}0"


def test_a_marker_matches_its_own_cell_only_and_the_lines_are_bounded_and_redacted() -> None:
    lines = [f'x "probe-engine/0.1 run=ab cell=12" try {i}' for i in range(5)]
    lines += ['GET /?token=s3cret "probe-engine/0.1 run=ab cell=1"']
    logs = PodLogs(lines={("ns", "p"): lines}, errors={("ns", "q"): "403 Forbidden"})
    one = server_log("run=ab cell=1", "ns", ["p", "q"], logs)
    assert one.matched == 1
    assert one.lines == [{"pod": "p", "line": 'GET /?token=*** "probe-engine/0.1 run=ab cell=1"'}]
    assert one.errors == {"q": "403 Forbidden"}
    twelve = server_log("run=ab cell=12", "ns", ["p", "q"], logs)
    assert twelve.matched == 5 and len(twelve.lines) == 3  # all counted, three kept
    unread = server_log("run=ab cell=7", "ns", ["p", "q"], logs)
    assert unread.summary == "no request seen in the logs of pod p (pod q could not be read)"
