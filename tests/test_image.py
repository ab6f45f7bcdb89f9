"""The repository's Dockerfile builds an image that runs `probe-engine serve`.

No registry is reachable here, so the base is made here: ``pe-python-venv`` (this machine's
Debian python3 with venv and pip's wheels, tests/dockerlab/venv_image.py), and the wheels of
probe-engine's dependencies come from PyPI through the host's pip into the build context's
wheels/ (cached). The build is the Docker engine's own (POST /build, through aiodocker) in the
Docker lab's private dockerd; the container then runs with no network but its loopback, and
serve answers /readyz inside it. Under CI=true a missing prerequisite fails the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import aiodocker
import pytest

import probe_engine
from tests.dockerlab import LAB_LABEL, DockerDaemon, exec_run, run_sync
from tests.dockerlab.fixtures import FACTS
from tests.dockerlab.venv_image import ensure_venv_image

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parent.parent
TAG = "pe-probe-engine:test"
MATRIX = """version: 1
sources:
  here: {kind: local}
targets:
  itself: {kind: http, url: "http://127.0.0.1:9462/healthz"}
  closed: {kind: tcp, host: 127.0.0.1, port: 1}
"""


def allowed_by_dockerignore(root: Path) -> list[Path]:
    """The files of the build context: .dockerignore here is "*" then "!name" lines (and
    **/__pycache__ left out); a client applies it before sending the context, so do we."""
    lines = [line.strip() for line in (root / ".dockerignore").read_text().splitlines()]
    assert "*" in lines, "the .dockerignore excludes everything, then admits by name"
    allowed = [line[1:] for line in lines if line.startswith("!")]
    files: list[Path] = [root / "Dockerfile", root / ".dockerignore"]
    for name in allowed:
        top = root / name
        if top.is_file():
            files.append(top)
        elif top.is_dir():
            files += sorted(
                p for p in top.rglob("*") if p.is_file() and "__pycache__" not in p.parts
            )
    return files


# What the Dockerfile installs: serve needs prometheus, probing from inside a cluster kubernetes.
IMAGE_EXTRAS = "[kubernetes,prometheus]"


def wheelhouse(cache: Path) -> Path:
    """Wheels of every runtime dependency and of hatchling (the build backend), downloaded
    once per pyproject.toml by the host's pip from PyPI (a package registry CI reaches)."""
    key = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + sys.version.encode() + IMAGE_EXTRAS.encode()
    ).hexdigest()[:16]
    folder = cache / f"wheels-{key}"
    if (folder / "complete").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--disable-pip-version-check",
            "--wheel-dir",
            str(folder),
            f"{ROOT}{IMAGE_EXTRAS}",
            "hatchling",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    for own in folder.glob("probe_engine-*.whl"):
        own.unlink()  # built from the context's sources in the image, not from here
    (folder / "complete").write_text("")
    return folder


