"""Writing an index without ever showing readers a half-written one.

Every write (an indexing run, ``--rebuild``, ``qabot delete``) builds a new *generation*
folder beside the live one and publishes it by renaming a new ``manifest.json`` into place.
Readers open whatever the manifest names, so they see the old state or the new one, never
a mix. A run that is killed leaves the live index untouched and its staging generation
behind, described by ``staging.json``; the next run with the same settings resumes it.

Steps of one write, in order (a crash between any two leaves a consistent state):

1. take the writer lock (``.lock``, flock; freed by the kernel when the process dies);
2. resume the staging generation if ``staging.json`` matches, else copy the live
   generation (SQLite backup API + the FAISS file) into ``gen-N+1`` and write
   ``staging.json`` last. Only an indexing run whose settings differ discards an interrupted
   run's generation (logged as a warning); ``qabot delete`` refuses while one is pending;
3. change the staging generation: SQLite commits per batch; FAISS is checkpointed into it
   every ``checkpoint_seconds`` (what a resumed run has to redo is bounded by that);
4. publish: pick the vector index type for the size, write FAISS, checkpoint and close
   SQLite, rename the new manifest over the old one, then drop ``staging.json`` and every
   generation older than the previous one.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from qabot.errors import IndexMismatchError, StoreError
from qabot.store import integrity
from qabot.store.files import LockHeld, atomic_write_bytes, fsync_path, pid_lock
from qabot.store.interface import Wanted
from qabot.store.manifest import DB_NAME, FAISS_NAME, MANIFEST_NAME, Manifest, read_manifest, write_manifest
from qabot.store.store import Store

log = logging.getLogger(__name__)

STAGING_NAME = "staging.json"
LOCK_NAME = ".lock"
_GEN = re.compile(r"^gen-(\d{6,})$")


@dataclass(frozen=True)
class Staging:
    """What ``staging.json`` records about an unpublished generation."""

    generation: str
    base: str | None  # the live generation it was copied from; None for a fresh (rebuilt) one
    rebuild: bool
    model: str
    dimension: int
    chunk_tokens: int
    chunk_overlap: int
    started_at: float


@contextmanager
def writer_lock(folder: Path) -> Iterator[None]:
    """Only one writer per index folder; a second one fails at once with a clear message."""
    folder = Path(folder)
    path = folder / LOCK_NAME
    with ExitStack() as stack:
        try:
            stack.enter_context(pid_lock(path))
        except LockHeld as held:
            raise StoreError(f"another qabot process (pid {held.holder}) is writing the index at {folder}; wait for it to finish") from None
        except OSError as exc:  # a read-only folder, another user's index, a lock that is a folder
            raise StoreError(f"{path}: cannot take the writer lock ({exc.strerror or exc}); writing the index needs "
                             f"a user who may create and write files in {folder}") from None
        yield


def live_manifest(folder: Path) -> Manifest | None:
    """The live manifest; None when there is no index, StoreError (with the repair) when it is
    unreadable. A manifest that is not a file is refused: it is never written over."""
    path = Path(folder) / MANIFEST_NAME
    if not path.exists():
        return None
    if not path.is_file():
        raise StoreError(f"{path}: not a file; move it out of the way, then run the command again")
    try:
        return read_manifest(folder)
    except StoreError as exc:
        raise StoreError(f"{exc}; the index is damaged: {integrity.REPAIR}") from None


def set_aside_damaged_manifest(folder: Path) -> Path | None:
    """Before a repair or rebuild: rename an unreadable manifest to ``manifest.json.damaged`` (kept
    for a person to look at), so the run builds a new index in its place. Its new name, or None."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        read_manifest(folder)
        return None
    except StoreError as exc:
        aside = path.with_name(f"{MANIFEST_NAME}.damaged")
        os.replace(path, aside)
        fsync_path(Path(folder))
        log.warning("%s; moved to %s, building a new index in its place", exc, aside)
        return aside


def live_damage(folder: Path, live: Manifest) -> list[str]:
    """What is wrong with the live generation (empty when it is sound): every file against its
    recorded checksum, else (an index from before checksums) SQLite's quick_check and the
    vectors' norms; then the vector file against the manifest and FAISS ids against chunk rowids.
    A writer asks before it copies the live generation: damage is never carried forward."""
    data_dir = Path(folder) / live.generation if live.generation else Path(folder)
    if problems := integrity.checksum_problems(data_dir, live.checksums):
        return problems
    try:
        store = Store.open_data(folder, live)
    except StoreError as exc:
        return [str(exc)]
    with store:
        try:
            if problems := store.vector_problems() + store.id_problems():
                return problems
            return [] if live.checksums else store.unverified_damage(full=True)
        except StoreError as exc:
            return [str(exc)]


