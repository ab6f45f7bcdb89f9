"""The matrices shipped in configs/ stay valid, and say what the story says.

configs/matrix.yaml is the user's real matrix (Airflow beside Minikube): its addresses are not
this machine's nor the lab's, so it is validated and rendered here, never run. configs/lab.yaml
runs for real in test_netns_lab.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from probe_engine.model import Column
from probe_engine.plan import expectation_for
from probe_engine.spec import Matrix, load_matrix

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
STORY = REPO / "configs" / "matrix.yaml"


def columns_of(name: str, spec: Any) -> list[str]:
    """A target's columns as the resolvers name them, without resolving anything: a
    kubernetes-service target has one column per way in (`api/node-port`), others one."""
    if spec.kind == "kubernetes-service":
        return [f"{name}/{via}" for via in spec.vias()]
    return [name]


def expectation_grid(matrix: Matrix) -> str:
    """The declared matrix rendered as a text grid: one line per source, the expected status
    of each column ("-" for none). Built from the spec alone: no target is resolved, so the
    Kubernetes target needs no cluster and nothing is sent anywhere."""
    lines = []
    for source in matrix.sources:
        cells = []
        for target, spec in matrix.targets.items():
            for name in columns_of(target, spec):
                column = Column(name, target, spec.kind, name, None)
                expected = expectation_for(matrix, source, source, column)
                cells.append(f"{name}={'|'.join(expected) if expected else '-'}")
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
    assert kinds == {
        "scheduler-curl": "docker",  # docker exec airflow-scheduler curl
        "task-python": "local",  # the PythonOperator's own process
        "task-python-no-proxy": "local",
        "worker": "docker",
    }
    assert getattr(matrix.sources["scheduler-curl"], "tool", None) == "curl"
    assert getattr(matrix.sources["scheduler-curl"], "container", None) == "airflow-scheduler"
    urls = [getattr(spec, "url", "") for spec in matrix.targets.values()]
    assert "http://192.168.49.2:30080/health" in urls  # NodePort on Minikube's node IP
    service = matrix.targets["api"]
    assert service.kind == "kubernetes-service"
    assert getattr(service, "service", None) == "health-predict-api-service"
    # Phase 2's "examine the API pod's logs": each cell says which backend pod logged it.
    evidence = getattr(service, "evidence", None)
    assert evidence is not None and evidence.pod_logs is True
    assert columns_of("api", service) == [
        "api/node-port",
        "api/cluster-ip",
        "api/dns",
        "api/port-forward",
    ]


def test_the_story_matrix_takes_the_node_port_from_kubectl() -> None:
    matrix = load_matrix(STORY, {"NODE_PORT": "31234"}).matrix
    assert getattr(matrix.targets["api-nodeport"], "url", None) == (
        "http://192.168.49.2:31234/health"
    )
    assert getattr(matrix.targets["api-nodeport-tcp"], "port", None) == 31234


def test_the_story_matrix_renders_its_expectations() -> None:
    # The NodePort must work from everywhere, the tunnel from the task's own process; the
    # ClusterIP and cluster DNS are what a run finds out.
    expected = {
        "scheduler-curl": "-",
        "task-python": "ok",
        "task-python-no-proxy": "ok",
        "worker": "-",
    }
    assert expectation_grid(load_matrix(STORY, {}).matrix) == "\n".join(
        f"{source}: api-nodeport=ok api-nodeport-tcp=ok api/node-port=ok api/cluster-ip=- "
        f"api/dns=- api/port-forward={tunnel} api-ping=- node-ping=-"
        for source, tunnel in expected.items()
    )
