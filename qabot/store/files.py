"""File-system helpers for the index folder: atomic replacement and fsync.

A file of the index is never rewritten in place: :func:`atomic_write` fills a temporary
file beside it, fsyncs it and renames it over the old one, so a crash leaves the old file or
the new one, never half of either. :func:`fsync_path` on a folder makes such a rename durable.
New files get the permissions the process umask allows (``mkstemp`` alone would give 0600),
so readers running as another user (the bot) can open them.
"""

from __future__ import annotations

import errno
import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


def _current_umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it
    os.umask(mask)
    return mask


# Read once at import: os.umask is process-wide, so reading it later could race other threads.
_UMASK = _current_umask()


class LockHeld(Exception):
    """Another process holds a :func:`pid_lock`; ``holder`` is the pid it wrote ("?" if none)."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


@contextmanager
def pid_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``path`` (created with its folder), which records this process's
    pid; the kernel frees it when the process dies. OSError when the file cannot be created or
    opened; :class:`LockHeld` at once when another process holds it."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise LockHeld(os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "?") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def fsync_path(path: Path) -> None:
    """Flush a file's data, or a folder's entries (making renames inside it durable), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it."""
    atomic_write(path, lambda fh: fh.write(data))


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Let ``write`` fill a temporary file beside ``path``; fsync it, then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; readers may run as another user
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


__all__ = ["LockHeld", "atomic_write", "atomic_write_bytes", "fsync_path", "pid_lock"]