def refuse_changed_settings(folder: Path, live: Manifest, wanted: Wanted) -> None:
    """Model and chunker settings of an index change only through ``--rebuild``."""
    diffs = live.settings_differ(model=wanted.model, chunk_tokens=wanted.chunk_tokens, chunk_overlap=wanted.chunk_overlap)
    if wanted.dimension != live.dimension and not diffs:
        diffs.append(f"dimension {live.dimension} (requested {wanted.dimension})")
    if diffs:
        raise IndexMismatchError(
            f"the index at {folder} was built with {', '.join(diffs)}; to change these settings rebuild it "
            "with `qabot index ARCHIVE --rebuild` (the live index keeps answering until the new one is swapped in)"
        )


def resume(folder: Path, wanted: Wanted, *, rebuild: bool) -> Store | None:
    """The staging generation a killed run left, when it fits this run; else None (and it is removed)."""
    folder = Path(folder)
    staging = _read_staging(folder)
    if staging is None:
        return None
    live = live_manifest(folder)
    live_gen = live.generation if live is not None else None
    fits = (
        staging.generation != live_gen
        and staging.base == (None if rebuild or live is None else live_gen)
        and staging.rebuild == rebuild
        and (staging.model, staging.dimension, staging.chunk_tokens, staging.chunk_overlap)
        == (wanted.model, wanted.dimension, wanted.chunk_tokens, wanted.chunk_overlap)
        and (folder / staging.generation / FAISS_NAME).is_file()
    )
    if not fits:
        log.warning("%s: discarding %s: it does not fit this run (other settings, --rebuild or base generation)",
                    folder, describe_interrupted(staging))
        abandon(folder)
        return None
    created = live.created_at if live is not None and staging.base is not None else _iso(staging.started_at)
    manifest = Manifest(
        model=staging.model, dimension=staging.dimension, chunk_tokens=staging.chunk_tokens,
        chunk_overlap=staging.chunk_overlap, generation=staging.generation,
        previous_generation=live_gen or "", created_at=created,
    )
    try:
        store = Store.open_data(folder, manifest)
    except StoreError as exc:
        log.warning("%s: cannot resume %s (%s); starting over", folder, staging.generation, exc)
        abandon(folder)
        return None
    log.warning("%s: resuming the interrupted run in %s", folder, staging.generation)
    return store


def begin(folder: Path, wanted: Wanted, *, rebuild: bool) -> Store:
    """A new staging generation: a copy of the live one, or empty for a rebuild or a new index.

    Never discards an interrupted run's generation (only :func:`resume` decides that): while
    ``staging.json`` names one, this raises StoreError saying how to finish or drop it.
    """
    folder = Path(folder)
    live = live_manifest(folder)
    if live is not None and not rebuild:
        refuse_changed_settings(folder, live, wanted)
    if (interrupted := _read_staging(folder)) is not None:
        raise StoreError(
            f"{folder}: {describe_interrupted(interrupted)} is unfinished; finish it first by running the same "
            f"`qabot index` command again (it resumes where it stopped), or drop it by deleting "
            f"{folder / STAGING_NAME} (its folder goes with the next write); then try again"
        )
    abandon(folder)  # drops an unreadable staging.json
    generation = _next_generation(folder, live)
    target = folder / generation
    if target.exists():
        shutil.rmtree(target)
    base: str | None = None
    if live is not None and not rebuild:
        base = live.generation
        _copy_generation(folder, live, target)
        manifest = replace(live, generation=generation, previous_generation=live.generation, checksums={})
        store = Store.open_data(folder, manifest)
    else:
        store = Store.create(
            folder, model=wanted.model, dimension=wanted.dimension, chunk_tokens=wanted.chunk_tokens,
            chunk_overlap=wanted.chunk_overlap, generation=generation, publish=False,
        )
        store.save_vectors()
        store.manifest = replace(store.manifest, previous_generation=live.generation if live else "")
    staging = Staging(
        generation=generation, base=base, rebuild=rebuild, model=wanted.model, dimension=wanted.dimension,
        chunk_tokens=wanted.chunk_tokens, chunk_overlap=wanted.chunk_overlap, started_at=time.time(),
    )
    atomic_write_bytes(folder / STAGING_NAME, json.dumps(asdict(staging), indent=2).encode("utf-8"))
    fsync_path(folder)
    log.info("%s: building generation %s (%s)", folder, generation, "fresh" if base is None else f"from {base}")
    return store


