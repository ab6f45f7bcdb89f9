"""What the labs' session fixtures share: a missing prerequisite fails under CI=true instead of
skipping (a suite that silently skips its labs tests nothing), and a CI timeout's SIGTERM
unwinds pytest so that every lab is torn down."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """CI=true (read at each call: tests set it to check this very behaviour)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def unavailable(what: str, reason: str) -> NoReturn:
    """`what` cannot run here: fail under CI, skip elsewhere, saying why."""
    reason = f"{what} unavailable: {reason}"
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing prerequisite fails the suite)", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """A CI timeout sends SIGTERM, which ends Python without running finalizers. Turned into
    KeyboardInterrupt, pytest unwinds and the lab's finalizer runs. (A SIGKILL is handled by
    the next run's clean-up instead.)"""
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield  # someone else owns SIGTERM (or we cannot set handlers here): leave it alone
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
