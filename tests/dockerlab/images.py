"""The lab's images, built here without a registry: root filesystems as tarballs keyed by a
content hash, imported once and reused while nothing they are made of changes."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import os
import tarfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import aiodocker
import aiohttp

from .host import DEFAULT_CACHE_DIR, DockerLabError, PrerequisiteError, run

LAB_LABEL = "org.probe-engine.dockerlab"
HASH_LABEL = "org.probe-engine.content-hash"

RECIPE_VERSION = "1"
"""Bump to rebuild every image (it is part of each content hash)."""


@dataclass(frozen=True)
class RootfsEntry:
    """One member of an image's root filesystem."""

    path: str
    """Inside the image, relative, no leading slash."""
    kind: Literal["dir", "file", "symlink"]
    mode: int = 0o755
    source: Path | None = None
    """Host file whose content this member gets (kind file)."""
    data: bytes | None = None
    """Literal content (kind file, when no source)."""
    target: str | None = None
    """Link target (kind symlink)."""


def _dir(path: str, mode: int = 0o755) -> RootfsEntry:
    return RootfsEntry(path, "dir", mode)


def _link(path: str, target: str) -> RootfsEntry:
    return RootfsEntry(path, "symlink", 0o777, target=target)


def _text(path: str, text: str, mode: int = 0o644) -> RootfsEntry:
    return RootfsEntry(path, "file", mode, data=text.encode())


def _copy(path: str, source: Path, mode: int | None = None) -> RootfsEntry:
    real = source.resolve()
    return RootfsEntry(
        path, "file", mode if mode is not None else real.stat().st_mode & 0o7777, source=real
    )


