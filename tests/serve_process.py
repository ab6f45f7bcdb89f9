"""`probe-engine serve` as a real process for the tests: started, asked over HTTP, signalled.

It listens on 127.0.0.1:0 and the test reads the address from its log line ("listening on
http://127.0.0.1:PORT"), so parallel test sessions never fight over a port. Every wait is
bounded; a process left running by a failing test is stopped by pid, with its children.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import psutil
from prometheus_client.parser import text_string_to_metric_families

T = TypeVar("T")
START_TIMEOUT = 90.0  # imports alone take seconds on a loaded 2-core machine
WAIT_TIMEOUT = 90.0
_LISTENING = re.compile(r"listening on (http://\S+):\s")
# No proxy between the test and serve, whatever the machine's environment says.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def wait_for(what: str, check: Callable[[], T | None], timeout: float = WAIT_TIMEOUT) -> T:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


class ServeProcess:
    """One `probe-engine serve MATRIX` process with its log in a file."""

    def __init__(
        self,
        matrix: Path,
        *args: str,
        log: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.log_path = log
        self.command = [
            sys.executable,
            "-m",
            "probe_engine",
            "serve",
            str(matrix),
            "--listen",
            "127.0.0.1:0",
            *args,
        ]
        with log.open("ab") as sink:
            self.proc = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=sink,
                env={**os.environ, **(env or {})},
            )
        self.url = wait_for("serve to listen", self._listening, START_TIMEOUT)

    def _listening(self) -> str | None:
        if self.proc.poll() is not None:
            raise AssertionError(f"serve exited {self.proc.returncode}:\n{self.log()}")
        found = _LISTENING.findall(self.log())
        return found[-1] if found else None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    # --- HTTP ------------------------------------------------------------------------------

    def get(self, path: str, accept: str | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path)
        if accept:
            request.add_header("Accept", accept)
        try:
            with _OPENER.open(request, timeout=60) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def json(self, path: str) -> Any:
        status, body = self.get(path)
        assert status == 200, (path, status, body[:500])
        return json.loads(body)

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """Every sample of /metrics: (name, labels) -> value."""
        status, body = self.get("/metrics")
        assert status == 200, body
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(body.decode())
            for sample in family.samples
        }

    def value(self, name: str, **labels: str) -> float | None:
        return self.metrics().get((name, frozenset(labels.items())))

    def runs(self) -> int:
        return int(self.value("probe_engine_runs_total") or 0)

    def wait_runs(self, count: int) -> int:
        return wait_for(f"{count} runs", lambda: self.runs() >= count and self.runs())

    # --- life ------------------------------------------------------------------------------

    def children(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def send(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Signal and wait for the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """Clean up after a failed test: this process and its children, by pid."""
        leftovers = self.children()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        for child in leftovers:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()


def start_serve(
    matrix: Path, *args: str, log: Path, env: dict[str, str] | None = None
) -> ServeProcess:
    return ServeProcess(matrix, *args, log=log, env=env)


def labels_of(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], prefixes: Sequence[str]
) -> set[tuple[str, frozenset[tuple[str, str]]]]:
    """The series (name and labels, not values) whose name starts with one of `prefixes`."""
    return {key for key in samples if key[0].startswith(tuple(prefixes))}
