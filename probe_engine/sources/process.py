"""The `process` source: a child Python process with its own environment runs the agent.

This is how a PythonOperator task's view is reproduced outside Airflow: same interpreter,
the task's proxy variables, nothing inherited unless asked.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from ..agent.ship import agent_command, agent_payload
from ..model import CellRequest
from .base import Sink, Source, fail_batch
from .child import run_agent_process


def child_environment(spec_env: Mapping[str, str], inherit: bool) -> dict[str, str]:
    env = dict(os.environ) if inherit else {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    env.update(spec_env)
    return env


class ProcessSource(Source):
    kind = "process"
    shares_loopback = True

    def command(self) -> list[str]:
        return agent_command(self.spec.python or sys.executable)

    def environment(self) -> dict[str, str]:
        return child_environment(self.spec.env, self.spec.inherit_env)

    async def run(self, batch: Sequence[CellRequest], sink: Sink) -> None:
        facts: dict[str, Any] = {}

        def hello(seen: dict[str, Any]) -> None:
            facts.update(seen)
            sink.row(self.row_info(facts=facts))

        outcome = await run_agent_process(
            self.command(),
            self.environment(),
            agent_payload(self.agent_request(batch)),
            self.name,
            self.name,
            batch,
            sink,
            hello,
        )
        if outcome is None:
            return
        if facts:  # it said hello: the row ran, its cells did not
            fail_batch(sink, self.name, self.name, batch, outcome)
        else:
            self.fail_row(sink, batch, outcome)
