"""The one indexing loop, for every backend: archive -> chunking -> embedding (batches) -> the index.

Idempotent: an article whose content hash is unchanged is skipped; a changed one is re-chunked
and replaced; with ``prune`` articles gone from the archive are removed. How a run commits is
the backend's (:meth:`qabot.store.interface.Backend.indexing`): a folder writes a staging
generation swapped in at the end (readers never see half a run; a killed run is resumed), a
database one transaction per batch. The loop, the pruning and the report are the same for both.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from qabot.documents import Problem
from qabot.indexer.steps import (
    MAX_ARTICLE_BYTES,
    IndexReport,
    Reading,
    Shard,
    advance,
    batches,
    changed_articles,
    prefetch,
    progress_bar,
    sentences_for,
)
from qabot.ingest.archive import require_readable
from qabot.locations import Location
from qabot.models.embedding import Embedder
from qabot.store.backends import POOL_SIZE, TIMEOUT, backend_for
from qabot.store.interface import DeleteReport, IndexingRun, Wanted

log = logging.getLogger(__name__)

UPGRADE_ARTICLES = 8  # articles per batch (x batch_size) when an index of format 1 gets its sentence vectors


def build_index(
    archive: Path,
    index_dir: str | Path | Location,
    *,
    embedder: Embedder,
    chunk_tokens: int = 200,
    chunk_overlap: int = 1,
    batch_size: int = 32,
    progress: bool = False,
    on_problem: Callable[[Problem], None] | None = None,
    prune: bool = False,
    rebuild: bool = False,
    repair: bool = False,
    checkpoint_seconds: float = 60.0,
    shard: Shard | None = None,
    max_article_bytes: int = MAX_ARTICLE_BYTES,
    pg_pool: int = POOL_SIZE,
    pg_timeout: float = TIMEOUT,
) -> IndexReport:
    """Index every article under ``archive`` into ``index_dir``: a folder (created when missing) or a
    ``postgresql://`` URL (the index is created in that database when it has none).

    Problems with single files or lines are collected (and passed to ``on_problem``); they never
    stop the run. ``rebuild`` (folders only) builds a fresh index beside the live one (new model
    or chunker settings allowed) and swaps it in; without it, an index built with other settings
    is refused (IndexMismatchError). A damaged folder index is refused (StoreError) unless ``repair``
    asks to rebuild it from the archive. ``shard`` indexes only the articles whose id hashes to it.
    Ctrl-C keeps what was committed (a folder saves its progress first); the next run goes on.
    """
    started = time.perf_counter()
    backend = backend_for(index_dir, pool_size=pg_pool, timeout=pg_timeout)
    require_readable(Path(archive))  # before anything is locked, created or staged
    wanted = Wanted(embedder.name, embedder.dimension, chunk_tokens, chunk_overlap)
    reading = Reading(on_problem)
    counts = reading.counts
    with backend.indexing(wanted, rebuild=rebuild, repair=repair, checkpoint_seconds=checkpoint_seconds) as run:
        todo = changed_articles(Path(archive), reading, run.known, embedder, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap,
                                shard=shard, max_article_bytes=max_article_bytes, stored=run.stored_parts())
        bar = progress_bar(progress, archive)
        try:
            # Big batches: encode() sorts by length within a call, so fewer calls mean less padding.
            for batch in prefetch(batches(todo, max_chunks=batch_size * 32, split=run.split_articles)):
                texts = [c.text for _, chunks in batch for c in chunks]
                spans = [sentences_for(chunks) for _, chunks in batch]
                sentence_texts = [s.text for found in spans for s in found]
                # One call for both: encode() sorts all texts by length, so chunks and sentences pad little.
                vectors = np.asarray(embedder.embed_passages(texts + sentence_texts, batch_size=batch_size), dtype=np.float32)
                stored = set(run.add(batch, vectors[: len(texts)], spans, vectors[len(texts) :]))
                counts["indexed"] += sum(1 for article, _ in batch if article.id in stored and not article.partial)
                counts["unchanged"] += sum(1 for article, _ in batch if article.id not in stored)  # stored meanwhile by another writer
                counts["chunks"] += len(texts)
                counts["sentences"] += len(sentence_texts)
                run.after_batch()
                if bar is not None:
                    advance(bar, counts, started)
            if prune:
                gone = sorted(a for a in set(run.known) - set(reading.seen) if shard is None or shard.holds(a))
                if gone:
                    run.delete_articles(gone)
                    counts["removed"] = len(gone)
                    log.info("%s: pruned %d articles no longer in %s", backend.name, len(gone), archive)
            _add_missing_sentences(run, embedder, counts, batch_size=batch_size, name=backend.name)
        finally:
            if bar is not None:
                advance(bar, counts, started)
                bar.close()
        manifest = run.publish()
    report = IndexReport(
        index_dir=backend.name, articles_read=counts["read"], articles_indexed=counts["indexed"],
        articles_unchanged=counts["unchanged"], articles_skipped=sum(1 for p in reading.problems if p.skipped),
        articles_removed=counts["removed"], chunks_embedded=counts["chunks"], sentences_embedded=counts["sentences"],
        articles_total=manifest.articles, chunks_total=manifest.chunks, sentences_total=manifest.sentences,
        seconds=time.perf_counter() - started, generation=manifest.generation, resumed=run.resumed, errors=tuple(reading.problems),
    )
    log.info("indexed %s: %s", backend.name, report.to_dict() | {"errors": len(reading.problems)})
    return report


def _add_missing_sentences(run: IndexingRun, embedder: Embedder, counts: dict[str, int], *, batch_size: int, name: str) -> None:
    """Embed the sentences of articles stored without them (an index of format 1): the upgrade to
    sentence vectors, which re-embeds no chunk; committed per batch, so a killed upgrade resumes."""
    missing = run.articles_without_sentences()
    step = batch_size * UPGRADE_ARTICLES
    for lo in range(0, len(missing), step):
        spans = {a: sentences_for(chunks) for a, chunks in run.article_chunks(missing[lo : lo + step]).items()}
        texts = [s.text for found in spans.values() for s in found]
        vectors = (np.asarray(embedder.embed_passages(texts, batch_size=batch_size), dtype=np.float32) if texts
                   else np.zeros((0, embedder.dimension), dtype=np.float32))
        ends = np.cumsum([len(found) for found in spans.values()])
        run.add_sentences({a: (found, vectors[end - len(found) : end]) for (a, found), end in zip(spans.items(), ends)})
        counts["sentences"] += len(texts)
        log.info("%s: added sentence vectors to %d of %d articles", name, min(lo + step, len(missing)), len(missing))


def delete_articles(index_dir: str | Path | Location, article_ids: Sequence[str], *, pg_timeout: float = TIMEOUT) -> DeleteReport:
    """Remove articles (with their chunks and vectors) from the index; a folder's as one atomic swap.

    Refused (StoreError) on a folder while an interrupted indexing run's generation waits to be
    resumed: a delete never discards one.
    """
    return backend_for(index_dir, pool_size=1, timeout=pg_timeout).delete(article_ids)


__all__ = ["build_index", "delete_articles"]
