"""What `probe-engine run` imports: a run pays for what its matrix and options use. A one-cell
run is mostly imports (bench/README.md, "Scans through the command line"), so a module that
creeps back onto the path of every run shows up here, by name, not as a slower benchmark."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from probe_engine.demo.fixtures import LoopbackLab

# Prints the run's exit status, every module loaded by then, and whether the cyclic collector
# (paused while the run loads and runs) is back on, as the last line of stdout.
RUN_AND_LIST_MODULES = """
import gc, json, sys
from probe_engine.cli import main
try:
    main(sys.argv[1:])
except SystemExit as done:
    code = done.code
print(json.dumps({"code": code, "modules": sorted(sys.modules), "gc": gc.isenabled()}))
"""

# Nothing of these serves a local source probing tcp ports into report.json.
NOT_FOR_A_LOCAL_TCP_RUN = (
    # other commands
    "probe_engine.cli.cleanup",
    "probe_engine.cli.completion",
    "probe_engine.cli.demo",
    "probe_engine.cli.render",
    "probe_engine.cli.serve",
    "probe_engine.cli.validate",
    "probe_engine.cli.wait",
    "probe_engine.cleanup",
    "probe_engine.serve",
    "probe_engine.demo",
    "probe_engine.integrations",
    # other source and target kinds
    "probe_engine.targets.kubernetes",
    "probe_engine.targets.server_logs",
    "probe_engine.targets.docker_logs",
    "probe_engine.sources.docker",
    "probe_engine.sources.kubernetes",
    "probe_engine.sources.netns",
    "probe_engine.sources.process",
    "probe_engine.sources.shell",
    "probe_engine.docker_context",
    "kubernetes_asyncio",
    "aiodocker",
    "aiohttp",
    # other report formats, and the terminal's table
    "probe_engine.reports.html_report",
    "probe_engine.reports.junit_report",
    "probe_engine.reports.markdown_report",
    "probe_engine.reports.prometheus_report",
    "probe_engine.reports.terminal",
    "jinja2",
    "rich",
    "prometheus_client",
    # other checks' clients
    "probe_engine.agent.http",
    "probe_engine.agent.clients",
    "requests",
    "httpx",
    "dns",
)


def _loaded(modules: list[str], prefix: str) -> list[str]:
    return [m for m in modules if m == prefix or m.startswith(prefix + ".")]


def test_a_local_tcp_run_imports_only_what_it_uses(tmp_path: Path, loopback: LoopbackLab) -> None:
    matrix = tmp_path / "one.yaml"
    matrix.write_text(
        "sources: {here: {kind: local}}\n"
        f"targets: {{db: {{kind: tcp, host: 127.0.0.1, port: {loopback.closed_port}}}}}\n"
    )
    out = tmp_path / "out"
    argv = ["run", str(matrix), "--format", "json", "--out", str(out), "--output", "none"]
    run = subprocess.run(
        [sys.executable, "-c", RUN_AND_LIST_MODULES, *argv, "--no-progress"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    listed = json.loads(run.stdout.splitlines()[-1])
    assert listed["code"] == 0  # no expectation declared: the run itself went through
    assert listed["gc"] is True
    report = json.loads((out / "report.json").read_text())
    assert [c["status"] for c in report["cells"]] == ["refused"]
    modules: list[str] = listed["modules"]
    # What it did use, so that the list below cannot pass by the run not happening.
    for used in ("probe_engine.cli.run", "probe_engine.sources.local", "probe_engine.engine"):
        assert used in modules
    assert "probe_engine.reports.json_report" in modules
    unwanted = {p: _loaded(modules, p) for p in NOT_FOR_A_LOCAL_TCP_RUN}
    assert {p: found for p, found in unwanted.items() if found} == {}
