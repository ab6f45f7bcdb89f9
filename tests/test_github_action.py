"""The GitHub Action (action.yml) run step by step, as the runner would, short of the runner.

What runs is the action's own text: each `run:` step through `bash --noprofile --norc -eo
pipefail` (the runner's `shell: bash`), its `env:` and `if:` evaluated from the inputs and
the earlier steps' outputs, with the runner's files (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY,
GITHUB_PATH) in a temporary folder and GITHUB_PATH's entries put first on PATH for later steps.
`uses:` steps (setup-python, upload-artifact) are not run: their `if:` and `with:` are
evaluated and checked. The install step really installs this checkout into a fresh venv from
the package index, once for the module. The expressions the action may use are the few this
evaluator knows; anything else fails the test, so the action cannot outgrow it unnoticed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from probe_engine.demo.fixtures import LoopbackLab

ROOT = Path(__file__).resolve().parents[1]
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
STEP_TIMEOUT = 600  # the install step: a fresh venv and the package's dependencies


@dataclass
class Runner:
    """The runner's side of one job: files, PATH additions, step outputs."""

    workspace: Path
    temp: Path
    inputs: dict[str, str]
    path: list[str] = field(default_factory=list)
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    summary: Path = field(init=False)
    log: list[tuple[str, int, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.summary = self.temp / "step_summary.md"
        self.summary.touch()

    def value(self, expression: str) -> str:
        parts = expression.split(".")
        if parts[0] == "inputs" and len(parts) == 2:
            return self.inputs[parts[1]]
        if parts[0] == "steps" and len(parts) == 4 and parts[2] == "outputs":
            return self.outputs.get(parts[1], {}).get(parts[3], "")
        raise AssertionError(f"the test's evaluator does not know ${{{{ {expression} }}}}")

    def substitute(self, text: str) -> str:
        return EXPRESSION.sub(lambda m: self.value(m.group(1)), text)

    def condition(self, expression: str | None) -> bool:
        """`if:` as the action writes them: terms joined by &&, each always() or X op 'y'."""
        if expression is None:
            return True
        result = True
        for term in (t.strip() for t in expression.split("&&")):
            if term == "always()":
                continue
            found = re.fullmatch(r"([\w.-]+) (==|!=) '([^']*)'", term)
            assert found, f"the test's evaluator does not know the condition {term!r}"
            left = self.value(found.group(1))
            result &= (left == found.group(3)) == (found.group(2) == "==")
        return result

    def environment(self, extra: Mapping[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "PE_"))}
        env |= {
            "GITHUB_ACTION_PATH": str(ROOT),
            "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_OUTPUT": str(self.temp / "output"),
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "GITHUB_PATH": str(self.temp / "path"),
            "RUNNER_TEMP": str(self.temp),
            "PATH": os.pathsep.join([*reversed(self.path), os.environ["PATH"]]),
        }
        return env | dict(extra)

    def run_step(self, step: Mapping[str, Any]) -> int:
        env = {k: self.substitute(str(v)) for k, v in (step.get("env") or {}).items()}
        script = self.temp / "step.sh"
        script.write_text(self.substitute(step["run"]))
        for name in ("output", "path"):
            (self.temp / name).write_text("")
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=self.workspace,
            env=self.environment(env),
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT,
            check=False,
        )
        self.log.append((step["name"], done.returncode, done.stdout + done.stderr))
        if "id" in step:
            self.outputs[step["id"]] = dict(
                line.split("=", 1) for line in (self.temp / "output").read_text().splitlines()
            )
        self.path += [p for p in (self.temp / "path").read_text().splitlines() if p]
        return done.returncode

    def run(self, names: set[str] | None = None) -> dict[str, Any]:
        """Run the action's steps (or those named); the `with:` of each `uses:` step that
        would run, by its action's name."""
        used: dict[str, Any] = {}
        failed = False
        for step in ACTION["runs"]["steps"]:
            if names is not None and step["name"] not in names:
                continue
            condition = step.get("if")
            if failed and "always()" not in (condition or ""):
                continue
            if not self.condition(condition):
                continue
            if "uses" in step:
                name = step["uses"].split("@")[0]
                used[name] = {k: self.substitute(str(v)) for k, v in step["with"].items()}
                continue
            failed |= self.run_step(step) != 0
        return used


def inputs(**given: str) -> dict[str, str]:
    values = {name: str(spec.get("default", "")) for name, spec in ACTION["inputs"].items()}
    for name, value in given.items():
        key = name.replace("_", "-")
        assert key in values, f"action.yml has no input {key}"
        values[key] = value
    return values


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The install step, run once: this checkout in a venv of its own; its GITHUB_PATH."""
    temp = tmp_path_factory.mktemp("runner-temp")
    runner = Runner(tmp_path_factory.mktemp("workspace"), temp, inputs(matrix="m.yaml"))
    runner.run({"Install probe-engine"})
    _name, status, log = runner.log[0]
    assert status == 0, log[-4000:]
    assert runner.path == [str(temp / "probe-engine-venv" / "bin")]
    assert re.search(r"probe-engine, version \S+", log), log[-2000:]
    return runner.path


def job(tmp_path: Path, installed: list[str], **given: str) -> tuple[Runner, dict[str, Any]]:
    (tmp_path / "temp").mkdir()
    runner = Runner(tmp_path, tmp_path / "temp", inputs(**given), path=list(installed))
    steps = {s["name"] for s in ACTION["runs"]["steps"]} - {"Install probe-engine"}
    return runner, runner.run(steps)


def write_matrix(folder: Path, lab: LoopbackLab, expect_on_closed: str) -> None:
    (folder / "matrix.yaml").write_text(
        f"""
