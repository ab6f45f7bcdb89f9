"""Lean core, honest extras: `pip install probe-engine` with no extra (scripts/setup makes
.venv-py3.9 that way, from the package registries) runs local rows, and whatever needs a
missing extra says in one line which one to install: a row's or column's error in the report,
exit 2 for a report format or a command. pyproject.toml declares what probe_engine/extras.py
says each extra installs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

from probe_engine.extras import EXTRAS
from tests.conftest import require

ROOT = Path(__file__).resolve().parent.parent
LEAN = ROOT / ".venv-py3.9" / "bin"

MATRIX = """\
sources:
  here: {kind: local}
  box: {kind: docker, host: "unix:///nonexistent/docker.sock", container: web}
  pods: {kind: kubernetes, selector: app=web, namespace: default}
targets:
  closed: {kind: tcp, host: 127.0.0.1, ports: [9]}
  svc: {kind: kubernetes-service, service: web, namespace: default, port: 80, via: [cluster-ip]}
"""


def _lean(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    require((LEAN / "python").exists(), f"{LEAN} is missing (scripts/setup makes it)")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PROBE_ENGINE_")}
    environ.pop("PYTHONPATH", None)
    environ["KUBECONFIG"] = str(cwd / "no-kubeconfig")  # never the machine's
    return subprocess.run(
        [str(LEAN / args[0]), *args[1:]],
        check=False,
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _hint(extra: str) -> str:
    return f"needs probe-engine's {extra} extra: pip install 'probe-engine[{extra}]'"


def test_the_lean_install_has_no_extra(tmp_path: Path) -> None:
    modules = sorted(
        {m for name in ("docker", "kubernetes", "prometheus") for m in EXTRAS[name].modules}
    )
    code = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m)])"
    done = _lean("python", "-c", code, *modules, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_rows_and_columns_name_the_missing_extra(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MATRIX)
    done = _lean(
        "probe-engine", "run", "m.yaml", "--out", "r", "--format", "json", "-o", "none",
        "--no-progress", cwd=tmp_path,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    cells = {
        (c["source_name"], c["target_name"]): c
        for c in json.loads((tmp_path / "r" / "report.json").read_text())["cells"]
    }
    assert cells["here", "closed"]["status"] == "refused"  # the core probes
    assert cells["box", "closed"]["status"] == "source-error"
    assert _hint("docker") in cells["box", "closed"]["message"]
    assert cells["pods", "closed"]["status"] == "source-error"
    assert _hint("kubernetes") in cells["pods", "closed"]["message"]
    assert cells["here", "svc"]["status"] == "target-error"
    assert _hint("kubernetes") in cells["here", "svc"]["message"]


def test_a_format_or_command_needing_an_extra_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(
        "sources: {here: {kind: local}}\ntargets: {t: {kind: tcp, host: 127.0.0.1, ports: [9]}}\n"
    )
    for command in (
        ("run", "m.yaml", "--out", "r", "--format", "json,prometheus", "--no-progress"),
        ("serve", "m.yaml"),
        ("cleanup", "--docker", "--no-kubernetes"),
    ):
        done = _lean("probe-engine", *command, cwd=tmp_path)
        assert done.returncode == 2, (command, done.stderr)
        lines = done.stderr.splitlines()
        assert len(lines) == 1, (command, done.stderr)
        extra = "docker" if "cleanup" in command else "prometheus"
        assert _hint(extra) in lines[0], lines
    assert not (tmp_path / "r").exists()  # refused before any probe


def test_pyproject_declares_what_each_extra_installs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["optional-dependencies"]
    core = " ".join(project["dependencies"]).lower()
    for extra in EXTRAS.values():
        names = " ".join(declared[extra.name]).lower()
        for distribution in extra.distributions:
            assert distribution.lower() in names, (extra.name, distribution)
            assert distribution.lower() not in core, distribution  # the core stays lean
    assert declared["all"] == ["probe-engine[docker,kubernetes,prometheus]"]


def test_the_readme_install_table_lists_each_extra() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Install\n", 1)[1].split("\n## ", 1)[0]
    assert "Python 3.9+ (the agent" in section
    rows = {
        line.split("|")[1].strip(" `"): line
        for line in section.splitlines()
        if line.startswith("| `")
    }
    assert set(rows) == {*EXTRAS, "all"}
    for extra in EXTRAS.values():
        for distribution in extra.distributions:
            assert distribution in rows[extra.name], (extra.name, distribution)


def test_every_import_is_declared() -> None:
    """deptry ([tool.deptry] in pyproject.toml): no import without its distribution in the
    core or an extra, no declared distribution unused, no transitive one relied on."""
    deptry = Path(sys.executable).parent / "deptry"
    require(deptry.exists(), f"{deptry} is missing (scripts/setup installs the test extra)")
    done = subprocess.run(
        [str(deptry), "probe_engine"],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
