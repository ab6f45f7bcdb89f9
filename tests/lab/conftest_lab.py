"""The session-scoped `netlab` fixture, in a plain module so any conftest can import it:

    from tests.lab.conftest_lab import netlab  # noqa: F401

Missing prerequisites (not root, no `ip`, iptables, dnsmasq or sysctl) skip the lab tests with
the reason, except under CI=true, where they FAIL: CI runs as root with everything installed,
so a missing piece there is a broken pipeline, and a skip would hide it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import pytest

from tests.lab.netlab import Lab, missing_prerequisites

DEFAULT_PREFIX = "pe-test"  # not the CLI's "pe": a lab brought up by hand survives a test run


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require_lab_prerequisites() -> None:
    """Return if the lab can run here; else fail under CI, skip elsewhere."""
    problems = missing_prerequisites()
    if not problems:
        return
    reason = "network-namespace lab unavailable: " + "; ".join(problems)
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing prerequisite fails the suite)", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """A CI timeout sends SIGTERM, which ends Python without running finalizers. Turned into
    KeyboardInterrupt, pytest unwinds and the lab's finalizer runs."""
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


# Labs this process has up, by prefix. Each conftest or module that imports `netlab` gets its
# own fixture definition; without this, a second one would rebuild (and so first tear down)
# the lab the first one still holds.
_UP: dict[str, Lab] = {}


@pytest.fixture(scope="session")
def netlab() -> Iterator[Lab]:
    """The lab, up for the whole session, torn down at the end whatever happened.

    NETLAB_PREFIX overrides the namespace prefix (default pe-test)."""
    require_lab_prerequisites()
    prefix = os.environ.get("NETLAB_PREFIX", DEFAULT_PREFIX)
    if prefix in _UP:
        yield _UP[prefix]  # brought up by another definition of this fixture, which owns it
        return
    with sigterm_as_interrupt():
        lab = Lab.up(prefix)  # cleans up if it fails
        _UP[prefix] = lab
        try:
            yield lab
        finally:
            del _UP[prefix]
            lab.down()
