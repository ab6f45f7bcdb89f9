"""The `shell` source: curl, wget, nc or bash's /dev/tcp, run the way a user runs them.

One shell per run reads every cell and runs the tool per cell (in parallel), so each probe
is exactly the command a user would type, proxy variables and all.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Awaitable, Callable, Sequence

from anyio.abc import ByteReceiveStream, Process

from ..agent.facts import gather
from ..model import CellRequest
from .agent_session import read_lines
from .base import Sink, Source, fail_batch, make_result
from .child import run_child
from .process import child_environment
from .shell_tools import classify_line, request_lines, shell_command


class ShellOutput:
    """Turns the prober's lines into results; shared with the container fallbacks."""

    def __init__(
        self,
        row: str,
        source_name: str,
        batch: Sequence[CellRequest],
        sink: Sink,
        env: dict[str, str] | None = None,
    ) -> None:
        self.row = row
        self.source_name = source_name
        self.by_id = {str(r.id): r for r in batch}
        self.sink = sink
        self.env = env
        self.answered: set[int] = set()
        self.finished = False
        self.started = time.monotonic()

    @property
    def complete(self) -> bool:
        """The prober said done, and answered every cell."""
        return self.finished and len(self.answered) == len(self.by_id)

    def feed(self, line: str) -> None:
        if line.startswith("@@D"):
            self.finished = True
            return
        if not line.startswith("@@R\t"):
            return
        request = self.by_id.get(line.split("\t", 2)[1])
        if request is None or request.id in self.answered:
            return
        data = classify_line(line, request, self.env)
        if data["duration_ms"] is None:  # no nanosecond clock there: time of arrival
            data["duration_ms"] = (time.monotonic() - self.started) * 1000.0
        proxy = data.get("proxy")
        plan = request.column.plan or {}
        url = str(plan.get("url", ""))
        upper = bool(self.env and self.env.get("HTTP_PROXY")) and url.startswith("http:")
        if proxy is not None and upper and proxy.get("variable") != "HTTP_PROXY":
            proxy["ignored"] = ["HTTP_PROXY"]  # set, and curl never reads it (httpoxy)
        self.answered.add(request.id)
        self.sink.result(make_result(self.row, self.source_name, request, data))

    async def read(self, stream: ByteReceiveStream) -> None:
        await read_lines(stream, lambda line: self.feed(line.decode(errors="replace")), 1 << 16)


class ShellSource(Source):
    kind = "shell"
    shares_loopback = True

    async def run(self, batch: Sequence[CellRequest], sink: Sink) -> None:
        env = child_environment(self.spec.env, self.spec.inherit_env)
        tool = self.spec.tool
        found = shutil.which(tool, path=env.get("PATH"))
        facts = gather(env)
        for key in ("pid", "python", "executable"):  # this process's, not the tool's
            facts.pop(key, None)
        facts["tool"] = tool
        facts["tool_path"] = found
        if found is None:
            self.fail_row(sink, batch, f"{tool} is not installed here (not found on PATH)", facts)
            return
        sink.row(self.row_info(facts=facts))
        output = ShellOutput(self.name, self.name, batch, sink, env)
        command = shell_command(tool, self.settings.concurrency)
        reason = await run_prober_process(command, env, batch, output)
        if reason is not None:
            fail_batch(sink, self.name, self.name, batch, reason, output.answered)


async def run_prober_process(
    command: list[str],
    env: dict[str, str] | None,
    batch: Sequence[CellRequest],
    output: ShellOutput,
    on_started: Callable[[Process], Awaitable[None]] | None = None,
) -> str | None:
    """Run the shell prober as a child (one per source per run) and feed its lines to `output`.

    `on_started` sees the process before it gets its cells (the netns source reads the
    namespace's routes through it). Returns why some cells got no answer, or None.
    """
    ended = await run_child(command, env, request_lines(batch), output.read, on_started)
    if isinstance(ended, str):
        return ended
    if len(output.answered) < len(batch):
        return ended.describe()
    return None
