"""Session-scoped fixtures for the Docker lab, in a plain module so any conftest can import them:

    from tests.dockerlab.conftest_docker import docker_engine, docker_images, docker_lab, docker_url

- ``docker_engine`` -> ``DockerDaemon``: a private dockerd (``.url`` is ``unix://...``), stopped
  and cleaned up at the end of the session.
- ``docker_url`` -> ``str``: the same URL, for ``aiodocker.Docker(url=...)``.
- ``docker_images`` -> ``{"busybox": ImageInfo, "python": ImageInfo}``: pe-busybox, pe-python.
- ``docker_lab`` -> ``Lab``: networks pe-minikube and pe-default; containers pe-api (HTTP 8000,
  closed 8001, blackhole 8002, silent 8003), pe-scheduler, pe-busybox (pe-minikube), pe-worker
  (pe-default), pe-none (network none). Removed at the end of the session.

Fixtures hand out data, not aiodocker clients (a client belongs to one event loop): open
``aiodocker.Docker(url=docker_url)`` in the test's own loop.

Missing prerequisites (not root, no dockerd, containerd, runc, busybox-static...) skip the tests
with the reason, except under CI=true, where they FAIL. An engine that does not start, or an
image or lab that cannot be built, fails everywhere.
Environment: PE_DOCKERLAB_CACHE (default /var/cache/probe-engine-docker) holds the data-root
(images survive between runs), the rootfs tarballs, a lock and the state file used to clean up
after a killed run. PE_DOCKERLAB_NETNS (default pedl-engine) names the engine's network
namespace: with another cache folder too, a second test session runs beside the first instead
of waiting for its lock.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import pytest

from tests.dockerlab.engine import (
    DEFAULT_CACHE_DIR,
    DaemonConfig,
    DockerDaemon,
    DockerLabError,
    ImageInfo,
    Lab,
    PrerequisiteError,
    create_lab,
    ensure_images,
    missing_prerequisites,
    remove_lab,
    run_sync,
)

__all__ = [
    "FACTS",
    "docker_engine",
    "docker_images",
    "docker_lab",
    "docker_url",
    "in_ci",
    "report_facts",
]

T = TypeVar("T")
FACTS: dict[str, str] = {}
"""Timings measured during the session (engine start, image builds, lab set-up, exec), printed
in pytest's terminal summary by ``report_facts`` (see conftest.py)."""


def report_facts(terminalreporter: Any) -> None:
    """Body of a ``pytest_terminal_summary`` hook: the Docker lab's timings, if it ran."""
    if FACTS:
        terminalreporter.section("docker lab")
        for key, value in FACTS.items():
            terminalreporter.write_line(f"{key}: {value}")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _unavailable(reason: str) -> None:
    reason = f"Docker lab unavailable: {reason}"
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing prerequisite fails the suite)", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """A CI timeout sends SIGTERM, which ends Python without finalizers; as KeyboardInterrupt,
    pytest unwinds and dockerd is stopped. (A SIGKILL is handled by the next run instead.)"""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


_SHARED: dict[str, tuple[Any, Iterator[Any]]] = {}
_USERS: dict[str, int] = {}


def _shared(key: str, make: Callable[[], Iterator[T]]) -> Iterator[T]:
    """One engine (images, lab) per test session, however many conftests or test modules
    import these fixtures: pytest makes a separate session fixture of each import, and a second
    engine would wait for the first one's cache lock. The last user tears it down."""
    if key not in _SHARED:
        made = make()
        _SHARED[key] = (next(made), made)
    _USERS[key] = _USERS.get(key, 0) + 1
    try:
        yield _SHARED[key][0]
    finally:
        _USERS[key] -= 1
        if _USERS[key] == 0:
            _value, made = _SHARED.pop(key)
            next(made, None)  # runs the teardown after its yield


def _engine() -> Iterator[DockerDaemon]:
    problems = missing_prerequisites()
    if problems:
        _unavailable("; ".join(problems))
    cache = Path(os.environ.get("PE_DOCKERLAB_CACHE", str(DEFAULT_CACHE_DIR)))
    netns = os.environ.get("PE_DOCKERLAB_NETNS") or DaemonConfig.netns
    daemon = DockerDaemon(DaemonConfig(cache_dir=cache, netns=netns))
    with _sigterm_as_interrupt():
        try:
            daemon.start()
        except PrerequisiteError as exc:
            _unavailable(str(exc))
        except DockerLabError as exc:
            pytest.fail(f"the private dockerd did not start: {exc}", pytrace=False)
        FACTS["engine start"] = f"{daemon.start_seconds:.2f} s"
        if daemon.leftover_actions:
            FACTS["cleaned up from a killed run"] = "; ".join(daemon.leftover_actions)
        try:
            yield daemon
        finally:
            daemon.stop()
            FACTS["engine stop"] = f"{daemon.stop_seconds:.2f} s"


def _images(docker_engine: DockerDaemon) -> Iterator[dict[str, ImageInfo]]:
    rootfs_dir = docker_engine.config.rootfs_dir
    try:
        images = run_sync(lambda: ensure_images(docker_engine.url, rootfs_dir))
    except (DockerLabError, OSError) as exc:
        pytest.fail(f"could not build the lab images: {exc}", pytrace=False)
    for info in images.values():
        how = (
            (
                f"built in {info.seconds:.2f} s (hash {info.plan_seconds:.2f}, tar "
                f"{'cached' if info.tar_cached else f'{info.tar_seconds:.2f}'}, import "
                f"{info.import_seconds:.2f})"
            )
            if info.built
            else f"reused in {info.seconds:.2f} s"
        )
        FACTS[f"image {info.repo}"] = f"{how}, {info.size / 1e6:.1f} MB"
    yield images


def _lab(docker_engine: DockerDaemon, docker_images: dict[str, ImageInfo]) -> Iterator[Lab]:
    url = docker_engine.url

    async def down() -> None:
        import aiodocker

        async with aiodocker.Docker(url=url) as docker:
            await remove_lab(docker)

    try:
        lab = run_sync(lambda: create_lab(url, docker_images))
    except (DockerLabError, OSError) as exc:
        with contextlib.suppress(Exception):
            run_sync(down)
        pytest.fail(f"could not create the lab: {exc}", pytrace=False)
    FACTS["lab set-up (2 networks, 5 containers)"] = f"{lab.setup_seconds:.2f} s"
    try:
        yield lab
    finally:
        run_sync(down)


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[DockerDaemon]:
    """A private dockerd for the session (see engine.DockerDaemon)."""
    yield from _shared("engine", _engine)


@pytest.fixture(scope="session")
def docker_url(docker_engine: DockerDaemon) -> str:
    """``unix://.../docker.sock`` of the private dockerd."""
    return docker_engine.url


@pytest.fixture(scope="session")
def docker_images(docker_engine: DockerDaemon) -> Iterator[dict[str, ImageInfo]]:
    """pe-busybox and pe-python, built on the first run and reused afterwards."""
    yield from _shared("images", lambda: _images(docker_engine))


@pytest.fixture(scope="session")
def docker_lab(docker_engine: DockerDaemon, docker_images: dict[str, ImageInfo]) -> Iterator[Lab]:
    """The lab's networks and containers, up for the session."""
    yield from _shared("lab", lambda: _lab(docker_engine, docker_images))
