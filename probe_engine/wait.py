"""Readiness: probe a target, or a whole matrix, until it is reachable, within fixed bounds.

One *attempt* is one engine run, so a readiness check sees exactly what a matrix run would see
(same checks, same proxy rules, same errno). Attempts start every `interval` seconds (measured
from the start of the previous one, so a slow attempt does not stretch the rhythm) until the
`timeout` passes; the last one starts at the deadline. The loop is bounded in time (timeout plus
one attempt) and in count (timeout / interval + 2), whatever the network does.

Used by `probe-engine wait` and by the Airflow sensor, which calls `attempt_once` once per poke.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from .engine import RunOptions, run_matrix
from .errors import SpecError
from .plan import Selection
from .results import CellResult, CheckRecord, MatrixResult
from .spec import LoadedMatrix, load_matrix, load_matrix_dict

# An attempt is given at least this long, even when the wait's deadline is nearer: a shorter
# run would report `cancelled` cells that say nothing about the target.
MIN_ATTEMPT_S = 1.0
DEFAULT_ATTEMPT_TIMEOUT_S = 2.0
_MATRIX_SUFFIXES = (".yaml", ".yml", ".json")
_HOSTPORT = re.compile(r"^(?:tcp://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(?P<port>\d+)$")


def target_matrix(target: str, attempt_timeout: float | None = None) -> dict[str, Any]:
    """A one-cell matrix for a bare target: a URL (http check) or host:port (tcp check).

    The source is `local`: readiness as this process sees it, proxy variables included.
    """
    text = target.strip()
    spec: dict[str, Any]
    if text.startswith(("http://", "https://")):
        spec = {"kind": "http", "url": text}
    else:
        match = _HOSTPORT.match(text)
        if match is None:
            raise SpecError(
                "expected a URL (http://host:port/path), host:port, or a matrix file (.yaml)",
                file=target,
            )
        port = int(match.group("port"))
        if not 1 <= port <= 65535:
            raise SpecError("ports run from 1 to 65535", file=target)
        spec = {"kind": "tcp", "host": match.group("host").strip("[]"), "port": port}
    return {
        "version": 1,
        "description": f"probe-engine wait {text}",
        "defaults": {"timeout": attempt_timeout or DEFAULT_ATTEMPT_TIMEOUT_S},
        "sources": {"local": {"kind": "local"}},
        "targets": {"target": spec},
    }


def load_wait_target(
    target: str | os.PathLike[str] | Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> LoadedMatrix:
    """What `wait` accepts: a matrix (a file, or a dict), a URL, or host:port."""
    if isinstance(target, Mapping):
        return load_matrix_dict(target)
    text = os.fspath(target)
    if isinstance(target, os.PathLike) or text.endswith(_MATRIX_SUFFIXES) or Path(text).is_file():
        return load_matrix(text, environ)
    return load_matrix_dict(target_matrix(text), file=text)


def cell_ready(cell: CellResult) -> bool:
    """Ready: the cell meets its expectation, or has none and is ok."""
    return cell.met is True or (cell.met is None and cell.status == "ok")


def _decisive_check(cell: CellResult) -> CheckRecord | None:
    """The check that decided a failed cell: the last one that was not ok."""
    failed = [check for check in cell.checks if check.status != "ok"]
    return failed[-1] if failed else None


def describe_cell(cell: CellResult) -> str:
    """`refused ECONNREFUSED (errno 111)`, `http-error HTTP 503`, `ok`."""
    parts: list[str] = [cell.status]
    check = _decisive_check(cell)
    if check is not None:
        if check.errno_name:
            parts.append(check.errno_name)
        if check.errno is not None:
            parts.append(f"(errno {check.errno})")
        if check.http_status is not None:
            parts.append(f"HTTP {check.http_status}")
    if len(parts) == 1 and cell.status != "ok":
        message = cell.message or (check.message if check else None)
        if message:
            parts.append(f"({message})")
    if cell.met is False:
        parts.append(f"expected {'/'.join(cell.expected or [])}")
    return " ".join(parts)


@dataclass(frozen=True)
class Attempt:
    """One probe of everything the wait is waiting for."""

    number: int | None  # None where nobody counts (a sensor poke in reschedule mode)
    elapsed_s: float | None  # since the wait started, when this attempt finished
    result: MatrixResult

    @property
    def ready(self) -> bool:
        return bool(self.result.cells) and all(cell_ready(c) for c in self.result.cells)

    @property
    def pending(self) -> list[CellResult]:
        return [c for c in self.result.cells if not cell_ready(c)]

    def describe(self, limit: int = 3) -> str:
        """One log line: the attempt, and what is not ready yet with its status and errno."""
        head = "attempt" if self.number is None else f"attempt {self.number}"
        if self.elapsed_s is not None:
            head += f" ({self.elapsed_s:.1f}s)"
        cells = self.result.cells
        if not cells:
            return f"{head}: nothing to probe (the selection matched no cell)"
        if len(cells) == 1:
            return f"{head}: {cells[0].endpoint} {describe_cell(cells[0])}"
        pending = self.pending
        if not pending:
            return f"{head}: {len(cells)}/{len(cells)} cells ready"
        shown = "; ".join(
            f"{c.source} -> {c.target} ({c.endpoint}) {describe_cell(c)}" for c in pending[:limit]
        )
        more = f"; and {len(pending) - limit} more" if len(pending) > limit else ""
        return f"{head}: {len(cells) - len(pending)}/{len(cells)} cells ready; {shown}{more}"


@dataclass(frozen=True)
class WaitOutcome:
    ready: bool
    attempts: int
    elapsed_s: float
    last: Attempt | None

    def describe(self) -> str:
        plural = "s" if self.attempts != 1 else ""
        if self.ready:
            return f"ready after {self.attempts} attempt{plural} in {self.elapsed_s:.1f}s"
        why = ""
        if self.last is not None and self.last.pending:
            first = self.last.pending[0]
            cell = f"{first.source} -> {first.target} ({first.endpoint})"
            if len(self.last.result.cells) == 1:
                cell = first.endpoint
            more = len(self.last.pending) - 1
            why = f": {cell} {describe_cell(first)}" + (f" and {more} more" if more else "")
        return f"timed out after {self.attempts} attempt{plural} in {self.elapsed_s:.1f}s{why}"


def _longest_timeout(loaded: LoadedMatrix) -> float:
    matrix = loaded.matrix
    own = [t.timeout for t in matrix.targets.values() if t.timeout is not None]
    return max([matrix.defaults.timeout, *own])


async def attempt_once(
    loaded: LoadedMatrix,
    *,
    number: int | None = 1,
    elapsed_before: float | None = None,
    attempt_timeout: float | None = None,
    select: Selection | None = None,
) -> Attempt:
    """One bounded attempt: every cell within `attempt_timeout` (or its own timeout).

    The run's deadline is the cell timeout plus a margin for starting sources, so even a matrix
    with child processes returns in bounded time.
    """
    cell_timeout = attempt_timeout or _longest_timeout(loaded)
    options = RunOptions(
        select=select or Selection(),
        timeout=attempt_timeout,
        deadline=max(cell_timeout, MIN_ATTEMPT_S) + 5.0,
        fail_on="any-failure",
    )
    started = time.monotonic()
    result = await run_matrix(loaded, options)
    elapsed = None if elapsed_before is None else elapsed_before + time.monotonic() - started
    return Attempt(number, elapsed, result)


async def wait_until_ready(  # noqa: PLR0913 - keyword-only options, as `probe-engine wait`'s
    loaded: LoadedMatrix,
    *,
    timeout: float,
    interval: float,
    attempt_timeout: float | None = None,
    select: Selection | None = None,
    on_attempt: Callable[[Attempt], None] | None = None,
) -> WaitOutcome:
    """Probe until every cell is ready or `timeout` seconds have passed."""
    if timeout <= 0 or interval <= 0:
        raise SpecError("timeout and interval must be greater than zero", field="wait")
    started = time.monotonic()
    max_attempts = math.ceil(timeout / interval) + 2
    last: Attempt | None = None
    attempts = 0
    for number in range(1, max_attempts + 1):
        attempt_started = time.monotonic()
        remaining = timeout - (attempt_started - started)
        cap = attempt_timeout
        if remaining < (attempt_timeout or _longest_timeout(loaded)):
            cap = max(remaining, MIN_ATTEMPT_S)  # the last attempt ends near the deadline
        attempts = number
        last = await attempt_once(
            loaded,
            number=number,
            elapsed_before=attempt_started - started,
            attempt_timeout=cap,
            select=select,
        )
        if not last.result.cells:
            raise SpecError("nothing to wait for: no cell matches the selection", field="--select")
        if on_attempt is not None:
            on_attempt(last)
        now = time.monotonic()
        if last.ready or now - started >= timeout:
            break
        next_start = min(attempt_started + interval, started + timeout)
        await anyio.sleep(max(0.0, next_start - now))
    return WaitOutcome(
        ready=last is not None and last.ready,
        attempts=attempts,
        elapsed_s=time.monotonic() - started,
        last=last,
    )


__all__ = [
    "Attempt",
    "WaitOutcome",
    "attempt_once",
    "cell_ready",
    "describe_cell",
    "load_wait_target",
    "target_matrix",
    "wait_until_ready",
]
