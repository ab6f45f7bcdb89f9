"""The speed-ups that shape code elsewhere, each one measured by bench/ (section 6) and named
here with why it exists, so that none of them looks like an accident where it is used."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def frozen_heap(pause_collector: bool = False) -> Iterator[None]:
    """gc.freeze() for one run: what exists before it (the loaded matrix, every module) lives
    until it ends, and the collector stops rescanning it while thousands of results are made.
    bench/ (6): a 10,000-cell CLI run with its reports collects for ~0.3 s instead of ~0.5 s.

    `pause_collector`, for a run that ends its process (`probe-engine run`): no cyclic
    collection at all until the end. What a run makes lives until its reports are written,
    and its cyclic garbage is small (2000 http cells refused: peak RSS 77 MB paused, 82 MB
    not); the collector's scans were a tenth of the CPU of a 5000-port scan's run and report
    (32-37 ms of 340, through gc.callbacks)."""
    paused = pause_collector and gc.isenabled()
    gc.freeze()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()
        gc.unfreeze()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic collection while a command loads what it runs (pydantic's models, the
    matrix): imports make many objects and free almost none, so the collector's passes over
    them are pure cost: 22 M of a one-cell `probe-engine run`'s 1,392 M instructions
    (callgrind, bench/README.md "Scans through the command line"). Restored after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def brief_repr(result: Any) -> str:
    """A run's result in one line: Python 3.11's asyncio writes the main task's result into
    an error message (signal.getsignal in its SIGINT restore) at every anyio.run() exit, and
    pydantic's full repr of 10,000 cells takes a second or two each time (bench/ (6))."""
    return (
        f"{type(result).__name__}(cells={len(result.cells)}, "
        f"by_status={result.summary.by_status}, exit_status={result.exit_status}, "
        f"duration_s={result.duration_s})"
    )
