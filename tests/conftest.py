"""Shared test helpers. Under CI=true a missing prerequisite fails the test instead of skipping:
a suite that silently skips its labs would pass while testing nothing."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from probe_engine import MatrixResult, RunOptions, run_matrix
from probe_engine.demo.fixtures import LoopbackLab
from probe_engine.results import CellResult
from probe_engine.spec import load_matrix_text

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# The labs' fixtures, registered once for the whole session: one lab, one Docker engine, one
# of each however many test modules use them.
pytest_plugins = ["tests.lab.fixtures", "tests.dockerlab.fixtures", "tests.kubelab.fixtures"]


def require(condition: bool, reason: str) -> None:
    """Skip locally, fail in CI, when a prerequisite (root, a daemon, a browser) is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"prerequisite missing in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """The engine's backend: aiodocker and kubernetes-asyncio run on asyncio only."""
    return "asyncio"


@pytest.fixture(scope="session")
def loopback() -> Iterator[LoopbackLab]:
    """Every loopback fixture: an HTTP service, closed ports, a full backlog, a hanging and a
    resetting server, a DNS server; see probe_engine.demo.fixtures."""
    with LoopbackLab() as lab:
        yield lab


def run_text(text: str, environ: dict[str, str] | None = None, **options: object) -> MatrixResult:
    """Load a matrix from YAML text (with ${...} from `environ`) and run it."""
    loaded = load_matrix_text(text, "test.yaml", environ or {})
    return anyio.run(run_matrix, loaded, RunOptions(**options))  # type: ignore[arg-type]


def cell(result: MatrixResult, source: str, target: str) -> CellResult:
    found = result.grid().get((source, target))
    assert found is not None, f"no cell {source} x {target} in {sorted(result.grid())}"
    return found


def reports_invalid_for_the_schema(folder: Path) -> list[str]:
    """Every report.json under `folder` (a *.json with schema_version and tool_version, as
    probe-engine writes them; a test's deliberately broken copy lacks one), checked against
    `probe-engine schema --report`: one line per report that does not fit, with why."""
    import jsonschema

    from probe_engine.spec.schema import report_schema

    validator = jsonschema.Draft202012Validator(report_schema())
    problems = []
    for path in sorted(folder.rglob("*.json")):
        try:
            document = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        if not isinstance(document, dict) or not {"schema_version", "tool_version"} <= set(
            document
        ):
            continue
        for error in validator.iter_errors(document):
            where = "/".join(str(p) for p in error.absolute_path)
            problems.append(f"{path}: {where}: {error.message[:200]}")
            break
    return problems


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Every report the suite wrote (they all live under pytest's temporary folder) must fit
    report.json's published schema; a report that does not fails the run."""
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None or getattr(factory, "_basetemp", None) is None:
        return
    folder = factory.getbasetemp()
    problems = reports_invalid_for_the_schema(folder)
    checked = sum(1 for _ in folder.rglob("*.json"))
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"report.json schema: {checked} JSON files under {folder} checked, "
            f"{len(problems)} reports do not fit"
        )
        for line in problems:
            reporter.write_line(f"  {line}", red=True)
    if problems:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
