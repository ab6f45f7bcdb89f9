"""Writes files so that readers see the old content or the new, never half of either."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Union

from ..errors import ReportError

# A file's bytes, or its pieces in order (written as they come).
Data = Union[bytes, Iterable[bytes]]


def _stage(path: Path, data: Data) -> str:
    """Write `data` to a temporary file beside `path`, on disk; the temporary's name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, bytes):
                handle.write(data)
            else:
                for piece in data:
                    handle.write(piece)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return temporary


def _sync_directory(directory: Path) -> None:
    # The renames themselves reach the disk with the directory; best effort (not everywhere).
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_all_atomic(files: Sequence[tuple[Path, Data]]) -> None:
    """Write every file, or none: all are staged as temporaries first, then renamed in place.

    A failure while staging (disk full, no permission) leaves every old file as it was and no
    temporary behind; only a failing rename, after all the data is safely written, can leave a
    mix of old and new files.
    """
    # The one rename failure that can be foreseen: refuse before anything is replaced.
    for path, _data in files:
        if path.is_dir():
            raise ReportError(f"cannot write {path}: a folder is in the way")
    staged: list[tuple[str, Path]] = []
    current: Path | None = None
    try:
        for current, data in files:
            staged.append((_stage(current, data), current))
        for index, (temporary, current) in enumerate(staged):
            os.replace(temporary, current)
            staged[index] = ("", current)
    except OSError as exc:
        raise ReportError(f"cannot write {current}: {exc.strerror or exc}") from exc
    finally:
        for temporary, _path in staged:
            if temporary:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
    for directory in dict.fromkeys(p.parent for _t, p in staged):
        _sync_directory(directory)


def check_writable(paths: Sequence[Path]) -> None:
    """Make sure `paths` can be written later, before the run that fills them: their folders
    exist (created if need be), take a new file, and no folder sits where a file will go.
    Raises ReportError naming the path and the reason."""
    for directory in dict.fromkeys(path.parent for path in paths):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(prefix=".probe-engine.", suffix=".tmp", dir=directory)
            os.close(fd)
            os.unlink(temporary)
        except FileExistsError:
            raise ReportError(f"cannot write in {directory}: it is a file, not a folder") from None
        except NotADirectoryError:
            raise ReportError(f"cannot write in {directory}: part of it is a file") from None
        except OSError as exc:
            raise ReportError(f"cannot write in {directory}: {exc.strerror or exc}") from None
    for path in paths:
        if path.is_dir():
            raise ReportError(f"cannot write {path}: a folder is in the way")
