"""The schedule: a run every interval (with jitter), never two at once, one-off cells on demand.

A tick that finds the previous run still in flight is skipped and counted, not queued: a matrix
slower than its interval is probed as often as it can be, and the counter says so. Jitter moves
each tick by up to a tenth of the interval (and the first one anywhere within the first
interval), so a DaemonSet's pods started together do not probe in lock-step.
"""

from __future__ import annotations

import fnmatch
import logging
import random
from dataclasses import replace
from datetime import datetime, timedelta

import anyio
from anyio.abc import TaskGroup

from ..compat import UTC
from ..engine import RunOptions, run_matrix
from ..errors import ProbeEngineError
from ..plan import Selection
from ..results import MatrixResult
from ..spec import LoadedMatrix
from .history import History
from .matrix_file import MatrixFile
from .options import DEFAULT_RUN_DEADLINE, ServeOptions

log = logging.getLogger("probe_engine.serve")
JITTER = 0.1


class Busy(Exception):
    """Too many one-off probes in flight."""


class Scheduler:
    """Runs the matrix on schedule and keeps what the endpoints serve."""

    def __init__(
        self,
        matrix: MatrixFile,
        options: ServeOptions,
        stopping: anyio.Event,
        rng: random.Random | None = None,
    ) -> None:
        self.matrix = matrix
        self.options = options
        self.stopping = stopping
        self.rng = rng or random.Random()
        self.history = History(options.history)
        self.latest: MatrixResult | None = None
        self.latest_number = 0
        self.last_success: datetime | None = None
        self.started = 0
        self.runs = 0
        self.run_errors = 0
        self.skipped = 0
        self.running = False
        self.next_run_at: datetime | None = None
        self.probes_in_flight = 0
        self.idle = anyio.Event()
        self.idle.set()

    # --- runs ------------------------------------------------------------------------------

    def run_options(self, loaded: LoadedMatrix, select: Selection | None = None) -> RunOptions:
        base = self.options.run
        deadline = base.deadline or loaded.matrix.defaults.deadline or DEFAULT_RUN_DEADLINE
        return replace(base, deadline=deadline, select=select or base.select)

    async def run_once(self) -> None:
        """One scheduled run; its result replaces the latest unless serve is stopping."""
        if self.running:
            raise RuntimeError("a run is already in flight")  # the ticker never lets this happen
        self.running = True
        self.idle = anyio.Event()
        self.started += 1
        number = self.started
        loaded = self.matrix.current
        try:
            result = await run_matrix(loaded, self.run_options(loaded), None, self.stopping)
        except ProbeEngineError as exc:
            self.run_errors += 1
            log.error("run %d failed: %s", number, exc)
            return
        finally:
            self.running = False
            self.idle.set()
        if result.interrupted:
            log.info("run %d interrupted: serve is stopping", number)
            return
        self.runs += 1
        self.latest, self.latest_number = result, number
        if result.exit_status == 0:
            self.last_success = result.finished_at
        self.history.record(number, result)
        summary = result.summary
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(summary.by_status.items()))
        log.info(
            "run %d: %d cells in %.2f s (%s); %d unmet, %d findings",
            number,
            summary.total,
            result.duration_s,
            statuses or "none",
            summary.expectations.unmet,
            len(result.findings),
        )

    def _period(self) -> float:
        interval = self.options.interval
        if not self.options.jitter:
            return interval
        return interval * (1 + self.rng.uniform(-JITTER, JITTER))

    def _first_delay(self) -> float:
        if self.options.once_at_start:
            return 0.0
        if self.options.jitter:
            return self.rng.uniform(0, self.options.interval)
        return self.options.interval

    async def tick_forever(self, runs: TaskGroup) -> None:
        """Start a run at every tick, or count the tick as skipped; cancel to stop."""
        due = anyio.current_time() + self._first_delay()
        while True:
            self._announce(due)
            await anyio.sleep_until(due)
            if self.stopping.is_set():
                return
            if self.running:
                self.skipped += 1
                log.warning(
                    "run skipped: run %d is still in flight (%d skipped so far)",
                    self.started,
                    self.skipped,
                )
            else:
                runs.start_soon(self.run_once)
            due += self._period()
            due = max(due, anyio.current_time())  # the loop was held up: no burst of ticks

    def _announce(self, due: float) -> None:
        self.next_run_at = datetime.now(UTC) + timedelta(seconds=due - anyio.current_time())

    # --- one-off cells ---------------------------------------------------------------------

    async def probe(self, source: str, target: str) -> MatrixResult:
        """The cells source x target (names or globs) of the matrix in use, run now, apart
        from the schedule: only the targets named are resolved."""
        if self.probes_in_flight >= self.options.max_probes:
            raise Busy(f"{self.probes_in_flight} one-off probes are in flight already")
        loaded = self.matrix.current
        matrix = loaded.matrix
        selection = Selection(sources=(source,), targets=(target,))
        selection.check(matrix)  # SpecError: the glob names nothing the matrix declares
        targets = {name: spec for name, spec in matrix.targets.items() if _names(target, name)}
        sources = {
            name: spec for name, spec in matrix.sources.items() if _names(source, name, row=True)
        }
        part = LoadedMatrix(
            matrix.model_copy(update={"targets": targets, "sources": sources}),
            loaded.path,
            loaded.sha256,
        )
        self.probes_in_flight += 1
        try:
            return await run_matrix(part, self.run_options(part, selection), None, self.stopping)
        finally:
            self.probes_in_flight -= 1


def _names(pattern: str, name: str, row: bool = False) -> bool:
    """Whether a source or target `name` may hold what `pattern` selects: the name itself, or
    one of its rows (source/pod) or columns (target:port, target/via)."""
    if pattern == "*" or fnmatch.fnmatchcase(name, pattern):
        return True
    separators = "/" if row else ":/|"
    return any(pattern.startswith(name + sep) for sep in separators)
