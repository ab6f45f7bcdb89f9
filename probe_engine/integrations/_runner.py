"""Runs the engine's coroutines from synchronous code that may already sit inside an event loop.

An Airflow task normally runs in a plain thread, where `anyio.run` is all it takes; but a task
can also be called from a running loop (an async test harness, a deferrable operator's helper,
a notebook), where `anyio.run` refuses to nest. Then the run gets its own loop in a worker
thread, and this thread waits for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import anyio

T = TypeVar("T")


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run_blocking(function: Callable[[], Awaitable[T]]) -> T:
    """Run `function()` to completion in a fresh event loop and return its value."""
    if not _loop_running():
        return anyio.run(function)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="probe-engine") as pool:
        return pool.submit(anyio.run, function).result()
