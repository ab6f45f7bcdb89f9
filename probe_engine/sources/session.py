"""What the remote runner reads from a program's output, and the agent's side of it.

A session turns one row's output lines into cell results and remembers what the runner needs
to judge the end: whether the program started (said hello), which cells it answered, whether
it said done, its pid there (to stop it), and lines that were not its own (a shell's banner,
a runtime's error). The shell prober's session is in prober.py.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable, Sequence
from typing import cast

import anyio

from ..agent.facts import PlaceFacts
from ..agent.proxy import redact
from ..agent.records import CellOutcome
from ..model import CellRequest
from .channel import Leftover

NOISE_LINES = 20  # kept for the failure message; only the first few are shown
Report = Callable[[CellRequest, CellOutcome], None]  # a cell's answer, agent-shaped


class Session(abc.ABC):
    """One row's output, read line by line (`feed`)."""

    program = "the program"  # in messages: "{program} in container x was killed ..."

    def __init__(self, batch: Sequence[CellRequest], report: Report) -> None:
        self.batch = batch
        self.report = report
        self.answered: set[int] = set()
        self.started = False  # it said hello: it runs, and found what it needs
        self.finished = False  # it said done
        self.pid: int | None = None  # its process there, to stop it if the run is cut short
        self.noise: list[str] = []  # lines that were not its own

    @property
    def ran(self) -> bool:
        """It answered some cell (or said done): the row ran, its other cells failed."""
        return bool(self.answered) or self.finished

    @property
    def complete(self) -> bool:
        """It said done, and answered every cell."""
        return self.finished and len(self.answered) == len(self.batch)

    @abc.abstractmethod
    def feed(self, line: bytes) -> None:
        """One line of the program's stdout, without its newline."""

    def answer(self, request: CellRequest, data: CellOutcome) -> None:
        if request.id not in self.answered:
            self.answered.add(request.id)
            self.report(request, data)

    def keep_noise(self, text: str) -> None:
        text = text.strip()
        if text and len(self.noise) < NOISE_LINES:
            self.noise.append(redact(text)[:300])

    @abc.abstractmethod
    def leftover(self, cut_short: bool) -> Leftover | None:
        """What to stop in the place once the program's output has ended (None: nothing)."""


class AgentSession(Session):
    """The agent's JSON lines: ready (its bytecode's magic number: the runner sends its
    modules then), hello (its facts, to `on_hello`), one result per cell, done."""

    program = "the agent"

    def __init__(
        self,
        batch: Sequence[CellRequest],
        report: Report,
        python: str,
        on_hello: Callable[[PlaceFacts], None],
    ) -> None:
        super().__init__(batch, report)
        self.python = python
        self.on_hello = on_hello
        self.by_id = {r.id: r for r in batch}
        self.ready = anyio.Event()  # its bootstrap runs and waits for its modules
        self.magic: str | None = None

    def feed(self, line: bytes) -> None:
        text = line.strip()
        if not text:
            return
        try:
            message = json.loads(text)
        except ValueError:
            self.keep_noise(text.decode(errors="replace"))
            return
        kind = message.get("type")
        if kind == "ready":
            magic = message.get("magic")
            self.magic = magic if isinstance(magic, str) else None
            self.ready.set()
        elif kind == "result":
            request = self.by_id.get(message.get("id"))
            if request is not None:
                self.answer(request, message)
        elif kind == "hello":
            facts = cast(PlaceFacts, message.get("facts") or {})  # the agent's hello
            self.started = True
            self.pid = facts.get("pid") if isinstance(facts.get("pid"), int) else None
            self.on_hello(facts)
        elif kind == "done":
            self.finished = True

    def leftover(self, cut_short: bool) -> Leftover | None:
        # The agent starts nothing that outlives it: only a cut-short one needs stopping.
        if cut_short and self.pid is not None and self.pid > 1:
            return Leftover(self.pid, self.python)
        return None
