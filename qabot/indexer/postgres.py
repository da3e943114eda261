"""Build or update an index in PostgreSQL: archive -> chunking -> embedding (batches) -> one transaction per batch.

The same reading, chunking, embedding and content-hash skip as the folder indexer
(:mod:`qabot.indexer.steps`); what differs is the commit. Each batch of articles is one
transaction (:meth:`qabot.store.postgres.store.PgStore.add`): readers see all of it or none, a
killed run keeps every batch it committed, and the next run skips those by their hash. Several
indexers may write at once, on different archives or on shards of one (``--shard I/N``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from qabot.documents import Problem
from qabot.errors import StoreError
from qabot.indexer.steps import (
    MAX_ARTICLE_BYTES,
    DeleteReport,
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
from qabot.locations import PgUrl
from qabot.models.embedding import Embedder
from qabot.store.postgres.store import PgStore

log = logging.getLogger(__name__)


def build_pg_index(
    archive: Path, url: PgUrl, *, embedder: Embedder, chunk_tokens: int = 200, chunk_overlap: int = 1,
    batch_size: int = 32, progress: bool = False, on_problem: Callable[[Problem], None] | None = None,
    prune: bool = False, rebuild: bool = False, shard: Shard | None = None, pool_size: int = 2, timeout: float = 30.0,
    max_article_bytes: int = MAX_ARTICLE_BYTES,
) -> IndexReport:
    """Index every article under ``archive`` (of ``shard``) into the database at ``url``, creating the
    index there if it has none. Other model or chunker settings are refused (IndexMismatchError)."""
    started = time.perf_counter()
    require_readable(Path(archive))
    if rebuild:
        raise StoreError(
            f"--rebuild is for index folders; for {url} index into a new, empty database (readers switch by "
            "changing QABOT_INDEX), or rebuild a folder index and move it with `qabot copy FOLDER URL`"
        )
    reading = Reading(on_problem)
    counts = reading.counts
    with PgStore.create_or_open(url, model=embedder.name, dimension=embedder.dimension, chunk_tokens=chunk_tokens,
                                chunk_overlap=chunk_overlap, pool_size=pool_size, timeout=timeout) as store:
        known = store.article_hashes()
        todo = changed_articles(Path(archive), reading, known, embedder, chunk_tokens=chunk_tokens,
                                chunk_overlap=chunk_overlap, shard=shard, max_article_bytes=max_article_bytes)
        bar = progress_bar(progress, archive)
        try:
            for batch in prefetch(batches(todo, max_chunks=batch_size * 32)):
                texts = [c.text for _, chunks in batch for c in chunks]
                spans = [sentences_for(chunks) for _, chunks in batch]
                sentence_texts = [s.text for found in spans for s in found]
                vectors = np.asarray(embedder.embed_passages(texts + sentence_texts, batch_size=batch_size), dtype=np.float32)
                stored = store.add(batch, vectors[: len(texts)], spans, vectors[len(texts) :])
                counts["indexed"] += len(stored)
                counts["unchanged"] += len(batch) - len(stored)  # stored meanwhile by another indexer
                counts["chunks"] += len(texts)
                counts["sentences"] += len(sentence_texts)
                if bar is not None:
                    advance(bar, counts, started)
            if prune:
                gone = sorted(a for a in set(known) - set(reading.seen) if shard is None or shard.holds(a))
                if gone:
                    store.delete_articles(gone)
                    counts["removed"] = len(gone)
                    log.info("%s: pruned %d articles no longer in %s", url, len(gone), archive)
        finally:
            if bar is not None:
                advance(bar, counts, started)
                bar.close()
        if counts["indexed"] or counts["removed"]:
            store.analyze()  # the planner's statistics and the keyword leg's word shares
        manifest = store.refreshed_manifest()
    report = IndexReport(
        index_dir=url.safe, articles_read=counts["read"], articles_indexed=counts["indexed"],
        articles_unchanged=counts["unchanged"], articles_skipped=sum(1 for p in reading.problems if p.skipped),
        articles_removed=counts["removed"], chunks_embedded=counts["chunks"], sentences_embedded=counts["sentences"],
        articles_total=manifest.articles, chunks_total=manifest.chunks, sentences_total=manifest.sentences,
        seconds=time.perf_counter() - started, errors=tuple(reading.problems),
    )
    log.info("indexed %s: %s", url, report.to_dict() | {"errors": len(reading.problems)})
    return report


def delete_pg_articles(url: PgUrl, article_ids: Sequence[str], *, timeout: float = 30.0) -> DeleteReport:
    """Remove articles (with their chunks and sentences) from the index at ``url``."""
    with PgStore.open(url, pool_size=1, timeout=timeout) as store:
        store.refuse_read_only()
        present = store.present(article_ids)
        wanted = list(dict.fromkeys(article_ids))
        found = [a for a in wanted if a in present]
        removed = store.delete_articles(found) if found else 0
        counts = store.counts()
    return DeleteReport(tuple(found), tuple(a for a in wanted if a not in present), removed, counts["articles"], counts["chunks"])


__all__ = ["build_pg_index", "delete_pg_articles"]
