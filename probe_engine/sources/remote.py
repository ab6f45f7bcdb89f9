"""The remote runner: one policy for probing from another place, whatever the channel.

For one row (a child process, a network namespace, a container, a pod) it starts the agent
(`python3 -c BOOTSTRAP`, modules and batch on stdin), takes its hello as the row's facts, and
where the place has no usable Python (and `python` was not asked for by name) runs the shell
prober instead with `tool: auto`. Every exec gets one time budget; a program that answered no
cell fails the whole row, one that did fails only its unanswered cells; every ending is
told in the same words; whatever a cut-short program leaves in the place is stopped, shielded
from cancellation and within a bound. Sources only find their places, open channels (see
channel.py) and contribute the facts they read from outside.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any, Literal, Optional

import anyio
import anyio.lowlevel
import anyio.to_thread

from ..agent.facts import PlaceFacts
from ..agent.proxy import redact
from ..agent.records import CellOutcome
from ..agent.ship import MAGIC, agent_command, batch_line, modules_line
from ..model import CellRequest
from ..results import SourceInfo
from .base import Sink, Source, fail_batch, make_result
from .channel import MAX_LINE, Channel, ChannelError, ExitStatus
from .prober import ProberSession, prober_launch
from .session import AgentSession, Session

STARTUP_GRACE = 30.0  # an exec starting and an interpreter loading, through an API server
WAVE_SLACK = 2.0  # per wave of cells, beyond its longest timeout: the agent's own work
EXIT_WAIT = 5.0  # the place may report the exit a moment after the output ended
STOP_WITHIN = 3.0  # stopping leftovers and closing the channel, whatever cancelled us
EVIDENCE = 600  # characters of stderr (or stray output) kept in a failure message
# What runtimes and shells say when the program of an exec does not exist.
NOT_FOUND_WORDS = ("executable file not found", "no such file or directory", "not found in $path")

OpenChannel = Callable[[Sequence[str]], Channel]
# A program's whole stdin, made for the far end's bytecode magic number (None: unknown).
Payload = Callable[[Optional[str]], bytes]


@dataclass
class Place:
    """Where one row's probes run, as its source found it: how to start a program there
    (`open`: a Channel class with the place's arguments bound), the facts the source read from
    outside (the program's own view wins where both speak), and the environment programs see
    there, when the source knows it (curl's proxy rules are modelled from it)."""

    open: OpenChannel
    facts: dict[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] | None = None
    # Its commands travel in a URL (pod exec): the prober's script goes on stdin instead.
    short_commands: bool = False
    # Where to probe from instead when this place cannot (no python, or nothing at all).
    elsewhere: Elsewhere | None = None


@dataclass(frozen=True)
class Elsewhere:
    """Another place in the same network namespace, for when this one cannot probe: a Docker
    sidecar beside a container, an ephemeral container in a pod. `when`: "no-python" (taken
    instead of the shell prober), "no-probe" (only when neither python nor sh can run here)
    or "always" (this place is never tried). `reach()` makes or finds it, or raises
    ChannelError with why it cannot; `what` names it for the row's note ("an ephemeral
    container (image python:3.12-slim)")."""

    when: Literal["always", "no-python", "no-probe"]
    reach: Callable[[], Awaitable[Place]]
    what: str


def budget(batch: Sequence[CellRequest], concurrency: int, default_timeout: float) -> float:
    """How long one exec may take for `batch` before it is declared stuck: the cells run in
    waves of `concurrency`, each wave within its longest timeout."""
    waves = math.ceil(len(batch) / max(1, concurrency))
    longest = max((r.timeout for r in batch), default=default_timeout)
    return STARTUP_GRACE + waves * (longest + WAVE_SLACK)


def command_missing(status: ExitStatus, words: str) -> bool:
    """The place could not find the program: the runtime's words, with no exit status or the
    shells' 126/127."""
    if status.code not in (None, 126, 127):
        return False
    lowered = words.lower()
    return any(needle in lowered for needle in NOT_FOUND_WORDS)


@dataclass
class Ended:
    """How one exec went: its channel (for its words), exit status, and whether it was cut off
    at the time budget."""

    channel: Channel
    status: ExitStatus
    timed_out: bool


class RemoteRow:
    """One row probed from one place. What runs there follows the source's spec: `tool:` (the
    shell prober), else `python` (default: python3 in other places, this interpreter here)."""

    def __init__(
        self, source: Source, row: str, batch: Sequence[CellRequest], sink: Sink, place: Place
    ) -> None:
        self.source, self.row, self.batch, self.sink = source, row, batch, sink
        self.place, self.facts = place, place.facts
        spec = source.spec
        self.tool: str | None = getattr(spec, "tool", None)
        self.python: str = getattr(spec, "python", None) or sys.executable
        # Named in the matrix, its absence is an error; by default, the shell prober takes over.
        self.python_given = "python" in spec.model_fields_set
        self.status: Literal["ok", "error"] = "ok"
        self.message: str | None = None
        self.answered: set[int] = set()
        self.budget = budget(batch, source.settings.concurrency, source.settings.timeout)

    # --- reporting ----------------------------------------------------------------------------

    def emit(self) -> None:
        """Report the row as it stands (the last report of a row wins)."""
        self.sink.row(
            SourceInfo(
                name=self.row,
                source_name=self.source.name,
                kind=self.source.kind,
                status=self.status,
                message=self.message,
                facts=dict(self.facts),
            )
        )

    def report(self, request: CellRequest, data: CellOutcome) -> None:
        """One cell's answer, agent-shaped."""
        matrix = self.source.settings.context.matrix
        self.sink.result(make_result(self.row, self.source.name, request, data, matrix))

    def fail(self, message: str, whole_row: bool = True) -> None:
        """Unanswered cells become source-error; `whole_row`: the row itself failed."""
        message = redact(message)
        if whole_row:
            self.status, self.message = "error", message
            self.emit()
        unanswered = (r for r in self.batch if r.id not in self.answered)
        fail_batch(self.sink, self.row, self.source.name, unanswered, message)

    # --- the policy ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Probe every cell of the batch from this place; report rows and cells."""
        self.emit()
        await self._probe()
        self.emit()  # the last word: how each exec ended

    async def _probe(self) -> None:
        if self._may_move("always"):
            await self._move(None)
            return
        tool = self.tool
        if tool is None:
            missing = await self._agent()
            if missing is None:
                return
            if self.python_given:
                self.fail(missing)
                return
            if self._may_move("no-python"):
                await self._move(missing)
                return
            self.facts["note"] = (
                f"{missing}: probed with the shell prober instead (tool: auto); each cell's "
                "`tool` says which tool ran"
            )
            self.facts["python"] = None
            tool = "auto"
        await self._prober(tool)

    async def _agent(self) -> str | None:
        """Run the agent. Why it cannot run here when the shell prober should take over (no
        usable python), else None (every cell is reported)."""
        python = self.python
        begun = time.monotonic()

        def hello(seen: PlaceFacts) -> None:
            self.facts.update(seen)
            self.facts.update(runner="agent", tool="agent")
            self.facts["exec"] = {"command": python, "hello_ms": _ms(begun)}
            self.emit()

        session = AgentSession(self.batch, self.report, python, hello)
        request = self.source.agent_request(self.batch)
        batch = lru_cache(maxsize=1)(partial(batch_line, request))

        def payload(magic: str | None) -> bytes:
            return modules_line(magic == MAGIC) + batch()

        def prepare() -> None:
            modules_line(True)  # what a Python of this minor version asks for
            batch()

        async with anyio.create_task_group() as group:
            # The input is made while the place starts the program, not after it asked.
            group.start_soon(partial(anyio.to_thread.run_sync, prepare))
            ended = await self._exchange(agent_command(python), payload, session)
        if ended is None:
            return None
        if session.complete:
            return None
        stderr = ended.channel.stderr.text()
        if not session.started and ended.status.code == 1 and "SyntaxError" in stderr:
            return f"{python}{ended.channel.in_place()} is too old for the agent (needs 3.8+)"
        if self._judge(ended, session, python):
            return f"no {python}{ended.channel.in_place()}"
        return None

    async def _prober(self, tool: str) -> None:
        """Run the shell prober with `tool` (auto: whichever the place has)."""
        self.facts.update(runner="shell", tool=tool)
        self.facts["exec"] = {"command": "sh"}
        begun = time.monotonic()

        def facts(seen: dict[str, Any]) -> None:
            self.facts.update(seen)
            self.facts["exec"]["facts_ms"] = _ms(begun)
            self.emit()

        session = ProberSession(self.batch, self.report, self.place.env, facts)
        command, payload = prober_launch(
            tool, self.source.settings.concurrency, self.batch, loader=self.place.short_commands
        )
        ended = await self._exchange(command, lambda _magic: payload, session)
        if ended is None:
            return
        where = ended.channel.in_place()
        if session.missing_tool:
            self.facts.update(session.preamble.facts())
            self.fail(f"{session.missing_tool} is not installed{where} (not on PATH)")
            return
        if session.complete or not self._judge(ended, session, "sh"):
            return
        if self.tool is None:  # python was missing too
            why = f"neither {self.python} nor sh can run{where}: nothing here can probe"
            if self._may_move("no-probe"):
                await self._move(why)
                return
        else:
            why = f"no sh{where}: the shell prober cannot run {tool}"
        self.fail(ended.channel.explain(f"{why} ({self._describe(ended, session)})"))

    def _may_move(self, when: str) -> bool:
        elsewhere = self.place.elsewhere
        if elsewhere is None:
            return False
        return when == elsewhere.when or (when == "no-probe" and elsewhere.when != "always")

    async def _move(self, why: str | None) -> None:
        """Probe from the place beside this one (once: it has no place beside it); `why`
        this place could not (None: asked for always)."""
        elsewhere = self.place.elsewhere
        assert elsewhere is not None
        self.place.elsewhere = None
        try:
            place = await elsewhere.reach()
        except ChannelError as exc:
            failed = f"{elsewhere.what} could not be used either: {exc}"
            self.fail(f"{why}; {failed}" if why else str(exc))
            return
        self.place = place
        self.facts.update(place.facts)
        self.facts.pop("python", None)
        self.facts["note"] = (
            f"{why}: probed from {elsewhere.what} instead"
            if why
            else f"probed from {elsewhere.what} (always: true)"
        )
        self.emit()
        await self._probe()

    def _judge(self, ended: Ended, session: Session, program: str) -> bool:
        """Report the cells an exec left unanswered. True, with nothing reported, when the
        place has no `program` at all (the caller knows what that means)."""
        channel, status = ended.channel, ended.status
        noise, stderr = _noise(session), channel.stderr.text()
        if not session.started and not ended.timed_out:
            if command_missing(status, " ".join((status.words or "", noise, stderr))):
                return True
            if status.code in (126, 127):  # found, but it could not be run
                why = f"cannot exec {program}{channel.in_place()}: {noise or stderr}"
                self.fail(channel.explain(why))
                return False
        reason = self._describe(ended, session)
        self.facts["exec"]["failure"] = reason
        if session.ran:
            self.fail(reason, whole_row=False)  # the row ran: its answers stand
        else:
            self.fail(channel.explain(reason))
        return False

    # --- one exec -----------------------------------------------------------------------------

    async def _exchange(
        self, command: list[str], payload: Payload, session: Session
    ) -> Ended | None:
        """Start `command` in the place, give it `payload`, feed its lines to `session` within
        the budget; stop what it leaves behind if cut short. None if it did not start (the row
        has failed then). The agent is sent its input once its bootstrap says it is ready,
        for its magic number, unless the input travels with the command (a probe pod's)."""
        channel = self.place.open(command)
        handshake = isinstance(session, AgentSession) and not channel.carries_input
        if not handshake:
            channel.input = payload(None)
        begun = time.monotonic()
        try:
            await channel.open()
        except ChannelError as exc:
            self.fail(channel.explain(str(exc)))
            return None
        cut_short = True  # until its output ended within the budget
        run_cut = False  # the run itself was cut (its deadline, an interrupt)
        try:
            with anyio.move_on_after(self.budget) as scope:
                async with anyio.create_task_group() as group:
                    group.start_soon(_send, channel, session if handshake else None, payload)
                    await channel.receive(session.feed)
                    group.cancel_scope.cancel()  # stdin may still be in flight if it died
            cut_short = scope.cancelled_caught
            status = ExitStatus()
            if not cut_short:
                with anyio.move_on_after(EXIT_WAIT):
                    status = await channel.exit_status()
        except BaseException:
            run_cut = True
            raise
        finally:
            leftover = session.leftover(cut_short)
            with anyio.CancelScope(shield=True):
                if leftover is not None and run_cut and isinstance(session, AgentSession):
                    # Stopped (SIGTERM), the agent reports each cell in flight with the phases
                    # it finished and the one it was in: read those last lines as it stops.
                    with anyio.move_on_after(STOP_WITHIN):
                        async with anyio.create_task_group() as last:
                            last.start_soon(_last_words, channel, session)
                            await anyio.lowlevel.checkpoint()  # reading before stopping
                            await channel.stop(leftover)
                elif leftover is not None:
                    with anyio.move_on_after(STOP_WITHIN):
                        await channel.stop(leftover)
                with anyio.move_on_after(STOP_WITHIN):
                    await channel.aclose()
            self.answered = session.answered
        self.facts.setdefault("exec", {"command": command[0]}).update(
            exit_code=status.code, seconds=round(time.monotonic() - begun, 3)
        )
        return Ended(channel, status, cut_short)

    def _describe(self, ended: Ended, session: Session) -> str:
        """Why the cells of this exec got no answer: one sentence for every place."""
        channel = ended.channel
        evidence = channel.stderr.text() or _noise(session)
        subject = f"{session.program}{channel.in_place() if channel.where else ''}"
        labelled = False  # the place's own words come first; stderr follows, named
        if ended.timed_out:
            sentence = f"{subject} did not finish within {self.budget:.0f} s and was stopped"
        elif not ended.status.known and channel.lost:
            sentence, labelled = channel.lost, True
        else:
            sentence = f"{subject} {ended.status.describe()}"
            labelled = bool(ended.status.words)
            if channel.lost:
                sentence += f"; {channel.lost}"
        if channel.overflowed:
            sentence += f"; an output line longer than {MAX_LINE} bytes was dropped"
        if evidence:
            sentence += ("; stderr: " if labelled else ": ") + evidence[-EVIDENCE:]
        return sentence


async def _send(channel: Channel, session: Session | None, payload: Payload) -> None:
    """The program's input: at once, or when the agent of `session` is ready, for it."""
    if isinstance(session, AgentSession):
        await session.ready.wait()
        await channel.send(await anyio.to_thread.run_sync(payload, session.magic))
    else:
        await channel.send(channel.input)


async def _last_words(channel: Channel, session: Session) -> None:
    """What a stopping program still writes (its cells cut short), until its output ends."""
    with contextlib.suppress(Exception):  # a channel that cannot read any more has said all
        await channel.receive(session.feed)


def _noise(session: Session) -> str:
    return " | ".join(session.noise[:3])


def _ms(since: float) -> float:
    return round((time.monotonic() - since) * 1000.0, 1)
