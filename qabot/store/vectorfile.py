"""A generation's vector file: opened with the store, read into memory only when first needed.

Opening an index to read article hashes (the indexer's unchanged-article check, ``qabot
delete``), to count, or to check FAISS ids against SQLite needs no vectors: :meth:`LazyVectors.info`
reads the header and ids through a read-only mapping (:func:`qabot.store.vectors.peek`). The
vectors themselves are read on first use (a search, an add or delete, a save), once, whichever
thread asks first. The file is opened up front and kept open until then, so a generation
that a writer removes in the meantime (only the live and the previous one are kept) stays
readable, as it was when every store read its vectors at open.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import BinaryIO

from qabot.errors import StoreError
from qabot.store import integrity
from qabot.store.vectors import VectorFileInfo, VectorIndex, peek

log = logging.getLogger(__name__)


class LazyVectors:
    """The vectors of one generation: given in memory, or read from ``path`` on first use."""

    def __init__(self, path: Path, *, dimension: int, index: VectorIndex | None = None, check_norms: bool = False) -> None:
        self.path, self.dimension = Path(path), dimension
        self.check_norms = check_norms  # a file without a recorded checksum: every vector must be unit length
        self._index = index
        self._file: BinaryIO | None = None
        self._info: VectorFileInfo | None = None  # cached: an open generation's file never changes
        self._lock = threading.Lock()
        if index is None:
            try:
                self._file = open(self.path, "rb")  # noqa: SIM115 - closed by get() or close()
            except FileNotFoundError:
                raise StoreError(f"{self.path}: missing; the index is incomplete: {integrity.REPAIR}") from None
            except IsADirectoryError:
                raise StoreError(f"{self.path}: a folder, not a vector file; the index is damaged: {integrity.REPAIR}") from None
            except OSError as exc:
                raise StoreError(f"{self.path}: cannot read it ({exc.strerror or exc})") from None

    @property
    def loaded(self) -> bool:
        return self._index is not None

    def get(self) -> VectorIndex:
        """The vector index, read from the file the first time. StoreError when it is unusable."""
        index = self._index
        if index is not None:
            return index
        with self._lock:
            if self._index is None:
                fh = self._open_file()
                fh.seek(0)
                index = VectorIndex.load(fh, source=str(self.path))
                if index.d != self.dimension:
                    raise StoreError(f"{self.path}: dimension {index.d} != manifest dimension {self.dimension}")
                if self.check_norms and (problems := integrity.vector_norm_problems(index, source=str(self.path))):
                    raise StoreError(integrity.damage_message(problems))
                self._index, self._file = index, None
                fh.close()
                log.debug("%s: loaded %d vectors (%s)", self.path, index.ntotal, index.describe())
            return self._index

    def info(self) -> VectorFileInfo:
        """Kind, dimension, size and ids: from memory once loaded, else from the file's ids alone."""
        with self._lock:
            if self._index is not None:
                v = self._index
                return VectorFileInfo(kind=v.kind, d=v.d, ntotal=v.ntotal, ids=v.ids())
            if self._info is None:
                self._info = peek(_same_file(self._open_file()), source=str(self.path))
            return self._info

    def ntotal(self) -> int:
        index = self._index
        return index.ntotal if index is not None else self.info().ntotal

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()

    def _open_file(self) -> BinaryIO:
        if self._file is None or self._file.closed:
            raise StoreError(f"{self.path}: the store is closed")
        return self._file


def _same_file(fh: BinaryIO) -> str:
    """A path that opens the file ``fh`` has open, even after it was removed (Linux: /proc)."""
    proc = Path(f"/proc/self/fd/{fh.fileno()}")
    return str(proc) if proc.exists() else str(fh.name)


__all__ = ["LazyVectors"]
