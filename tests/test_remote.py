"""The remote runner's one policy, seen through the child-process channel: how an ending is
told, what counts as a missing program, when the whole row fails. Containers and pods run the
same code (tests/test_docker_source.py, tests/test_kubernetes.py)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from probe_engine.demo.fixtures import LoopbackLab
from probe_engine.sources.channel import ExitStatus
from probe_engine.sources.remote import budget, command_missing

from .conftest import cell, run_text


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (ExitStatus(code=3), "exited with status 3"),
        (ExitStatus(signal=signal.SIGKILL), "was killed (SIGKILL)"),
        (ExitStatus(code=137), "was killed (SIGKILL, exit status 137)"),
        (ExitStatus(code=143), "was terminated (SIGTERM, exit status 143)"),
        (ExitStatus(code=139), "was killed (SIGSEGV, exit status 139)"),
        (ExitStatus(code=3, words="command terminated"), "failed: command terminated"),
        (ExitStatus(), "did not report an exit status"),
    ],
)
def test_every_place_tells_an_ending_in_the_same_words(status: ExitStatus, words: str) -> None:
    assert status.describe() == words


@pytest.mark.parametrize(
    ("status", "words", "missing"),
    [
        # docker: the runtime's words on stdout, exit 126 or 127
        (ExitStatus(code=127), 'exec: "python3": executable file not found in $PATH', True),
        # a pod: the Status message, no exit code
        (ExitStatus(words='exec: "sh": executable file not found in $PATH'), "", True),
        # ip netns exec: its own exit status 1 is not the program's absence
        (ExitStatus(code=1), 'exec of "python3" failed: No such file or directory', False),
        (ExitStatus(code=126), "unable to find user nobody-here", False),
    ],
)
def test_a_missing_program_is_the_runtimes_words_with_no_status_or_126_127(
    status: ExitStatus, words: str, missing: bool
) -> None:
    assert command_missing(status, f"{status.words or ''} {words}") is missing


def test_the_time_budget_is_startup_plus_each_wave_of_cells_within_its_longest_timeout() -> None:
    assert budget([], concurrency=256, default_timeout=2.0) == 30.0
    # 600 cells of 2 s at 256 at once: three waves of (2 s + 2 s)
    assert budget([_Timed(2.0)] * 600, concurrency=256, default_timeout=9.0) == 30.0 + 3 * 4.0


class _Timed:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout


def test_an_agent_killed_before_answering_fails_its_row_and_keeps_its_hello(
    tmp_path: Path, loopback: LoopbackLab
) -> None:
    fake = tmp_path / "python3"
    fake.write_text(
        "#!/bin/sh\n"
        'echo \'{"type":"ready","magic":"none"}\'\n'
        "read -r modules; read -r batch\n"
        'printf \'{"type":"hello","facts":{"pid":%s,"hostname":"fake"}}\\n\' $$\n'
        "kill -9 $$\n"
    )
    fake.chmod(0o755)
    result = run_text(
        f"""
        sources:
          fake: {{kind: process, python: {fake}, inherit_env: false}}
        targets:
          closed: {{kind: tcp, host: 127.0.0.1, port: {loopback.variables()["PE_DEMO_CLOSED_PORT"]}}}
        """
    )
    found = cell(result, "fake", "closed")
    assert (found.status, found.message) == ("source-error", "the agent was killed (SIGKILL)")
    (info,) = result.sources
    assert (info.status, info.message) == ("error", "the agent was killed (SIGKILL)")
    assert info.facts["hostname"] == "fake"  # what it said before dying stays
    assert info.facts["exec"]["exit_code"] is None  # a signal, not an exit status