def checkpoint(store: Store) -> None:
    """Save the staging generation's vectors so a killed run resumes from here."""
    store.save_vectors()


def publish(store: Store) -> Manifest:
    """Make the staging generation live (atomically) and tidy up; closes ``store``."""
    folder = store.folder
    if store.vectors.optimize():
        log.info("%s: vector index is now %s for %d vectors", folder, store.vectors.kind, store.vectors.ntotal)
    store.save_vectors()
    store.db.execute("pragma wal_checkpoint(truncate)")
    store.close()
    fsync_path(store.data_dir / DB_NAME)
    fsync_path(store.data_dir)
    # Readers and later writers verify these: the generation is never written again.
    store.manifest = replace(store.manifest, checksums=integrity.checksums(store.data_dir))
    write_manifest(folder, store.manifest)  # the commit point
    (folder / STAGING_NAME).unlink(missing_ok=True)
    cleanup(folder)
    log.info("%s: generation %s is live", folder, store.manifest.generation)
    return store.manifest


def abandon(folder: Path) -> None:
    """Remove an unpublished staging generation (never the live or previous one)."""
    folder = Path(folder)
    staging = _read_staging(folder)
    if staging is not None:
        live = live_manifest(folder)
        keep = {live.generation, live.previous_generation} if live else set()
        if staging.generation not in keep:
            shutil.rmtree(folder / staging.generation, ignore_errors=True)
    (folder / STAGING_NAME).unlink(missing_ok=True)


def cleanup(folder: Path) -> list[str]:
    """Delete generations other than the live one, the previous one and a resumable staging one."""
    folder = Path(folder)
    live = live_manifest(folder)
    if live is None:
        return []
    staging = _read_staging(folder)
    keep = {live.generation, live.previous_generation} | ({staging.generation} if staging else set())
    removed = []
    for child in folder.iterdir():
        if child.is_dir() and _GEN.match(child.name) and child.name not in keep:
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child.name)
    if "" not in keep:  # the flat layout of an index older than generations
        for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", FAISS_NAME):
            if (folder / name).exists():
                (folder / name).unlink()
                removed.append(name)
    return removed


def describe_interrupted(staging: Staging) -> str:
    """E.g. "generation gen-000004 of an interrupted `qabot index` run (started 2025-08-15T09:12:00+00:00)"."""
    kind = "`qabot index --rebuild`" if staging.rebuild else "`qabot index`"
    return f"generation {staging.generation} of an interrupted {kind} run (started {_iso(staging.started_at)})"


def staging_info(folder: Path) -> Staging | None:
    """What an interrupted run left behind, if anything (for `qabot check` and `stats`)."""
    return _read_staging(Path(folder))


def _read_staging(folder: Path) -> Staging | None:
    path = folder / STAGING_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Staging(**{k: data[k] for k in Staging.__dataclass_fields__})
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s: unreadable (%s); ignoring it", path, exc)
        return None


def _next_generation(folder: Path, live: Manifest | None) -> str:
    numbers = [int(m.group(1)) for child in folder.iterdir() if (m := _GEN.match(child.name))]
    if live is not None and (m := _GEN.match(live.generation)):
        numbers.append(int(m.group(1)))
    return f"gen-{max(numbers, default=0) + 1:06d}"


def _copy_generation(folder: Path, live: Manifest, target: Path) -> None:
    """Copy the live SQLite database (backup API: consistent even while readers use it) and FAISS file."""
    source_dir = folder / live.generation if live.generation else folder
    target.mkdir(parents=True)
    source = sqlite3.connect(f"file:{source_dir / DB_NAME}?mode=ro", uri=True)
    dest = sqlite3.connect(str(target / DB_NAME))
    try:
        source.backup(dest)
    except sqlite3.Error as exc:
        raise StoreError(f"{source_dir / DB_NAME}: cannot copy the live database: {exc}") from None
    finally:
        dest.close()
        source.close()
    shutil.copyfile(source_dir / FAISS_NAME, target / FAISS_NAME)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


__all__ = [
    "LOCK_NAME", "MANIFEST_NAME", "STAGING_NAME", "Staging", "Wanted", "abandon", "begin", "checkpoint", "cleanup",
    "describe_interrupted", "live_damage", "live_manifest", "publish", "refuse_changed_settings", "resume",
    "set_aside_damaged_manifest", "staging_info", "writer_lock",
]