BASE_ETC: tuple[RootfsEntry, ...] = (
    _text(
        "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
    ),
    _text("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
    _text("etc/nsswitch.conf", "hosts: files dns\npasswd: files\ngroup: files\n"),
    _dir("tmp", 0o1777),
    _dir("root", 0o700),
    _dir("proc"),
    _dir("sys"),
    _dir("dev"),
    _dir("etc"),
    _dir("var"),
    _dir("run"),
)
"""Docker bind-mounts /etc/hosts, /etc/hostname and /etc/resolv.conf over the image's."""


def busybox_applets(busybox: Path) -> list[str]:
    out = run([str(busybox), "--list"])
    return sorted({a for a in out.split() if a and "/" not in a and a != "busybox"})


def busybox_rootfs(busybox: Path = Path("/bin/busybox")) -> list[RootfsEntry]:
    """``pe-busybox``: /bin/busybox plus a link per applet (sh, nc, wget, sleep, ...). No
    Python, no libraries: busybox-static needs none."""
    entries = [*BASE_ETC, _dir("bin"), _copy("bin/busybox", busybox, 0o755)]
    entries += [_link(f"bin/{a}", "busybox") for a in busybox_applets(busybox)]
    entries += [_dir("usr"), _link("usr/bin", "../bin"), _link("sbin", "bin")]
    return entries


# Standard library parts left out of pe-python: tests, GUIs, build tooling, and modules whose
# extension needs a library we would rather not ship.
STDLIB_EXCLUDED_DIRS = frozenset({
    "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data",
    "distutils", "site-packages", "dist-packages", "venv", "curses", "sqlite3", "dbm",
    "__phello__",
})  # fmt: skip
DYNLOAD_EXCLUDED = frozenset({
    "_testbuffer", "_testcapi", "_testclinic", "_testimportmultiple", "_testinternalcapi",
    "_testmultiphase", "_ctypes_test", "xxlimited", "xxlimited_35", "_xxtestfuzz",
    "_curses", "_curses_panel", "_dbm", "_gdbm", "_sqlite3", "readline", "nis", "_tkinter",
    "_crypt",
})  # fmt: skip


def python_layout(python: Path) -> tuple[Path, str, Path]:
    """(real interpreter, "3.X", stdlib dir) of a Debian-style python3, or PrerequisiteError."""
    real = python.resolve()
    name = real.name
    if not real.is_file() or not name.startswith("python3."):
        raise PrerequisiteError(f"no Debian python3 at {python} (package python3)")
    version = name.removeprefix("python")
    stdlib = Path("/usr/lib") / f"python{version}"
    if not (stdlib / "os.py").is_file() or not (stdlib / "lib-dynload").is_dir():
        raise PrerequisiteError(f"no standard library at {stdlib} (package python3)")
    return real, version, stdlib


def _merged(path: str) -> str:
    """Where a library path lives in a /usr-merged tree, relative (``/lib/x`` -> ``usr/lib/x``)."""
    for top in ("/lib/", "/lib64/", "/bin/", "/sbin/"):
        if path.startswith(top):
            return "usr" + path
    return path.lstrip("/")


def _shared_libraries(binaries: Sequence[Path]) -> list[str]:
    """The shared libraries (as the loader names them) the binaries need, from ``ldd``."""
    libs: set[str] = set()
    for start in range(0, len(binaries), 64):
        out = run(["ldd", *[str(b) for b in binaries[start : start + 64]]], check=False)
        for raw in out.splitlines():
            line = raw.strip()
            if "=>" in line:
                target = line.split("=>", 1)[1].strip().split(" (", 1)[0].strip()
                if target.startswith("/"):
                    libs.add(target)
                elif target == "not found":
                    raise DockerLabError(f"ldd: a library is missing: {line}")
            elif line.startswith("/") and not line.endswith(":"):  # not a file's header
                libs.add(line.split(" (", 1)[0].strip())
    return sorted(libs)


def python_rootfs(
    python: Path = Path("/usr/bin/python3"), busybox: Path | None = Path("/bin/busybox")
) -> list[RootfsEntry]:
    """``pe-python``: the host's Debian python3 (binary, the shared libraries it and its
    extension modules load, the standard library without tests, GUIs and build tools, CA
    certificates) in a /usr-merged tree, plus busybox for ``sh``, ``sleep``, ``nc``... so the
    image behaves like a slim distribution image."""
    real, _version, stdlib = python_layout(python)
    entries: list[RootfsEntry] = [*BASE_ETC]
    entries += [
        _dir("usr"),
        _dir("usr/bin"),
        _dir("usr/lib"),
        _dir("usr/lib64"),
        _dir("usr/sbin"),
        _dir("usr/local"),
        _dir("usr/local/bin"),
    ]
    entries += [
        _link("bin", "usr/bin"),
        _link("sbin", "usr/sbin"),
        _link("lib", "usr/lib"),
        _link("lib64", "usr/lib64"),
    ]
    entries += [_copy(f"usr/bin/{real.name}", real, 0o755), _link("usr/bin/python3", real.name)]
    binaries: list[Path] = [real]
    for dirpath, dirnames, filenames in os.walk(stdlib):
        here = Path(dirpath)
        rel_dir = here.relative_to(stdlib)
        if rel_dir == Path("."):
            dirnames[:] = [
                d for d in dirnames if d not in STDLIB_EXCLUDED_DIRS and not d.startswith("config-")
            ]
        dirnames.sort()
        entries.append(_dir(str(here.relative_to("/"))))
        for name in sorted(filenames):
            src = here / name
            if ".opt-1." in name or ".opt-2." in name or name == "EXTERNALLY-MANAGED":
                continue
            if here.name == "lib-dynload":
                if not name.endswith(".so") or name.split(".", 1)[0] in DYNLOAD_EXCLUDED:
                    continue
                binaries.append(src)
            if src.is_symlink():
                resolved = src.resolve()
                if not resolved.is_file() or not resolved.is_relative_to(stdlib):
                    continue  # e.g. sitecustomize.py -> /etc/python3.X/
            rel = src.relative_to(Path("/"))
            entries.append(_copy(str(rel), src))
    for lib in _shared_libraries(binaries):
        entries.append(_copy(_merged(lib), Path(lib)))
    certs = Path("/etc/ssl/certs/ca-certificates.crt")
    if certs.is_file():
        entries += [
            _dir("etc/ssl"),
            _dir("etc/ssl/certs"),
            _copy("etc/ssl/certs/ca-certificates.crt", certs, 0o644),
            _dir("usr/lib/ssl"),
            _link("usr/lib/ssl/cert.pem", "/etc/ssl/certs/ca-certificates.crt"),
            _link("usr/lib/ssl/certs", "/etc/ssl/certs"),
        ]
    if busybox is not None:
        entries.append(_copy("usr/bin/busybox", busybox, 0o755))
        taken = {e.path for e in entries}
        entries += [
            _link(f"usr/bin/{a}", "busybox")
            for a in busybox_applets(busybox)
            if f"usr/bin/{a}" not in taken
        ]
    return entries


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _normalized(entries: Iterable[RootfsEntry]) -> list[RootfsEntry]:
    """Deduplicated (last wins), parents added, sorted so that a folder precedes its members."""
    by_path: dict[str, RootfsEntry] = {}
    for entry in entries:
        by_path[entry.path.strip("/")] = entry
    for path in list(by_path):
        parent = Path(path).parent
        while str(parent) != ".":
            by_path.setdefault(str(parent), _dir(str(parent)))
            parent = parent.parent
    return [by_path[p] for p in sorted(by_path, key=lambda p: p.split("/"))]


def rootfs_key(entries: Iterable[RootfsEntry]) -> str:
    """A content hash of a root filesystem: paths, kinds, modes, link targets, file contents
    (not times: the same files on another machine give the same key)."""
    h = hashlib.sha256(f"pe-dockerlab-rootfs {RECIPE_VERSION}\n".encode())
    for e in _normalized(entries):
        content = ""
        if e.source is not None:
            content = _file_digest(e.source)
        elif e.data is not None:
            content = hashlib.sha256(e.data).hexdigest()
        h.update(f"{e.path}\0{e.kind}\0{e.mode:o}\0{e.target or ''}\0{content}\n".encode())
    return h.hexdigest()


FIXED_MTIME = 1_700_000_000


def write_rootfs_tar(entries: Iterable[RootfsEntry], dest: Path) -> int:
    """Write the root filesystem as an uncompressed tar (owner root), atomically. Copied files
    keep their mtime (so the standard library's .pyc files stay valid). Returns its size."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for e in _normalized(entries):
            info = tarfile.TarInfo(e.path)
            info.mode = e.mode
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = FIXED_MTIME
            if e.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif e.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = e.target or ""
                tar.addfile(info)
            elif e.source is not None:
                st = e.source.stat()
                info.size = st.st_size
                info.mtime = int(st.st_mtime)
                with e.source.open("rb") as f:
                    tar.addfile(info, f)
            else:
                data = e.data or b""
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    tmp.replace(dest)
    return dest.stat().st_size


@dataclass(frozen=True)
class ImageInfo:
    """An image ensured by ``ensure_image``."""

    repo: str
    tag: str
    """The first 16 hex digits of the content hash; ``latest`` points at it too."""
    id: str
    size: int
    """Bytes, as the engine reports it."""
    content_hash: str
    built: bool
    """False: the engine already had it (nothing done)."""
    tar_cached: bool
    """True: the rootfs tarball came from the cache folder."""
    plan_seconds: float
    """Listing and hashing the files."""
    tar_seconds: float
    import_seconds: float
    seconds: float

    @property
    def ref(self) -> str:
        return f"{self.repo}:{self.tag}"


async def _import_tar(
    docker: aiodocker.Docker, tar: Path, repo: str, tag: str, labels: Mapping[str, str]
) -> None:
    """``docker import``: POST /images/create?fromSrc=- with the tarball as body.
    (aiodocker's ``images.import_image`` posts to /images/load, which wants ``docker save``
    archives, so the request is made through its generic ``_query``.)"""
    change = "LABEL " + " ".join(f"{k}={json.dumps(v)}" for k, v in labels.items())
    params = {
        "fromSrc": "-",
        "repo": repo,
        "tag": tag,
        "changes": change,
        "message": "probe-engine dockerlab",
    }
    with tar.open("rb") as body:
        async with docker._query(
            "images/create",
            method="POST",
            params=params,
            data=body,
            headers={"Content-Type": "application/x-tar"},
            timeout=aiohttp.ClientTimeout(total=600),
        ) as response:
            text = (await response.read()).decode(errors="replace")
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            message = json.loads(line)
            if isinstance(message, dict) and message.get("error"):
                raise DockerLabError(f"import of {repo}:{tag} failed: {message['error']}")


async def ensure_image(
    docker: aiodocker.Docker,
    repo: str,
    entries: Sequence[RootfsEntry],
    rootfs_dir: Path,
    plan_seconds: float = 0.0,
) -> ImageInfo:
    """The image ``repo:<hash16>`` for this root filesystem, built only if the engine lacks it
    (from the cached tarball if there is one). Also tags ``repo:latest`` and removes the
    repo's images and tarballs of other hashes."""
    t0 = time.monotonic()
    key = rootfs_key(entries)
    plan_seconds += time.monotonic() - t0
    tag = key[:16]
    ref = f"{repo}:{tag}"
    built = tar_cached = False
    tar_seconds = import_seconds = 0.0
    try:
        info = await docker.images.inspect(ref)
        if (info.get("Config") or {}).get("Labels", {}).get(HASH_LABEL) != key:
            raise DockerLabError(f"{ref} exists without the label {HASH_LABEL}={key}")
    except aiodocker.DockerError as exc:
        if exc.status != 404:
            raise
        tar = rootfs_dir / f"{repo}-{tag}.tar"
        t1 = time.monotonic()
        if tar.is_file():
            tar_cached = True
        else:
            await asyncio.to_thread(write_rootfs_tar, entries, tar)
        tar_seconds = time.monotonic() - t1
        t2 = time.monotonic()
        await _import_tar(docker, tar, repo, tag, {HASH_LABEL: key, LAB_LABEL: repo})
        import_seconds = time.monotonic() - t2
        built = True
        info = await docker.images.inspect(ref)
        for old in rootfs_dir.glob(f"{repo}-*.tar"):
            if old != tar:
                old.unlink(missing_ok=True)
    await docker.images.tag(ref, repo, tag="latest")
    for image in await docker.images.list(filters={"reference": [repo]}):
        tags = [t for t in image.get("RepoTags") or [] if t.startswith(repo + ":")]
        if image["Id"] != info["Id"] and tags:
            for stale in tags:
                with contextlib.suppress(aiodocker.DockerError):
                    await docker.images.delete(stale)
    return ImageInfo(
        repo=repo,
        tag=tag,
        id=info["Id"],
        size=int(info.get("Size", 0)),
        content_hash=key,
        built=built,
        tar_cached=tar_cached,
        plan_seconds=plan_seconds,
        tar_seconds=tar_seconds,
        import_seconds=import_seconds,
        seconds=time.monotonic() - t0 + plan_seconds,
    )


async def ensure_images(
    url: str, rootfs_dir: Path = DEFAULT_CACHE_DIR / "rootfs"
) -> dict[str, ImageInfo]:
    """``{"busybox": ..., "python": ...}``: pe-busybox and pe-python, built or reused."""
    images: dict[str, ImageInfo] = {}
    async with aiodocker.Docker(url=url) as docker:
        for key, repo, plan in (
            ("busybox", "pe-busybox", busybox_rootfs),
            ("python", "pe-python", python_rootfs),
        ):
            t0 = time.monotonic()
            entries = await asyncio.to_thread(plan)
            images[key] = await ensure_image(
                docker, repo, entries, rootfs_dir, plan_seconds=time.monotonic() - t0
            )
    return images
