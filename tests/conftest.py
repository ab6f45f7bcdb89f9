"""Shared test helpers. Under CI=true a missing prerequisite fails the test instead of skipping:
a suite that silently skips its labs would pass while testing nothing."""

from __future__ import annotations

import os
from collections.abc import Iterator

import anyio
import pytest

from probe_engine import MatrixResult, RunOptions, run_matrix
from probe_engine.demo.fixtures import LoopbackLab
from probe_engine.results import CellResult
from probe_engine.spec import load_matrix_text

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, reason: str) -> None:
    """Skip locally, fail in CI, when a prerequisite (root, a daemon, a browser) is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"prerequisite missing in CI: {reason}")
    pytest.skip(reason)


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
