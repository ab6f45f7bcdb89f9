"""Daemon worker threads for the agent's blocking calls (getaddrinfo, nameserver queries, HTTP
exchanges): their answers come back through a queue and wake the runner's selector.

Standard library only and Python 3.8 compatible: shipped inside the agent.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
from typing import Any, Callable, Dict, Tuple

THREAD_NAME = "probe-worker"

Job = Tuple[
    Callable[..., Dict[str, Any]], Tuple[Any, ...], Dict[str, Any], Callable[[Dict[str, Any]], None]
]


class Workers:
    """Daemon threads for blocking calls: a hung getaddrinfo must never hold the exit."""

    def __init__(
        self,
        size: int,
        done: queue.SimpleQueue[tuple[Callable[[dict[str, Any]], None], dict[str, Any]]],
        wake: socket.socket,
    ) -> None:
        self.size = size
        self.jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self.done = done
        self.wake = wake
        self.threads: list[threading.Thread] = []
        self.busy = 0

    def submit(
        self,
        function: Callable[..., dict[str, Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        callback: Callable[[dict[str, Any]], None],
    ) -> None:
        self.busy += 1
        if len(self.threads) < self.size and self.busy > len(self.threads):
            thread = threading.Thread(target=self._work, name=THREAD_NAME, daemon=True)
            thread.start()
            self.threads.append(thread)
        self.jobs.put((function, args, kwargs, callback))

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            function, args, kwargs, callback = job
            try:
                result = function(*args, **kwargs)
            except Exception as exc:  # a fault of the check itself: still an answer
                result = {"status": "source-error", "message": f"{type(exc).__name__}: {exc}"}
            self.done.put((callback, result))
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
