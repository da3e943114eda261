"""One indexing run on a folder index: every change goes into a staging generation, swapped in at the end.

:meth:`qabot.store.folder.FolderBackend.indexing` makes a :class:`FolderRun` under the writer
lock. It refuses changed settings and damage (or, with ``repair``, rebuilds), resumes the staging
generation an interrupted run left (repairing what a kill cut short: :func:`reconcile`), and
begins a new one only at the first change, so a run that changes nothing writes nothing.
SQLite commits per batch; the vectors are checkpointed every ``checkpoint_seconds``; an error or
Ctrl-C checkpoints first, so the next run with the same settings resumes. :meth:`FolderRun.publish`
drops articles still stored in part and makes the generation live
(:func:`qabot.store.generations.publish`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from qabot.documents import Article, Chunk, Sentence
from qabot.errors import StoreError
from qabot.store import generations, integrity
from qabot.store.interface import Wanted
from qabot.store.manifest import FORMAT_VERSION, Manifest
from qabot.store.store import Store

log = logging.getLogger(__name__)


class FolderRun:
    """A staging generation of ``folder`` being written (see the module docstring)."""

    split_articles = True  # checkpoints fall inside a long article; a resumed run goes on inside it

    def __init__(self, folder: Path, wanted: Wanted, *, rebuild: bool, repair: bool, checkpoint_seconds: float) -> None:
        self.folder, self.wanted = folder, wanted
        self.checkpoint_seconds = checkpoint_seconds
        self.staging: Store | None = None  # begun at the first change
        self.resumed = False
        self.known: dict[str, str] = {}
        self._last_checkpoint = time.monotonic()
        self._start(rebuild=rebuild, repair=repair)

    @property
    def manifest(self) -> Manifest:
        if self.staging is not None:
            return self.staging.manifest
        live = generations.live_manifest(self.folder)
        assert live is not None  # a new index begins its staging generation at once
        return live

    def _start(self, *, rebuild: bool, repair: bool) -> None:
        if rebuild or repair:
            generations.set_aside_damaged_manifest(self.folder)
        live = generations.live_manifest(self.folder)
        if live is not None and not rebuild:
            generations.refuse_changed_settings(self.folder, live, self.wanted)
            if damage := generations.live_damage(self.folder, live):
                if not repair:
                    raise StoreError(integrity.damage_message(damage))
                log.warning("%s: the live index is damaged (%s); rebuilding it from the archive", self.folder, "; ".join(damage))
                rebuild = True
        self.staging = generations.resume(self.folder, self.wanted, rebuild=rebuild)
        self.resumed = self.staging is not None
        # Eagerly for a new index, a rebuild, or an index from before generations (its data
        # sit beside the manifest and may need the repair below); otherwise only at the first change.
        if self.staging is None and (rebuild or live is None or live.generation == ""):
            self.staging = generations.begin(self.folder, self.wanted, rebuild=rebuild)
        if self.staging is not None:
            reconcile(self.staging)
            self.known = self.staging.article_hashes()
        else:
            with Store.open(self.folder, check=False) as reader:  # reads SQLite only, not the vectors
                self.known = reader.article_hashes()

    def _writable(self) -> Store:
        """The staging generation, begun now if this is the run's first change."""
        if self.staging is None:
            self.staging = generations.begin(self.folder, self.wanted, rebuild=False)
            self._last_checkpoint = time.monotonic()
        return self.staging

    # -- what the indexer's loop calls --------------------------------------------------------

    def article_hashes(self) -> dict[str, str]:
        return self.staging.article_hashes() if self.staging is not None else dict(self.known)

    def stored_parts(self) -> dict[str, int]:
        return self.staging.partial_articles() if self.staging is not None else {}

    def add(
        self, items: Sequence[tuple[Article, Sequence[Chunk]]], vectors: np.ndarray,
        sentence_spans: Sequence[Sequence[Sentence]], sentence_vectors: np.ndarray,
    ) -> list[str]:
        return self._writable().add(items, vectors, sentence_spans, sentence_vectors)

    def after_batch(self) -> None:
        """Checkpoint the vectors when ``checkpoint_seconds`` have passed since the last one."""
        if self.staging is not None and time.monotonic() - self._last_checkpoint >= self.checkpoint_seconds:
            generations.checkpoint(self.staging)
            self._last_checkpoint = time.monotonic()

    def delete_articles(self, article_ids: Iterable[str]) -> int:
        ids = list(article_ids)
        return self._writable().delete_articles(ids) if ids else 0

    def counts(self) -> dict[str, int]:
        if self.staging is not None:
            return self.staging.counts()
        with Store.open(self.folder, check=False) as reader:
            return reader.counts()

    def articles_without_sentences(self) -> list[str]:
        """Articles of an index of format 1 (before sentence vectors): the upgrade embeds their sentences."""
        live = generations.live_manifest(self.folder)
        if self.staging is None and (live is None or live.format_version >= FORMAT_VERSION):
            return []
        return self._writable().articles_without_sentences()

    def article_chunks(self, article_ids: Sequence[str]) -> dict[str, list[Chunk]]:
        return self._writable().article_chunks(article_ids)

    def add_sentences(self, found: dict[str, tuple[Sequence[Sentence], np.ndarray]]) -> None:
        self._writable().add_sentences(found)

    def publish(self) -> Manifest:
        """Make the staging generation live (whole articles only); the live manifest when nothing changed."""
        if self.staging is None:
            live = generations.live_manifest(self.folder)
            assert live is not None
            return live
        if self.staging.manifest.format_version < FORMAT_VERSION and not self.staging.articles_without_sentences():
            self.staging.manifest = replace(self.staging.manifest, format_version=FORMAT_VERSION)
        if left := self.staging.partial_articles():
            log.warning("%s: removing %d articles an interrupted run stored in part and this run did not finish (e.g. %r)",
                        self.folder, len(left), next(iter(left)))
            self.staging.delete_articles(sorted(left))
        staging, self.staging = self.staging, None
        return generations.publish(staging)

    def abort(self) -> None:
        """Interrupted (Ctrl-C, an error): keep what was embedded so the next run resumes it."""
        store, self.staging = self.staging, None
        if store is None:
            return
        try:
            generations.checkpoint(store)
            log.warning("%s: progress saved in %s; run the same command again to resume", store.folder, store.manifest.generation)
        except Exception as exc:  # noqa: BLE001 - the run is failing anyway; report, do not mask the cause
            log.warning("%s: could not save progress: %s", store.folder, exc)
        finally:
            store.close()

    def close(self) -> None:
        self.abort()


