"""A docker source naming no daemon (no `host:`, no DOCKER_HOST) uses the current Docker
context, as the docker CLI would (Colima, Docker Desktop and rootless engines set one): real
context folders whose endpoint is the lab's dockerd (tests/dockerlab), read by aiodocker from
~/.docker, or by probe_engine/docker_context.py from a DOCKER_CONFIG folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from probe_engine.docker_context import aiodocker_resolves
from probe_engine.sources.docker import daemon_url
from tests.conftest import cell, run_text
from tests.dockerlab import Lab

pytestmark = pytest.mark.docker

MATRIX = """
version: 1
defaults: {timeout: 2s}
sources:
  scheduler: {kind: docker, container: pe-scheduler}
targets:
  api: {kind: tcp, host: "${API}", port: 8000}
"""


def write_context(folder: Path, name: str, host: str, current: bool = True) -> None:
    """What `docker context create NAME --docker host=HOST` (and `docker context use`) write."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = folder / "contexts" / "meta" / digest / "meta.json"
    meta.parent.mkdir(parents=True)
    endpoint = {"Host": host, "SkipTLSVerify": False}
    meta.write_text(json.dumps({"Name": name, "Metadata": {}, "Endpoints": {"docker": endpoint}}))
    if current:
        (folder / "config.json").write_text(json.dumps({"currentContext": name}))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home and no Docker variables: nothing but the files a test writes."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_TLS_VERIFY"):
        monkeypatch.delenv(name, raising=False)
    return home


def run_row(lab: Lab) -> tuple[str, str, dict[str, object]]:
    result = run_text(MATRIX, {"API": lab.api_ip})
    found = cell(result, "scheduler", "api")
    row = next(s for s in result.sources if s.name == "scheduler")
    return found.status, found.message or "", row.facts


def test_the_current_context_in_home_is_resolved_by_aiodocker(docker_lab: Lab, home: Path) -> None:
    write_context(home / ".docker", "pe-lab", docker_lab.url)
    assert aiodocker_resolves({})  # the project's venv has aiodocker >= 0.25
    assert daemon_url(None, {}) == (None, "the Docker context 'pe-lab'")
    status, message, facts = run_row(docker_lab)
    assert status == "ok", message
    assert facts["docker_host"] == docker_lab.url


def test_docker_config_names_the_folder_of_the_context(
    docker_lab: Lab, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "docker-config"
    write_context(folder, "colima", docker_lab.url)
    write_context(home / ".docker", "elsewhere", "unix:///nonexistent/docker.sock")
    monkeypatch.setenv("DOCKER_CONFIG", str(folder))
    status, message, facts = run_row(docker_lab)
    assert status == "ok", message
    assert facts["docker_host"] == docker_lab.url


def test_docker_context_chooses_among_contexts(
    docker_lab: Lab, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_context(home / ".docker", "broken", "unix:///nonexistent/docker.sock")
    write_context(home / ".docker", "pe-lab", docker_lab.url, current=False)
    monkeypatch.setenv("DOCKER_CONTEXT", "pe-lab")
    status, message, _facts = run_row(docker_lab)
    assert status == "ok", message


def test_docker_host_wins_over_the_context_as_for_the_docker_cli(
    docker_lab: Lab, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_context(home / ".docker", "broken", "unix:///nonexistent/docker.sock")
    monkeypatch.setenv("DOCKER_HOST", docker_lab.url)
    status, message, _facts = run_row(docker_lab)
    assert status == "ok", message


@pytest.mark.parametrize("where", ["home", "docker-config"])
def test_a_context_that_does_not_exist_is_named(
    docker_lab: Lab, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    if where == "docker-config":
        (tmp_path / "docker-config").mkdir()
        monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setenv("DOCKER_CONTEXT", "no-such-context")
    status, message, _facts = run_row(docker_lab)
    assert status == "source-error"
    assert "no-such-context" in message, message