def build_context(wheels: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in allowed_by_dockerignore(ROOT):
            tar.add(path, arcname=str(path.relative_to(ROOT)), recursive=False)
        for wheel in sorted(wheels.glob("*.whl")):
            tar.add(wheel, arcname=f"wheels/{wheel.name}")
    return gzip.compress(buffer.getvalue(), compresslevel=1)


async def build(url: str, base: str, context: bytes) -> list[str]:
    lines: list[str] = []
    async with aiodocker.Docker(url=url) as docker:
        stream = docker.images.build(
            fileobj=io.BytesIO(context),
            encoding="gzip",
            tag=TAG,
            buildargs={"BASE": base, "PIP_ARGS": "--no-index --find-links /src/wheels"},
            labels={LAB_LABEL: "image"},
            rm=True,
            forcerm=True,
            nocache=True,  # the build is what is tested, not the cache
            stream=True,
        )
        async for message in stream:
            if "stream" in message:
                lines.append(message["stream"].rstrip())
            if "error" in message:
                raise AssertionError(f"build failed: {message['error']}\n" + "\n".join(lines))
    return lines


async def run_serve(url: str) -> dict[str, Any]:
    """Run the image as its CMD says, with the matrix put where it looks, no network but
    loopback; ask serve inside the container once it is ready."""
    async with aiodocker.Docker(url=url) as docker:
        container = await docker.containers.create(
            {
                "Image": TAG,
                "Cmd": ["serve", "/tmp/matrix.yaml", "--listen", "127.0.0.1:9462",
                        "--interval", "1s", "--once-at-start"],
                "Labels": {LAB_LABEL: "image"},
                "HostConfig": {"NetworkMode": "none", "Init": True},
            },
            name="pe-image-serve",
        )  # fmt: skip
        try:
            archive = io.BytesIO()
            with tarfile.open(fileobj=archive, mode="w") as tar:
                info = tarfile.TarInfo("matrix.yaml")
                data = MATRIX.encode()
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
            await container.put_archive("/tmp", archive.getvalue())
            await container.start()
            ask = (
                "import urllib.request as u, json, sys\n"
                "o = u.build_opener(u.ProxyHandler({}))\n"
                "print(o.open('http://127.0.0.1:9462/report.json', timeout=10).read().decode())\n"
            )
            deadline = time.monotonic() + 120
            while True:
                state = (await container.show())["State"]
                logs = "".join(await container.log(stdout=True, stderr=True))
                assert state["Running"], f"serve exited {state['ExitCode']}: {logs}"
                ready = await exec_run(
                    docker,
                    container.id,
                    ["python3", "-c", "import urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:9462/readyz', timeout=5)"],
                )  # fmt: skip
                if ready.exit_code == 0:
                    break
                assert time.monotonic() < deadline, f"serve never became ready: {logs}"
                await asyncio.sleep(0.5)
            report = await exec_run(docker, container.id, ["python3", "-c", ask])
            assert report.exit_code == 0, report.err
            user = await exec_run(docker, container.id, ["id", "-u"])
            await container.kill(signal="SIGTERM")
            status = await container.wait(timeout=60)
            logs = "".join(await container.log(stdout=True, stderr=True))
            return {
                "report": json.loads(report.out),
                "uid": user.out.strip(),
                "exit": status["StatusCode"],
                "logs": logs,
            }
        finally:
            await container.delete(force=True)


async def remove_images(url: str) -> None:
    """The built image and its build stage's (dangling) image: the engine's data-root is a
    cache kept between runs, and every run builds anew."""
    async with aiodocker.Docker(url=url) as docker:
        with contextlib.suppress(aiodocker.DockerError):
            await docker.images.delete(TAG, force=True)
        await docker.images.prune(filters={"dangling": ["true"]})


def test_the_dockerfile_builds_on_a_base_made_here_and_serves(
    docker_engine: DockerDaemon, docker_url: str
) -> None:
    cache = docker_engine.config.cache_dir
    base = run_sync(lambda: ensure_venv_image(docker_url, docker_engine.config.rootfs_dir))
    wheels = wheelhouse(cache)
    context = build_context(wheels)
    started = time.monotonic()
    lines = run_sync(lambda: build(docker_url, base.ref, context))
    seconds = time.monotonic() - started

    async def inspect() -> dict[str, Any]:
        async with aiodocker.Docker(url=docker_url) as docker:
            found: dict[str, Any] = await docker.images.inspect(TAG)
            return found

    image = run_sync(inspect)
    FACTS["image pe-probe-engine (build on pe-python-venv)"] = (
        f"{seconds:.1f} s, {image['Size'] / 1e6:.1f} MB (base {base.size / 1e6:.1f} MB, "
        f"context {len(context) / 1e6:.1f} MB gzipped)"
    )
    assert any(f"probe-engine, version {probe_engine.__version__}" in line for line in lines)
    config = image["Config"]
    assert config["Entrypoint"] == ["probe-engine"]
    assert config["Cmd"] == ["serve", "/etc/probe-engine/matrix.yaml", "--listen", "0.0.0.0:9462"]
    assert config["User"] == "65534:65534"
    assert "9462/tcp" in config["ExposedPorts"]

    try:
        served = run_sync(lambda: run_serve(docker_url))
    finally:
        run_sync(lambda: remove_images(docker_url))
    statuses = {(c["source"], c["target"]): c["status"] for c in served["report"]["cells"]}
    assert statuses == {("here", "itself"): "ok", ("here", "closed"): "refused"}
    assert served["uid"] == "65534"
    assert served["exit"] == 0, served["logs"]
    assert "SIGTERM: stopping" in served["logs"]
