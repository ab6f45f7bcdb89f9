"""The `shell` source: curl, wget, nc or bash's /dev/tcp, run the way a user runs them.

One shell per run reads every cell and runs the tool per cell (in parallel), so each probe
is exactly the command a user would type, proxy variables and all.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from functools import partial

from ..agent.proxy import proxy_environment
from ..model import CellRequest
from .base import Sink, Source
from .child import ChildChannel
from .process import child_environment
from .remote import Place, RemoteRow


class ShellSource(Source):
    kind = "shell"
    shares_loopback = True

    async def run(self, batch: Sequence[CellRequest], sink: Sink) -> None:
        env = child_environment(self.spec.env, self.spec.inherit_env)
        tool = self.spec.tool
        found = shutil.which(tool, path=env.get("PATH"))
        # The rest of the row's facts (addresses, routes, resolver, pid) come from the
        # prober's preamble: the tool's view, not this process's.
        facts = {"proxy_env": proxy_environment(env), "tool": tool, "tool_path": found}
        if found is None:
            self.fail_row(sink, batch, f"{tool} is not installed here (not found on PATH)", facts)
            return
        place = Place(partial(ChildChannel, env=env), facts, env)
        await RemoteRow(self, self.name, batch, sink, place).run()
