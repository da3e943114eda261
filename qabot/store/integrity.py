"""Damage to an index, found before it answers: checksums of a generation's files, sound vectors.

A published generation never changes again (writers build the next one beside it), so
:func:`qabot.store.generations.publish` records the SHA-256 of its ``qabot.db`` and
``vectors.faiss`` in the manifest (``checksums``). They are verified:

- when a reader opens the index (:meth:`qabot.store.store.Store.open`), for files up to
  ``VERIFY_LIMIT`` bytes (hashing runs at ~1 GB/s here, while loading the vectors reads the
  file anyway; larger files are verified by ``qabot check`` and by every writer);
- by ``qabot check``, always;
- by a writer before it copies the live generation into the next one: damage is never
  carried forward, and never published over (``qabot index --repair`` rebuilds from the archive).

SQLite has no checksums of its own: a flipped byte inside a chunk's text passes its
``quick_check``, and a flipped byte in a vector gives it a norm of thousands, which then
"scores" far above any cosine and wins every question. The checksums catch both. An index
written before checksums were recorded gets SQLite's ``quick_check`` (when the database is
small enough for it to be cheap) and the vectors' norms, which must be 1 for every model qabot
uses (embedders return L2-normalised vectors): :func:`norm_problems`.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from qabot.store.manifest import DB_NAME, FAISS_NAME
from qabot.store.vectors import VectorIndex

log = logging.getLogger(__name__)

CHECKSUM_FILES = (DB_NAME, FAISS_NAME)
VERIFY_LIMIT = 2 << 30  # bytes: larger files are not hashed when a reader opens the index
QUICK_CHECK_LIMIT = 256 << 20  # bytes: an index without checksums gets quick_check on open up to this size
NORM_TOLERANCE = 0.01  # |norm - 1|; float16 storage (ivf) stays within ~1e-3
NORM_BLOCK = 65_536  # vectors reconstructed per step when checking an ivf index's norms
REPAIR = "rebuild it from the archive with `qabot index ARCHIVE --repair`"


def digest(path: Path) -> str:
    """The SHA-256 of a file, hex, read in blocks."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def checksums(data_dir: Path) -> dict[str, str]:
    """The SHA-256 of each file of a generation that a manifest records (the generation is closed)."""
    return {name: digest(Path(data_dir) / name) for name in CHECKSUM_FILES}


def checksum_problems(data_dir: Path, recorded: Mapping[str, str], *, limit: int | None = None) -> list[str]:
    """One line per file of ``data_dir`` whose content is not what ``recorded`` says it was
    written as (missing, unreadable or changed); files over ``limit`` bytes are skipped."""
    problems = []
    for name, expected in sorted(recorded.items()):
        path = Path(data_dir) / name
        try:
            if limit is not None and path.stat().st_size > limit:
                log.debug("%s: over %d bytes, not verified on open (`qabot check` verifies it)", path, limit)
                continue
            actual = digest(path)
        except FileNotFoundError:
            problems.append(f"{path}: missing")
        except IsADirectoryError:
            problems.append(f"{path}: a folder, not a file")
        except OSError as exc:
            problems.append(f"{path}: unreadable ({exc.strerror or exc})")
        else:
            if actual != expected:
                problems.append(f"{path}: damaged (its content is not what was written: SHA-256 {actual[:12]}…, recorded {expected[:12]}…)")
    return problems


def _off_unit(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``vectors`` that are not unit length (NaN counts), and every row's norm."""
    norms = np.linalg.norm(np.asarray(vectors, dtype=np.float32), axis=1)
    return np.flatnonzero(~(np.abs(norms - 1.0) <= NORM_TOLERANCE)), norms


def norm_problems(vectors: np.ndarray, ids: np.ndarray, *, source: str, label: str = "id") -> list[str]:
    """A line when any of ``vectors`` (one row per id) is not unit length: damage, since every
    embedder qabot uses returns L2-normalised vectors. ``label`` names what an id is."""
    bad, norms = _off_unit(vectors)
    return [_norm_line(source, len(bad), len(norms), f"{label} {int(ids[bad[0]])}", float(norms[bad[0]]))] if len(bad) else []


def vector_norm_problems(index: VectorIndex, *, source: str) -> list[str]:
    """:func:`norm_problems` over every vector of ``index``, read back in blocks."""
    ids = index.ids()
    n_bad, example = 0, None
    for start in range(0, len(ids), NORM_BLOCK):
        block = ids[start : start + NORM_BLOCK]
        bad, norms = _off_unit(index.reconstruct(block))
        if len(bad) and example is None:
            example = f"id {int(block[bad[0]])}", float(norms[bad[0]])
        n_bad += len(bad)
    return [_norm_line(source, n_bad, len(ids), example[0], example[1])] if example is not None else []


def _norm_line(source: str, bad: int, total: int, example: str, norm: float) -> str:
    return f"{source}: {bad} of {total} vectors are damaged (not unit length: {example} has norm {norm:.4g})"


def quick_check_problems(db: sqlite3.Connection, path: Path) -> list[str]:
    """SQLite's ``quick_check`` (the structure of every page; not the content of the rows)."""
    try:
        result = [r[0] for r in db.execute("pragma quick_check").fetchall()]
    except sqlite3.DatabaseError as exc:
        return [f"{path}: {exc}"]
    return [] if result == ["ok"] else [f"{path}: sqlite quick_check: {'; '.join(result[:5])}"]


def damage_message(problems: list[str]) -> str:
    """The one line a damaged index gets: what is wrong, and the command that repairs it."""
    return f"{'; '.join(problems)}; the index is damaged: {REPAIR}"


__all__ = [
    "CHECKSUM_FILES", "NORM_TOLERANCE", "QUICK_CHECK_LIMIT", "REPAIR", "VERIFY_LIMIT", "checksum_problems",
    "checksums", "damage_message", "digest", "norm_problems", "quick_check_problems", "vector_norm_problems",
]