def reconcile(store: Store) -> None:
    """Repair a staging generation a killed run left: SQLite commits per batch, FAISS per checkpoint.

    Articles whose chunks have no vector, or that lack some of their chunks, are dropped
    (the run re-indexes them, since their hash is gone), except a long article stored in parts,
    which keeps its chunks up to the first without a vector (the run goes on from there); vectors
    without a chunk are removed.
    """
    faiss_ids, chunk_ids = set(store.faiss_ids().tolist()), set(store.chunk_ids().tolist())
    orphans = faiss_ids - chunk_ids
    if orphans:
        log.warning("%s: removing %d vectors without a chunk", store.data_dir, len(orphans))
        store.vectors.remove(np.array(sorted(orphans), dtype=np.int64))
    missing = chunk_ids - faiss_ids
    stale = set(store.articles_of_chunks(sorted(missing))) if missing else set()
    parts = store.partial_articles()
    for article_id in sorted(stale & set(parts)):
        keep = store.first_chunk_without(article_id, missing)
        log.warning("%s: %s, stored in part, keeps its first %d chunks; the run goes on from there", store.data_dir, article_id, keep)
        store.truncate_article(article_id, keep)
    stale -= set(parts)
    stale |= set(store.incomplete_articles())
    if stale:
        log.warning("%s: %d articles lost vectors or chunks in an interrupted run; re-indexing them", store.data_dir, len(stale))
        store.delete_articles(sorted(stale))
    if orphans or stale or missing:
        generations.checkpoint(store)


__all__ = ["FolderRun", "reconcile"]
