"""The package on the oldest Python it supports (3.9: an Airflow worker's interpreter is the one
the `local` source probes from) and on the newest: the venvs scripts/setup makes with pyenv's
real interpreters, a plain `pip install` of this checkout on 3.9 (no extra: the lean core,
tests/test_extras.py) and `[all]` on the newest (no test extras).

Each module imports, the matrix schema is the one the project's own Python builds (pydantic
reads the same models from the `X | None` annotations), and the demo runs with every
diagnosis rule working.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = ("3.9", "3.13")

# Imports every module of the package; a module that needs an extra not installed there is
# fine (its import names a module of that extra), anything else is printed and fails.
IMPORT_ALL = """
import importlib, pkgutil, sys, traceback
import probe_engine
from probe_engine.extras import EXTRAS
optional = {module for extra in EXTRAS.values() for module in extra.modules}
print(sys.version_info[:2], file=sys.stderr)
failed = 0
for info in pkgutil.walk_packages(probe_engine.__path__, "probe_engine."):
    if info.name.endswith("__main__") or ".integrations.airflow" in info.name:
        continue  # __main__ runs the CLI; Airflow's modules are tested in Airflow's venvs
    try:
        importlib.import_module(info.name)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in optional:
            failed += 1
            traceback.print_exc()
    except Exception:
        failed += 1
        traceback.print_exc()
print(failed)
"""


def _python(version: str) -> Path:
    python = ROOT / f".venv-py{version}" / "bin" / "python"
    require(python.exists(), f"{python} is missing (scripts/setup makes it with pyenv's Python)")
    return python


def _run(command: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PROBE_ENGINE_")}
    environ.pop("PYTHONPATH", None)
    return subprocess.run(
        command, check=False, cwd=cwd, env=environ, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_the_venv_runs_the_python_it_is_named_for(version: str, tmp_path: Path) -> None:
    done = _run([str(_python(version)), "-c", "import sys; print(sys.version)"], tmp_path)
    assert done.stdout.startswith(f"{version}."), done.stdout


@pytest.mark.parametrize("version", VERSIONS)
def test_every_module_imports(version: str, tmp_path: Path) -> None:
    done = _run([str(_python(version)), "-c", IMPORT_ALL], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0", done.stderr


@pytest.mark.parametrize("version", VERSIONS)
def test_the_schema_is_the_same_on_every_python(version: str, tmp_path: Path) -> None:
    """pydantic builds the models from the annotations: same models, same JSON Schema."""
    here = _run([sys.executable, "-m", "probe_engine", "schema"], tmp_path)
    there = _run([str(_python(version)), "-m", "probe_engine", "schema"], tmp_path)
    assert here.returncode == there.returncode == 0, there.stderr
    assert json.loads(there.stdout) == json.loads(here.stdout)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_demo_runs_and_every_rule_works(version: str, tmp_path: Path) -> None:
    engine = _python(version).parent / "probe-engine"
    done = _run(
        [str(engine), "demo", "--out", str(tmp_path / "reports"), "-o", "none", "--no-progress"],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr  # every expectation of the demo met
    assert "Traceback" not in done.stderr, done.stderr  # a diagnosis rule that failed says so
    report = json.loads((tmp_path / "reports" / "demo.json").read_text())
    assert report["summary"]["expectations"]["unmet"] == 0
    rules = {finding["rule"] for finding in report["findings"]}
    assert {"proxy-differs", "target-down"} <= rules, rules
    assert {"demo.json", "demo.html", "demo.xml", "demo.md"} <= {
        p.name for p in (tmp_path / "reports").iterdir()
    }
