"""The pre-commit hook (.pre-commit-hooks.yaml), run by the real pre-commit: `pre-commit
try-repo` against this checkout (uncommitted changes included), in a fresh git repository of a
user's with matrices good and bad. pre-commit builds the hook's own environment (a virtualenv
with probe-engine installed from this checkout and its dependencies from the package index)
in a PRE_COMMIT_HOME of the test's. try-repo takes the checkout's tracked files (with their
uncommitted changes): a new hook file must be committed first."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BAD = ROOT / "tests" / "data" / "bad" / "several-mistakes.yaml"
GOOD = "sources: {here: {kind: local}}\ntargets: {api: {kind: tcp, host: 127.0.0.1, port: 80}}\n"
HOOK = "probe-engine-validate"


@pytest.fixture(scope="module")
def user_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("user-repo")
    (repo / "probes").mkdir()
    (repo / "probes" / "api-matrix.yaml").write_text(GOOD)
    shutil.copy(BAD, repo / "probes" / "broken-matrix.yaml")
    (repo / "deploy.yaml").write_text("not: [a, matrix]\n")  # no 'matrix'/'probe' in its name
    (repo / "probe-notes.txt").write_text("a matrix, in words\n")  # not YAML
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid"}
    for command in (["init", "-q"], ["add", "."]):
        subprocess.run(["git", *command], cwd=repo, env=env, check=True, timeout=60)
    return repo


def try_repo(repo: Path, home: Path, *files: str) -> subprocess.CompletedProcess[str]:
    """`pre-commit try-repo` of this checkout's hook on `files` (or every file)."""
    selection = ["--files", *files] if files else ["--all-files"]
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), HOOK, *selection],
        cwd=repo,
        env={**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"},
        capture_output=True,
        text=True,
        timeout=900,  # the first call builds the hook's virtualenv
        check=False,
    )


def test_the_hook_fails_on_a_bad_matrix_with_one_line_per_problem(
    user_repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home = tmp_path_factory.mktemp("pre-commit-home")
    run = try_repo(user_repo, home)
    output = run.stdout + run.stderr
    assert run.returncode == 1, output[-4000:]
    assert "probe-engine validate" in output
    assert "Failed" in output
    # The user's matrix passes, the broken one gets validate's lines, at its path.
    assert "probes/api-matrix.yaml: ok (1 sources, 1 targets)" in output
    assert "probes/broken-matrix.yaml:3:3: defaults.timout: unknown key" in output
    assert "probes/broken-matrix.yaml:10:42: targets.db.port: 70000 is too large" in output
    # Files that are no matrices by the hook's default pattern are left alone.
    assert "deploy.yaml" not in output
    assert "probe-notes.txt" not in output

    passing = try_repo(user_repo, home, "probes/api-matrix.yaml", "deploy.yaml")
    assert passing.returncode == 0, (passing.stdout + passing.stderr)[-4000:]
    assert "Passed" in passing.stdout
