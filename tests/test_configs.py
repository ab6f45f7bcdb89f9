"""The matrices shipped in configs/ stay valid, and say what the story says.

configs/matrix.yaml is the user's real matrix (Airflow beside Minikube): its addresses are not
this machine's nor the lab's, so it is validated and rendered here, never run. configs/lab.yaml
runs for real in test_netns_lab.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from probe_engine.plan import expectation_for
from probe_engine.spec import Matrix, load_matrix
from probe_engine.targets import Column

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
STORY = REPO / "configs" / "matrix.yaml"


def expectation_grid(matrix: Matrix) -> str:
    """The declared matrix rendered as a text grid: one line per source, the expected status
    of each target ("-" for none). Built from the spec alone: no target is resolved, so a
    Kubernetes target would not need a cluster here."""
    lines = []
    for source in matrix.sources:
        cells = []
        for target, spec in matrix.targets.items():
            column = Column(target, target, spec.kind, target, None)
            expected = expectation_for(matrix, source, source, column)
            cells.append(f"{target}={'|'.join(expected) if expected else '-'}")
        lines.append(f"{source}: {' '.join(cells)}")
    return "\n".join(lines)


def test_there_are_configs_to_check() -> None:
    assert {path.name for path in CONFIGS} >= {"matrix.yaml", "lab.yaml"}


def test_every_config_validates_with_the_cli() -> None:
    # No variable set: every ${...} in a shipped config has a default, so this works as is.
    proc = subprocess.run(
        [sys.executable, "-m", "probe_engine", "validate", *map(str, CONFIGS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    assert [line.split(":")[0] for line in proc.stdout.splitlines()] == list(map(str, CONFIGS))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_config_has_a_description(path: Path) -> None:
    assert load_matrix(path, {}).matrix.description


def test_the_story_matrix_asks_every_place_by_every_way() -> None:
    matrix = load_matrix(STORY, {}).matrix
    kinds = {name: spec.kind for name, spec in matrix.sources.items()}
    assert kinds["task-python"] == "local"  # the PythonOperator's own process
    assert "scheduler-curl" in kinds and "worker" in kinds
    assert getattr(matrix.sources["scheduler-curl"], "tool", None) == "curl"
    urls = [getattr(spec, "url", "") for spec in matrix.targets.values()]
    assert "http://192.168.49.2:30080/health" in urls  # NodePort on Minikube's node IP


def test_the_story_matrix_takes_kubectls_values() -> None:
    environ = {"NODE_PORT": "31234", "API_CLUSTER_IP": "10.101.2.3", "API_SERVICE_PORT": "8000"}
    matrix = load_matrix(STORY, environ).matrix
    urls = {name: getattr(spec, "url", None) for name, spec in matrix.targets.items()}
    assert urls["api-nodeport"] == "http://192.168.49.2:31234/health"
    assert urls["api-clusterip"] == "http://10.101.2.3:8000/health"
    assert getattr(matrix.targets["api-nodeport-tcp"], "port", None) == 31234


def test_the_story_matrix_renders_its_expectations() -> None:
    # NodePort must work from everywhere; the rest is what a run finds out.
    assert expectation_grid(load_matrix(STORY, {}).matrix) == "\n".join(
        f"{source}: api-nodeport=ok api-nodeport-tcp=ok api-clusterip=- "
        "api-port-forward=- api-dns=-"
        for source in ("scheduler-curl", "task-python", "task-python-no-proxy", "worker")
    )
