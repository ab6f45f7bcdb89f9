"""The Docker lab's session fixtures, a pytest plugin registered in tests/conftest.py (so one
engine serves every test module that asks for it):

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
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.dockerlab import (
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
from tests.session import sigterm_as_interrupt, unavailable

__all__ = ["FACTS", "docker_engine", "docker_images", "docker_lab", "docker_url"]

T = TypeVar("T")
FACTS: dict[str, str] = {}
"""Timings measured during the session (engine start, image builds, lab set-up, exec), printed
in pytest's terminal summary."""


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The Docker lab's timings at the end of the session, if it ran."""
    if FACTS:
        terminalreporter.section("docker lab")
        for key, value in FACTS.items():
            terminalreporter.write_line(f"{key}: {value}")


def _engine() -> Iterator[DockerDaemon]:
    problems = missing_prerequisites()
    if problems:
        unavailable("Docker lab", "; ".join(problems))
    cache = Path(os.environ.get("PE_DOCKERLAB_CACHE", str(DEFAULT_CACHE_DIR)))
    netns = os.environ.get("PE_DOCKERLAB_NETNS") or DaemonConfig.netns
    daemon = DockerDaemon(DaemonConfig(cache_dir=cache, netns=netns))
    with sigterm_as_interrupt():
        try:
            daemon.start()
        except PrerequisiteError as exc:
            unavailable("Docker lab", str(exc))
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
    yield from _engine()


@pytest.fixture(scope="session")
def docker_url(docker_engine: DockerDaemon) -> str:
    """``unix://.../docker.sock`` of the private dockerd."""
    return docker_engine.url


@pytest.fixture(scope="session")
def docker_images(docker_engine: DockerDaemon) -> Iterator[dict[str, ImageInfo]]:
    """pe-busybox and pe-python, built on the first run and reused afterwards."""
    yield from _images(docker_engine)


@pytest.fixture(scope="session")
def docker_lab(docker_engine: DockerDaemon, docker_images: dict[str, ImageInfo]) -> Iterator[Lab]:
    """The lab's networks and containers, up for the session."""
    yield from _lab(docker_engine, docker_images)
