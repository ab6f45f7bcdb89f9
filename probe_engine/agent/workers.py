"""Daemon worker threads for the agent's blocking calls (getaddrinfo, nameserver queries, HTTP
exchanges): their answers come back through a queue and wake the runner's selector.

Standard library only and Python 3.8 compatible: shipped inside the agent.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
from typing import Callable, TypeVar

THREAD_NAME = "probe-worker"

Result = TypeVar("Result")
# A job runs on a worker and gives back what the runner's thread calls with its answer.
Job = Callable[[], Callable[[], None]]


class Workers:
    """Daemon threads for blocking calls: a hung getaddrinfo must never hold the exit."""

    def __init__(
        self, size: int, done: queue.SimpleQueue[Callable[[], None]], wake: socket.socket
    ) -> None:
        self.size = size
        self.jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self.done = done
        self.wake = wake
        self.threads: list[threading.Thread] = []
        self.busy = 0

    def submit(
        self,
        function: Callable[[], Result],
        callback: Callable[[Result], None],
        fault: Callable[[str], Result],
    ) -> None:
        """Run `function` on a worker; `callback` gets its answer on the runner's thread, or
        `fault`'s answer to the exception's words (a fault of the check itself is an answer)."""
        self.busy += 1
        if len(self.threads) < self.size and self.busy > len(self.threads):
            thread = threading.Thread(target=self._work, name=THREAD_NAME, daemon=True)
            thread.start()
            self.threads.append(thread)

        def job() -> Callable[[], None]:
            try:
                result = function()
            except Exception as exc:
                result = fault(f"{type(exc).__name__}: {exc}")
            return lambda: callback(result)

        self.jobs.put(job)

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            self.done.put(job())
            with contextlib.suppress(OSError):
                self.wake.send(b"\0")

    def close(self) -> None:
        # Jobs not begun yet are dropped: nobody waits for their answers any more (a run cut
        # short), and a worker that takes none starts no TLS handshake while the process exits.
        with contextlib.suppress(queue.Empty):
            while True:
                self.jobs.get_nowait()
        for _ in self.threads:
            self.jobs.put(None)


def lingering() -> int:
    """How many worker threads are still in a blocking call (a cut run leaves them there: a
    TLS handshake, a request, getaddrinfo), in any runner of this process.

    Such a thread must not run while the C library's exit handlers do: OpenSSL's atexit
    cleanup frees what a handshake or a CA load in another thread is using, and the process
    dies of SIGSEGV after its work is done (issue #17). A process that may leave them (the
    agent, the command line) ends with os._exit() when this is not 0."""
    return sum(1 for t in threading.enumerate() if t.name == THREAD_NAME and t.is_alive())
