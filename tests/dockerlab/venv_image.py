"""``pe-python-venv``: a base image for building Python images here, where no registry is
reachable. It is ``pe-python`` (this machine's Debian python3, see ``images.python_rootfs``)
plus what ``python3 -m venv`` needs to put pip in a virtual environment: the standard library's
``venv``, ``ensurepip`` and ``distutils``, and Debian's bundled pip and setuptools wheels
(/usr/share/python-wheels, from python3-venv). Like python:3.11-slim, it can build an image
whose Dockerfile makes a venv and pip-installs into it.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import aiodocker

from tests.dockerlab import ImageInfo, RootfsEntry, ensure_image, python_rootfs

REPO = "pe-python-venv"
WHEELS = Path("/usr/share/python-wheels")
PARTS = ("venv", "ensurepip", "distutils")
# What every Debian base image has and binary wheels expect beyond the interpreter's own
# libraries: all of libc6's (librt, libpthread...) and libgcc-s1 (pydantic-core unwinds with it).
BASE_PACKAGES = ("libc6", "libgcc-s1")


def base_libraries() -> list[Path]:
    listed = subprocess.run(
        ["dpkg-query", "-L", *BASE_PACKAGES], capture_output=True, text=True, check=True
    ).stdout.split()
    return sorted(
        Path(p)
        for p in listed
        if "/gconv/" not in p and ".so" in Path(p).name and Path(p).is_file()
    )


def _merged(path: Path) -> Path:
    """/lib/x is /usr/lib/x in a /usr-merged tree (as the image is)."""
    text = str(path)
    return Path("/usr" + text) if text.startswith(("/lib/", "/lib64/")) else path


def _entry(path: Path, where: Path | None = None) -> RootfsEntry:
    rel = str((where or path).relative_to("/"))
    if path.is_dir():
        return RootfsEntry(rel, "dir", 0o755)
    real = path.resolve()
    return RootfsEntry(rel, "file", real.stat().st_mode & 0o7777, source=real)


def venv_rootfs(python: Path = Path("/usr/bin/python3")) -> list[RootfsEntry]:
    real = python.resolve()
    stdlib = Path("/usr/lib") / real.name  # /usr/lib/python3.11
    missing = [str(stdlib / p) for p in PARTS[:2] if not (stdlib / p).is_dir()]
    wheels = sorted(WHEELS.glob("*.whl"))
    if missing or not wheels:
        raise FileNotFoundError(f"no {', '.join(missing) or WHEELS}: install Debian's python3-venv")
    entries = python_rootfs(python)
    for part in PARTS:
        top = stdlib / part
        if not top.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            entries.append(_entry(Path(dirpath)))
            entries += [_entry(Path(dirpath) / name) for name in sorted(filenames)]
    entries += [_entry(library, _merged(library)) for library in base_libraries()]
    entries.append(RootfsEntry("usr/share/python-wheels", "dir", 0o755))
    entries += [_entry(wheel) for wheel in wheels]
    return entries


async def ensure_venv_image(url: str, rootfs_dir: Path) -> ImageInfo:
    """The base image, built on first use and reused while the host's files are the same."""
    t0 = time.monotonic()
    entries = venv_rootfs()
    async with aiodocker.Docker(url=url) as docker:
        return await ensure_image(
            docker, REPO, entries, rootfs_dir, plan_seconds=time.monotonic() - t0
        )
