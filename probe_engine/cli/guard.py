"""A command's faults as the command line tells them: one line on stderr and an exit status."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn

import click

from ..compat import BaseExceptionGroup


def guard(action: Callable[[], int]) -> NoReturn:
    """Run a command: bad input and engine faults become one line and an exit status."""
    from ..errors import EngineError, SpecError

    try:
        status = action()
    except BaseExceptionGroup as group:  # raised inside a task group (the live display's)
        found = _first_of(group, (SpecError, EngineError))
        if found is None:
            raise
        status = _fail(found)
    except (SpecError, EngineError) as exc:
        status = _fail(exc)
    sys.exit(status)


def _fail(exc: BaseException) -> int:
    from ..errors import SpecError
    from ..status import EXIT_ENGINE, EXIT_USAGE

    if isinstance(exc, SpecError):
        click.echo(str(exc), err=True)
        return EXIT_USAGE
    click.echo(f"probe-engine: {exc}", err=True)
    return EXIT_ENGINE


def _first_of(
    group: BaseExceptionGroup[BaseException], kinds: tuple[type[BaseException], ...]
) -> BaseException | None:
    for exc in group.exceptions:
        if isinstance(exc, kinds):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = _first_of(exc, kinds)
            if found is not None:
                return found
    return None


def exit_past_lingering_threads(code: int | str | None) -> None:
    """A run cut short (serve stopping, a deadline, Ctrl-C) can leave the in-process agent's
    worker threads inside a TLS handshake or a lookup. exit() would run OpenSSL's cleanup
    under them: SIGSEGV after the work is done (issue #17). Flush, then end without exit
    handlers, as the agent's own process does. Returns when no such thread is left."""
    workers = sys.modules.get("probe_engine.agent.workers")  # never imported: no threads
    if workers is None or not workers.lingering():
        return
    import contextlib
    import logging
    import os

    if isinstance(code, str):
        print(code, file=sys.stderr)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)
