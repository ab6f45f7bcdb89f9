"""The `local` source: probes from this very process (in an Airflow task: the task's view)."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

import anyio
import anyio.from_thread
import anyio.to_thread

from ..agent.facts import gather
from ..agent.records import CellOutcome
from ..agent.runner import run_batch
from ..model import CellRequest
from .base import Sink, Source, make_results

CUT_WAIT = 1.0  # seconds a cut run waits for the runner to tell where its cells were


class LocalSource(Source):
    kind = "local"
    shares_loopback = True

    async def run(self, batch: Sequence[CellRequest], sink: Sink) -> None:
        sink.row(self.row_info(facts=gather()))
        by_id = {r.id: r for r in batch}
        send, receive = anyio.create_memory_object_stream[list[CellOutcome]](math.inf)
        stop = threading.Event()
        request = self.agent_request(batch)
        matrix = self.settings.context.matrix

        # Results the runner gives once the run is cut (each cell in flight with the phases it
        # finished and the one it was in): no event loop to hand them to any more.
        late: list[CellOutcome] = []
        ended = threading.Event()

        def emit(results: list[CellOutcome]) -> None:
            if stop.is_set():
                late.extend(results)
                return
            try:
                anyio.from_thread.run_sync(send.send_nowait, results)
            except (RuntimeError, anyio.ClosedResourceError, anyio.BrokenResourceError):
                stop.set()  # the run was cancelled under us: stop probing
                late.extend(results)

        def work() -> None:
            try:
                run_batch(request, emit, stop)
            finally:
                ended.set()

        async def run_and_close() -> None:
            try:
                # On cancellation, return at once; the runner sees `stop` within 50 ms.
                await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
            finally:
                stop.set()
                send.close()

        def report(results: list[CellOutcome]) -> None:
            pairs = ((by_id[data["id"]], data) for data in results)
            for result in make_results(self.name, self.name, pairs, matrix):
                sink.result(result)

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(run_and_close)
                async with receive:
                    async for results in receive:
                        report(results)
        finally:
            stop.set()
            with anyio.CancelScope(shield=True), anyio.move_on_after(CUT_WAIT):
                await anyio.to_thread.run_sync(ended.wait, CUT_WAIT)
            report(list(late))
