"""The command line's conventions: -o for --output, PROBE_ENGINE_* defaults for the common
options (the command line winning), shell completion driven through the real bash, zsh and fish,
and --version naming the optional integrations found."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from probe_engine.demo.fixtures import LoopbackLab
from probe_engine.extras import EXTRAS
from tests.conftest import require

BIN = Path(sys.executable).parent
PROBE_ENGINE = str(BIN / "probe-engine")


def probe_engine(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PROBE_ENGINE_")}
    return subprocess.run(
        [PROBE_ENGINE, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=clean | (env or {}),
        timeout=120,
        check=False,
    )


@pytest.fixture
def matrix(tmp_path: Path, loopback: LoopbackLab) -> Path:
    path = tmp_path / "matrix.yaml"
    path.write_text(
        f"""
sources: {{here: {{kind: local}}}}
targets:
  api: {{kind: http, url: "http://127.0.0.1:{loopback.http_port}/health"}}
  hang: {{kind: http, url: "http://127.0.0.1:{loopback.hanging.port}/"}}
expect:
  - {{target: api, status: ok}}
"""
    )
    return path


def test_dash_o_is_output(tmp_path: Path, matrix: Path) -> None:
    run = probe_engine(
        "run", str(matrix), "-o", "json", "--no-reports", "--timeout", "300ms", cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert {c["target"] for c in json.loads(run.stdout)["cells"]} == {"api", "hang"}
    demo = probe_engine("demo", "--help", cwd=tmp_path)
    assert "-o, --output [table|json|none]" in demo.stdout


def test_the_environment_gives_the_common_options_their_defaults(
    tmp_path: Path, matrix: Path
) -> None:
    env = {
        "PROBE_ENGINE_OUT": str(tmp_path / "from-env"),
        "PROBE_ENGINE_FORMAT": "json,markdown",
        "PROBE_ENGINE_TIMEOUT": "300ms",
        "PROBE_ENGINE_OUTPUT": "json",
        "PROBE_ENGINE_FAIL_ON": "any-failure",
        "PROBE_ENGINE_CONCURRENCY": "3",
        "PROBE_ENGINE_DEADLINE": "1m",
        "PROBE_ENGINE_NO_PROGRESS": "1",
    }
    run = probe_engine("run", str(matrix), cwd=tmp_path, env=env)
    # any-failure: the hanging target (no expectation) times out, so the exit status is 1.
    assert run.returncode == 1, run.stderr
    result = json.loads(run.stdout)  # PROBE_ENGINE_OUTPUT=json
    assert result["fail_on"] == "any-failure"
    hang = next(c for c in result["cells"] if c["target"] == "hang")
    assert hang["status"] == "timeout"
    assert "no answer within 0.3s" in hang["checks"][-1]["message"]  # PROBE_ENGINE_TIMEOUT
    assert sorted(p.name for p in (tmp_path / "from-env").iterdir()) == ["report.json", "report.md"]

    # The command line wins over the environment.
    run = probe_engine(
        "run",
        str(matrix),
        "--out",
        str(tmp_path / "from-cli"),
        "--fail-on",
        "never",
        "--format",
        "json",
        "-o",
        "none",
        cwd=tmp_path,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    assert not run.stdout.startswith("{")  # -o none: no result on stdout, only what was written
    assert "reachability" not in run.stdout
    assert sorted(p.name for p in (tmp_path / "from-cli").iterdir()) == ["report.json"]
    saved = json.loads((tmp_path / "from-cli" / "report.json").read_text())
    assert saved["fail_on"] == "never"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "PROBE_ENGINE_TIMEOUT",
            "soon",
            "probe-engine: PROBE_ENGINE_TIMEOUT: 'soon' is not a duration",
        ),
        (
            "PROBE_ENGINE_FORMAT",
            "xml",
            "probe-engine: PROBE_ENGINE_FORMAT: unknown format 'xml'",
        ),
        (
            "PROBE_ENGINE_FAIL_ON",
            "sometimes",
            "Invalid value for '--fail-on' (env var: 'PROBE_ENGINE_FAIL_ON'): 'sometimes'",
        ),
        (
            "PROBE_ENGINE_CONCURRENCY",
            "0",
            "Invalid value for '--concurrency' (env var: 'PROBE_ENGINE_CONCURRENCY'): 0",
        ),
    ],
)
def test_a_bad_value_from_the_environment_names_the_variable(
    tmp_path: Path, matrix: Path, variable: str, value: str, message: str
) -> None:
    run = probe_engine("run", str(matrix), cwd=tmp_path, env={variable: value})
    assert run.returncode == 2
    assert message in run.stderr
    assert not (tmp_path / "reports").exists()


def completion_env(**more: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **more}


def test_bash_completes_commands_options_and_choices(tmp_path: Path) -> None:
    script = tmp_path / "probe-engine.bash"
    script.write_text(probe_engine("completion", "bash", cwd=tmp_path).stdout)

    def complete(*words: str) -> list[str]:
        line = " ".join(f"'{w}'" for w in words)
        driver = (
            f"source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; "
            '_probe_engine_completion probe-engine; printf "%s\\n" "${COMPREPLY[@]}"'
        )
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-c", driver],
            env=completion_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout.split()

    assert {"run", "validate", "serve", "completion", "demo"} <= set(complete("probe-engine", ""))
    assert complete("probe-engine", "ren") == ["render"]
    assert "--fail-on" in complete("probe-engine", "run", "--fa")
    assert complete("probe-engine", "run", "--fail-on", "") == ["unmet", "any-failure", "never"]
    assert complete("probe-engine", "completion", "") == ["bash", "zsh", "fish"]
    # --format completes the formats not yet named, after the last comma.
    assert complete("probe-engine", "run", "--format", "json,h") == ["json,html"]
    assert "json,html" not in complete("probe-engine", "run", "--format", "html,")


def test_fish_completes_through_its_own_complete_command(tmp_path: Path) -> None:
    require(shutil.which("fish") is not None, "fish is not installed (scripts/setup installs it)")
    script = probe_engine("completion", "fish", cwd=tmp_path).stdout
    done = subprocess.run(
        ["fish", "--no-config", "-c", f"{script}\ncomplete -C 'probe-engine run --fail-on '"],
        env=completion_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # fish sorts what it offers.
    assert sorted(line.split("\t")[0] for line in done.stdout.splitlines()) == [
        "any-failure",
        "never",
        "unmet",
    ]


def test_zsh_loads_the_script_and_gets_described_items(tmp_path: Path) -> None:
    """zsh's completion widgets only run in an interactive line editor: the script is loaded
    (and registered with compdef) by a real zsh, and the answers it reads are asked for the way
    it asks (its environment variables), to check their zsh form."""
    require(shutil.which("zsh") is not None, "zsh is not installed (scripts/setup installs it)")
    script = tmp_path / "_probe-engine.zsh"
    script.write_text(probe_engine("completion", "zsh", cwd=tmp_path).stdout)
    loaded = subprocess.run(
        [
            "zsh",
            "-f",
            "-c",
            f"autoload -U compinit && compinit -u -d {tmp_path}/zcompdump && source {script} "
            "&& print -r -- $_comps[probe-engine]",
        ],
        env=completion_env(HOME=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "_probe_engine_completion"
    asked = subprocess.run(
        [PROBE_ENGINE],
        env=completion_env(
            COMP_WORDS="probe-engine run --fail-on ",
            COMP_CWORD="3",
            _PROBE_ENGINE_COMPLETE="zsh_complete",
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # Triples of type, value, help, one per line, as the zsh script reads them.
    assert asked.stdout.splitlines() == [
        "plain",
        "unmet",
        "_",
        "plain",
        "any-failure",
        "_",
        "plain",
        "never",
        "_",
    ]


def test_version_names_python_and_each_integration(tmp_path: Path) -> None:
    from probe_engine import __version__

    run = probe_engine("--version", cwd=tmp_path)
    assert run.returncode == 0
    lines = run.stdout.splitlines()
    assert lines[0] == f"probe-engine, version {__version__}"
    assert lines[1].startswith(f"Python {sys.version.split()[0]} (")
    listed = {line.split()[0]: line for line in lines[3:]}
    assert list(listed) == list(EXTRAS)
    # This venv has docker, kubernetes and prometheus, and no Airflow.
    from importlib.metadata import version

    assert f"aiodocker {version('aiodocker')}" in listed["docker"]
    assert f"kubernetes-asyncio {version('kubernetes-asyncio')}" in listed["kubernetes"]
    assert "not installed" in listed["airflow"]
    assert "pip install 'probe-engine[airflow]'" in listed["airflow"]
    assert probe_engine("-V", cwd=tmp_path).stdout == run.stdout