sources: {{ci: {{kind: local}}}}
targets:
  api: {{kind: http, url: "http://127.0.0.1:{lab.http_port}/health"}}
  db: {{kind: tcp, host: 127.0.0.1, port: {lab.closed_port}}}
expect:
  - {{target: api, status: ok}}
  - {{target: db, status: {expect_on_closed}}}
"""
    )


def test_unmet_expectations_fail_the_job_after_the_summary_and_the_upload(
    tmp_path: Path, installed: list[str], loopback: LoopbackLab
) -> None:
    write_matrix(tmp_path, loopback, "ok")
    runner, used = job(tmp_path, installed, matrix="matrix.yaml", format="json,junit")
    statuses = {name: status for name, status, _ in runner.log}
    # The run step never fails (so the upload runs); the verdict does, with probe-engine's 1.
    assert statuses == {"Run the matrix": 0, "Verdict": 1}
    assert runner.outputs["run"] == {"exit-status": "1", "report-dir": "probe-engine-report"}
    assert "actions/setup-python" not in used  # no python-version given
    upload = used["actions/upload-artifact"]
    assert upload["name"] == "probe-engine-report"
    folder = tmp_path / upload["path"]
    # markdown is added to the formats asked for: the summary needs it.
    assert sorted(p.name for p in folder.iterdir()) == ["report.json", "report.md", "report.xml"]
    summary = runner.summary.read_text()
    assert summary == (folder / "report.md").read_text()
    assert summary.startswith("# probe-engine: 2 cells, 1 expectations met, 1 unmet")
    verdict = runner.log[-1][2]
    assert (
        f"::error title=probe-engine ci -> db::refused, expected ok "
        f"(127.0.0.1:{loopback.closed_port})" in verdict
    )
    assert "probe-engine: 1 of 2 cells unmet (fail-on unmet)" in verdict
    assert json.loads((folder / "report.json").read_text())["exit_status"] == 1


def test_met_expectations_pass_and_inputs_reach_the_command_line(
    tmp_path: Path, installed: list[str], loopback: LoopbackLab
) -> None:
    write_matrix(tmp_path, loopback, "refused")
    runner, used = job(
        tmp_path,
        installed,
        matrix="matrix.yaml",
        out="reports/probe",
        select="target=db",
        timeout="1s",
        name="connectivity",
        args="--concurrency 4 --deadline 1m",
        artifact_name="connectivity",
        python_version="3.12",
    )
    assert [(name, status) for name, status, _ in runner.log] == [
        ("Run the matrix", 0),
        ("Verdict", 0),
    ]
    assert used["actions/setup-python"] == {"python-version": "3.12"}
    assert used["actions/upload-artifact"]["name"] == "connectivity"
    folder = tmp_path / "reports" / "probe"
    report = json.loads((folder / "connectivity.json").read_text())
    assert [c["target"] for c in report["cells"]] == ["db"]  # --select
    assert report["exit_status"] == 0
    assert "every expectation met" in runner.log[-1][2]
    assert runner.summary.read_text().startswith("# probe-engine: 1 cells, 1 expectations met")


def test_bad_input_fails_the_job_with_exit_2_and_says_where(
    tmp_path: Path, installed: list[str]
) -> None:
    (tmp_path / "matrix.yaml").write_text("sources: {ci: {kind: local}}\ntargets: {}\nexpct: []\n")
    runner, used = job(tmp_path, installed, matrix="matrix.yaml", upload="false")
    assert runner.outputs["run"]["exit-status"] == "2"
    assert "matrix.yaml:3:1: expct: unknown key" in runner.log[0][2]
    assert "::error title=probe-engine::bad input (exit 2)" in runner.log[-1][2]
    assert runner.log[-1][1] == 2
    assert "actions/upload-artifact" not in used  # upload: false
    assert runner.summary.read_text() == ""


def test_the_args_input_reaches_probe_engine_run(tmp_path: Path, installed: list[str]) -> None:
    (tmp_path / "matrix.yaml").write_text("sources: {ci: {kind: local}}\ntargets: {}\n")
    runner, _used = job(tmp_path, installed, matrix="matrix.yaml", args="--concurrency 0")
    assert runner.outputs["run"]["exit-status"] == "2"
    assert "Invalid value for '--concurrency'" in runner.log[0][2]
    assert "0 is not in the range" in runner.log[0][2]
