"""The matrix `serve` runs, and its reloads: on a change of the file, or on SIGHUP.

A bad new matrix never replaces a good one: the previous matrix stays in use and the reason
(FILE:LINE:COL: field: problem) is kept for /healthz, the metrics and the log. Changes are
found by polling the file (a stat, and the content's sha256 when the stat moved): it also sees
a Kubernetes ConfigMap update, which swaps a symlink rather than writing the file.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import anyio.to_thread

from ..compat import UTC
from ..errors import SpecError
from ..spec import LoadedMatrix, load_matrix_text

log = logging.getLogger("probe_engine.serve")


@dataclass(frozen=True)
class _Stamp:
    """What a stat() says of the file; a different one means: read it again."""

    device: int
    inode: int
    size: int
    mtime_ns: int


def _stamp(path: Path) -> _Stamp | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return _Stamp(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class MatrixFile:
    """The matrix in use, loaded from `path`, and what became of the latest reload."""

    def __init__(self, loaded: LoadedMatrix, environ: Mapping[str, str] | None = None) -> None:
        self.current = loaded
        self.path = Path(loaded.path)
        self.environ = environ
        self.loaded_at = datetime.now(UTC)
        self.error: str | None = None
        self.reloads_ok = 0
        self.reloads_failed = 0
        self._stamp = _stamp(self.path)

    def _load(self) -> LoadedMatrix:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SpecError("no such file", file=str(self.path)) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(f"cannot read: {exc}", file=str(self.path)) from None
        return load_matrix_text(text, str(self.path), self.environ)

    async def reload(self, why: str) -> bool:
        """Load the file again; True when a new matrix is now in use."""
        self._stamp = _stamp(self.path)
        try:
            loaded = await anyio.to_thread.run_sync(self._load)
        except SpecError as exc:
            message = str(exc)
            self.reloads_failed += 1
            if message != self.error:  # say it once, not at every poll
                log.error(
                    "reload (%s) failed, still running the previous matrix (sha256 %s): %s",
                    why,
                    self.current.sha256[:12],
                    message.replace("\n", "; "),
                )
            self.error = message
            return False
        self.error = None
        if loaded.sha256 == self.current.sha256:
            log.info("reload (%s): the matrix is unchanged", why)
            return False
        self.reloads_ok += 1
        self.current = loaded
        self.loaded_at = datetime.now(UTC)
        matrix = loaded.matrix
        log.info(
            "reloaded the matrix (%s): %d sources, %d targets, sha256 %s",
            why,
            len(matrix.sources),
            len(matrix.targets),
            loaded.sha256[:12],
        )
        return True

    def changed(self) -> bool:
        """Whether the file may differ from the matrix in use (cheap: one stat, and a hash
        of the content only when the stat moved)."""
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return False
        try:
            digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            return True  # gone or unreadable: a reload says why
        if digest == self.current.sha256 and self.error is None:
            self._stamp = stamp  # touched, not changed
            return False
        return True

    async def watch(self, every: float) -> None:
        """Poll for changes forever (cancel to stop)."""
        while True:
            await anyio.sleep(every)
            if self.changed():
                await self.reload("the file changed")
