"""The `process` source: a child Python process with its own environment runs the agent.

This is how a PythonOperator task's view is reproduced outside Airflow: same interpreter,
the task's proxy variables, nothing inherited unless asked.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from functools import partial

from ..model import CellRequest
from .base import Sink, Source
from .child import ChildChannel
from .remote import Place, RemoteRow


def child_environment(spec_env: Mapping[str, str], inherit: bool) -> dict[str, str]:
    env = dict(os.environ) if inherit else {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    env.update(spec_env)
    return env


class ProcessSource(Source):
    kind = "process"
    shares_loopback = True

    async def run(self, batch: Sequence[CellRequest], sink: Sink) -> None:
        env = child_environment(self.spec.env, self.spec.inherit_env)
        place = Place(partial(ChildChannel, env=env))
        await RemoteRow(self, self.name, batch, sink, place).run()
